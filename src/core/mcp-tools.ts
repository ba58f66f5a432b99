/**
 * Resolves a run's `tools[]` entry that references an MCPServer into the tool definitions the
 * run journals at its start: the server's discovered tools (all, or the allowlist), named with
 * the entry's prefix, with approval and idempotency decided from the admin's overrides first and
 * the server's annotations second.
 */
import { TOOL_NAME_PATTERN } from '../api/agent-tool.ts';
import type { RunTool } from '../api/agent-run.ts';
import type { DiscoveredTool, MCPServerSpec, MCPToolOverride, ToolAnnotations } from '../api/mcp-server.ts';
import { parseDurationMs } from '../api/primitives.ts';
import type { ResolvedTool } from '../api/journal-entry.ts';
import type { MCPServerObservation } from './observed.ts';

/** How often a call that never reached the server (or an interrupted idempotent one) is made again. */
export const MCP_DEFAULT_RETRIES = 2;

/** What a run's MCP tools[] entry resolves to: its tools, or why it cannot be resolved (yet). */
export type MCPEntryResolution =
  | { readonly ok: true; readonly tools: ResolvedTool[] }
  /** The MCPServer does not exist or has not listed its tools yet: the run waits. */
  | { readonly ok: false; readonly waiting: string }
  /** The entry cannot be used as it is: the run fails, saying what to fix. */
  | { readonly ok: false; readonly problem: string };

/**
 * Whether calls of a tool wait for a human, before the run adds any: the admin's override wins;
 * else readOnlyHint means no, and anything not read-only needs approval unless it says
 * destructiveHint: false (the MCP spec's default for destructiveHint is true).
 */
export function approvalFromServer(annotations: ToolAnnotations | undefined,
  override: MCPToolOverride | undefined): boolean {
  if (override?.requiresApproval !== undefined) return override.requiresApproval;
  if (annotations?.readOnlyHint === true) return false;
  return annotations?.destructiveHint !== false;
}

/**
 * Whether an interrupted call may be made again: the admin's word, or the hint when the admin
 * trusts the server's hints.
 */
export function idempotentFromServer(spec: MCPServerSpec, annotations: ToolAnnotations | undefined,
  override: MCPToolOverride | undefined): boolean {
  if (override?.idempotent !== undefined) return override.idempotent;
  return spec.trustHints && annotations?.idempotentHint === true;
}

/**
 * Whether calls of a tool are MCP tasks: always when the tool requires it, when it merely allows
 * it only if the admin prefers tasks (spec.tasks). Discovery records taskSupport only for servers
 * that advertise tasks for tools/call.
 */
export function callAsTask(spec: MCPServerSpec, tool: DiscoveredTool): boolean {
  return tool.taskSupport === 'required' || (tool.taskSupport === 'optional' && spec.tasks === 'Prefer');
}

/** Resolves a run's MCP tools[] entry against the server's discovered tools and the admin's overrides. */
export function resolveMCPEntry(entry: RunTool, server: MCPServerObservation | undefined,
  runApproval: boolean): MCPEntryResolution {
  const name = entry.mcpServerRef?.name ?? '';
  if (!server) return { ok: false, waiting: `MCPServer ${name}` };
  if (!server.tools) return { ok: false, waiting: `MCPServer ${name} to list its tools (see its Ready condition)` };
  const offered = new Map(server.tools.map((t) => [t.name, t]));
  const missing = (entry.allow ?? []).filter((n) => !offered.has(n));
  if (missing.length > 0) {
    return { ok: false,
      problem: `tools[${entry.name}] allows ${missing.join(', ')}, which MCPServer ${name} does not offer `
        + `(it offers: ${
          [...offered.keys()].join(', ').slice(0, 400) || 'nothing'
        }). Fix allow, or check the server.` };
  }
  const chosen: DiscoveredTool[] = entry.allow
    ? entry.allow.map((n) => offered.get(n)).filter((t) => t !== undefined)
    : [...server.tools];
  const overrides = new Map((server.spec.tools ?? []).map((o) => [o.name, o]));
  const tools: ResolvedTool[] = [];
  for (const t of chosen) {
    const toolName = `${entry.prefix ?? ''}${t.name}`;
    if (t.problem !== undefined)
      return { ok: false, problem: `MCPServer ${name} tool ${t.name}: ${t.problem}. Leave it out with allow.` };
    if (!new RegExp(TOOL_NAME_PATTERN).test(toolName)) {
      return { ok: false,
        problem:
          `MCPServer ${name} tool ${t.name} would be called "${toolName}", which the Messages API does not accept `
          + '(1-64 letters, digits, "_" or "-"): leave it out with allow, or shorten the prefix.' };
    }
    const override = overrides.get(t.name);
    tools.push({
      name: toolName,
      ...(t.description !== undefined ? { description: t.description } : {}),
      inputSchema: t.inputSchema ?? { type: 'object' },
      mcp: { server: name, tool: t.name, ...(callAsTask(server.spec, t) ? { task: true } : {}) },
      timeoutSeconds: Math.ceil(parseDurationMs(server.spec.timeouts.call) / 1000),
      // Approval can only be added by the run: the server's (admin-decided) approval stays.
      requiresApproval: approvalFromServer(t.annotations, override) || runApproval,
      idempotent: idempotentFromServer(server.spec, t.annotations, override),
      retries: MCP_DEFAULT_RETRIES,
      source: `MCPServer/${name}`,
    });
  }
  return { ok: true, tools };
}
