/** Resolves a run's tools (inline, or toolRef to an AgentTool) into the definitions its steps use. */
import type { AgentRunSpec } from '../api/agent-run.ts';
import type { AgentToolSpec } from '../api/agent-tool.ts';
import { parseDurationMs } from '../api/primitives.ts';
import type { ResolvedTool } from './journal.ts';

const DEFAULT_TIMEOUT = '10m';
const DEFAULT_RETRIES = 2;

export type ToolResolution =
  | { ok: true; tools: ResolvedTool[] }
  | { ok: false; missing: string[] };

/** Resolves every tool; `agentTools` maps AgentTool names to their spec (undefined: not found). */
export function resolveTools(spec: AgentRunSpec, agentTools: ReadonlyMap<string, AgentToolSpec | undefined>): ToolResolution {
  const missing: string[] = [];
  const tools: ResolvedTool[] = [];
  const approvalFor = new Set(spec.approvals?.requiredFor ?? []);
  for (const tool of spec.tools ?? []) {
    const source = tool.toolRef ? agentTools.get(tool.toolRef.name) : undefined;
    if (tool.toolRef && !source) { missing.push(tool.toolRef.name); continue; }
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
      requiresApproval: source?.requiresApproval === true || tool.requiresApproval === true || approvalFor.has('*') || approvalFor.has(tool.name),
      idempotent: def.idempotent ?? false,
      retries: def.retries ?? DEFAULT_RETRIES,
      ...(tool.toolRef ? { source: tool.toolRef.name } : {}),
    });
  }
  return missing.length > 0 ? { ok: false, missing } : { ok: true, tools };
}
