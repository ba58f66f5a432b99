/**
 * MCP tool calls made as MCP Tasks (protocol 2025-11-25): the durable order is intent (the step
 * Running in status) → tools/call with `task` → the task's handle journaled (an `MCPTask` entry
 * of the attempt) → tasks/get until it ends → tasks/result → the result journaled as for any call.
 * After an operator restart, a Running step whose attempt has a journaled handle is polled again
 * on the session that created it — never called again and never reported as interrupted.
 */
import type { StepRecord } from '../api/agent-run.ts';
import { event, journal, type Draft } from './draft.ts';
import type { MCPTaskEntry, MCPTaskHandle, MCPTool } from '../api/journal-entry.ts';
import { mcpTaskJournalName } from './naming.ts';
import type { MCPCallObservation } from './observed.ts';

/** Where an attempt of an MCP step stands with respect to its task: what the step does next. */
export type MCPTaskDecision =
  /** The server created the task and this process polls it, but its handle is not journaled yet. */
  | { readonly next: 'journal'; readonly handle: MCPTaskHandle }
  /** No call of this attempt in this process, but its handle is journaled: poll it again. */
  | { readonly next: 'resume'; readonly handle: MCPTaskHandle }
  /** Nothing task-specific to do (no task, or it is journaled and being polled). */
  | { readonly next: 'none' };

/** The journaled task handle of the step's current attempt, if any. */
export function journaledTask(d: Draft, step: StepRecord): MCPTaskEntry | undefined {
  const entry = d.o.mcpTasks?.get(step.id)?.entry;
  return entry?.kind === 'MCPTask' && entry.attempt === step.attempt ? entry : undefined;
}

/**
 * The pure decision for a Running MCP step's task: `call` is this process's call of the step (if
 * any), `journaled` the handle entry of the current attempt (if any).
 */
export function decideMCPTask(attempt: number, call: MCPCallObservation | undefined,
  journaled: MCPTaskEntry | undefined): MCPTaskDecision {
  const mine = call?.attempt === attempt ? call : undefined;
  if (mine?.state === 'task' && !journaled) return { next: 'journal', handle: mine.handle };
  if (!mine && journaled) return { next: 'resume', handle: journaled.handle };
  return { next: 'none' };
}

/** Journals the handle of a task the server just created, and lets the call poll it. */
export function journalMCPTask(d: Draft, step: StepRecord, tool: MCPTool, handle: MCPTaskHandle): void {
  const name = mcpTaskJournalName(d.o.run.metadata.name, step.id, step.attempt);
  const entry: MCPTaskEntry = { kind: 'MCPTask', stepId: step.id, attempt: step.attempt, server: tool.mcp.server,
    tool: tool.mcp.tool, handle };
  // Not the step's own entry (its result is): the handle has a name of its own per attempt.
  step.mcpTask = { name, digest: journal(d, name, undefined, entry) };
  pollMCPTask(d, step, tool, handle);
}

/** Polls the journaled task of the step's attempt again (after an operator restart). */
export function resumeMCPTask(d: Draft, step: StepRecord, tool: MCPTool, handle: MCPTaskHandle): void {
  event(d, 'Normal', 'MCPTaskResumed',
    `Step ${step.id} (${tool.name}): polling MCP task ${handle.taskId.slice(0, 64)} on MCP server `
      + `${tool.mcp.server} again after an operator restart; the tool is not called again.`);
  pollMCPTask(d, step, tool, handle);
}

function pollMCPTask(d: Draft, step: StepRecord, tool: MCPTool, handle: MCPTaskHandle): void {
  d.effects.push({
    type: 'pollMCPTask',
    stepId: step.id,
    attempt: step.attempt,
    server: tool.mcp.server,
    tool: tool.mcp.tool,
    handle,
    timeoutMs: tool.timeoutSeconds * 1000,
    maxOutputBytes: d.spec.limits.maxToolOutputBytes,
  });
}

/** The error result a lost task (the server forgot it or its session) gives when it is not called again. */
export function lostTaskMessage(tool: MCPTool, why: string): string {
  return `Error: MCP server ${tool.mcp.server} no longer knows the task of tool ${tool.mcp.tool} (${why}); `
    + 'it probably restarted. The tool is not marked idempotent, so it was not called again; '
    + 'it may or may not have had its effect.';
}
