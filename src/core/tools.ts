/** Resolves a run's tools (inline, or toolRef to an AgentTool) into the definitions its steps use. */
import type { AgentRunSpec } from '../api/agent-run.ts';
import type { AgentToolSpec } from '../api/agent-tool.ts';
import { parseDurationMs } from '../api/primitives.ts';
import type { ResolvedTool } from '../api/journal-entry.ts';
import { resolveMCPEntry } from './mcp-tools.ts';
import type { MCPServerObservation } from './observed.ts';

const DEFAULT_TIMEOUT = '10m';
const DEFAULT_RETRIES = 2;

/** The run's tools with every reference resolved, or what is missing or wrong. */
export type ToolResolution =
  | { ok: true; tools: ResolvedTool[] }
  /**
   * `missing`: AgentTools not found; `waiting`: MCPServers not found or not listed yet; `problem`:
   * unusable as written.
   */
  | { ok: false; missing: string[]; waiting?: string[]; problem?: string };

/**
 * Resolves every tool; `agentTools` maps AgentTool names to their spec, `mcpServers` MCPServer
 * names to what was discovered (undefined: not found).
 */
export function resolveTools(spec: AgentRunSpec, agentTools: ReadonlyMap<string, AgentToolSpec | undefined>,
  mcpServers: ReadonlyMap<string, MCPServerObservation | undefined> = new Map()): ToolResolution {
  const missing: string[] = [];
  const waiting: string[] = [];
  const tools: ResolvedTool[] = [];
  const approvalFor = new Set(spec.approvals?.requiredFor ?? []);
  for (const tool of spec.tools ?? []) {
    if (tool.mcpServerRef) {
      const runApproval = tool.requiresApproval === true || approvalFor.has('*') || approvalFor.has(tool.name);
      const r = resolveMCPEntry(tool, mcpServers.get(tool.mcpServerRef.name), runApproval);
      if (r.ok) tools.push(...r.tools);
      else if ('waiting' in r) waiting.push(r.waiting);
      else return { ok: false, missing: [], problem: r.problem };
      continue;
    }
    const source = tool.toolRef ? agentTools.get(tool.toolRef.name) : undefined;
    if (tool.toolRef && !source) {
      missing.push(tool.toolRef.name);
      continue;
    }
    const def = source ?? tool;
    const container = def.container;
    if (!container) continue; // refused at admission: a tool has toolRef or container
    tools.push({
      name: tool.name,
      ...(def.description !== undefined ? { description: def.description } : {}),
      inputSchema: def.inputSchema ?? { type: 'object' },
      container,
      timeoutSeconds: Math.ceil(parseDurationMs(def.timeout ?? DEFAULT_TIMEOUT) / 1000),
      // Approval can only be added: by the AgentTool, the run's tools[] entry, or approvals.requiredFor.
      requiresApproval: source?.requiresApproval === true || tool.requiresApproval === true || approvalFor.has('*') ||
        approvalFor.has(tool.name),
      idempotent: def.idempotent ?? false,
      retries: def.retries ?? DEFAULT_RETRIES,
      ...(tool.toolRef ? { source: tool.toolRef.name } : {}),
    });
  }
  if (missing.length > 0 || waiting.length > 0)
    return { ok: false, missing, ...(waiting.length > 0 ? { waiting } : {}) };
  const names = tools.map((t) => t.name);
  const clash = names.find((n, i) => names.indexOf(n) !== i);
  if (clash !== undefined) {
    return { ok: false, missing: [],
      problem: `two tools of the run are called ${clash} (an MCPServer's tools and another entry): `
        + 'give the mcpServerRef entry a prefix, or leave the tool out with allow.' };
  }
  return { ok: true, tools };
}
