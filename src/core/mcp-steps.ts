/**
 * MCP tool steps: the call is made by the operator on a long-lived MCP server instead of in a
 * pod. Durability is the same as for pods: the step is Running in status (intent) before the
 * call starts, and its result is journaled before status says it is done. After a crash, a step
 * Running with no call of its attempt in this process was interrupted: an idempotent tool is
 * called again (next attempt), any other gets an "interrupted" error result — never a silent repeat.
 * A call made as an MCP task is the exception: its journaled handle is polled again (mcp-tasks.ts).
 */
import type { StepRecord } from '../api/agent-run.ts';
import { StepOutcome } from '../api/conditions.ts';
import type { MCPTool, ResolvedTool } from '../api/journal-entry.ts';
import type { MCPCallResult } from './observed.ts';
import { event, now, requeueAt, truncate, type Draft } from './draft.ts';
import { moveStep } from './machine.ts';
import { recordToolResult, toolInputOf } from './tool-steps.ts';
import { decideMCPTask, journalMCPTask, journaledTask, lostTaskMessage, resumeMCPTask } from './mcp-tasks.ts';

/** Wait before a call that never reached the server is tried again, times the attempt. */
export const MCP_RETRY_BASE_MS = 1000;

/** Whether a resolved tool is called on an MCP server (not run in a pod). */
export function isMCPTool(tool: ResolvedTool): tool is MCPTool {
  return tool.mcp !== undefined;
}

/**
 * Asks the reconciler to make the call of the step's current attempt: after the status write, or,
 * `withAnswer`, as soon as the model answer this decision journals (and which names the step) is
 * stored.
 */
export function startMCPCall(d: Draft, step: StepRecord, tool: MCPTool, withAnswer = false): void {
  step.mcpServer = tool.mcp.server;
  if (withAnswer) d.answer?.started.push(step.id);
  delete step.retry;
  delete step.mcpTask; // an earlier attempt's task
  d.effects.push({
    type: 'startMCPCall',
    stepId: step.id,
    attempt: step.attempt,
    server: tool.mcp.server,
    tool: tool.mcp.tool,
    input: toolInputOf(d, step) ?? {},
    timeoutMs: tool.timeoutSeconds * 1000,
    maxOutputBytes: d.spec.limits.maxToolOutputBytes,
    ...(tool.mcp.task === true ? { task: true } : {}),
    ...(withAnswer ? { withAnswer: true as const } : {}),
  });
}

/**
 * A step its model answer's journal entry says was called with it, but which status never
 * recorded as Running (the process stopped before that status landed): it is Running, and
 * progressMCPCall decides as for any Running step — this process's call adopted, or the
 * interruption handled (called again only when idempotent). Slots and suspend do not hold it back:
 * its call may already have been made.
 */
export function adoptCalledWithAnswer(d: Draft, step: StepRecord, tool: MCPTool): void {
  moveStep(step, 'Running');
  step.startedAt = now(d);
  step.mcpServer = tool.mcp.server;
  progressMCPCall(d, step, tool);
}

/** Moves a Running MCP step on: records a finished call, retries when due, or handles an interruption. */
export function progressMCPCall(d: Draft, step: StepRecord, tool: MCPTool): void {
  const call = d.o.mcpCalls?.get(step.id);
  const task = decideMCPTask(step.attempt, call, journaledTask(d, step));
  if (task.next === 'journal') {
    journalMCPTask(d, step, tool, task.handle);
    return;
  }
  if (call && call.attempt === step.attempt) {
    if (call.state === 'done') recordMCPOutcome(d, step, tool, call.result);
    return;
  }
  const retryAt = step.retry?.nextRetryAt ? Date.parse(step.retry.nextRetryAt) : undefined;
  if (retryAt !== undefined) {
    if (retryAt > d.o.now) {
      requeueAt(d, retryAt);
      return;
    }
    startMCPCall(d, step, tool);
    return;
  }
  if (task.next === 'resume') {
    resumeMCPTask(d, step, tool, task.handle);
    return;
  }
  // No call of this attempt in this process: the process that started it stopped mid-call.
  const decision = afterInterruption(tool, step.attempt);
  if (decision === 'retry') {
    event(d, 'Warning', 'ToolRetrying',
      `Step ${step.id} (${tool.name}): the call to MCP server ${tool.mcp.server} was interrupted `
        + `by an operator restart; the tool is idempotent, so attempt ${step.attempt + 1} calls it again.`);
    step.attempt += 1;
    startMCPCall(d, step, tool);
    return;
  }
  record(d, step, tool, StepOutcome.Interrupted,
    `Error: the call to tool ${tool.mcp.tool} on MCP server ${tool.mcp.server} was interrupted `
      + '(the operator stopped while it was in flight). The tool is not marked idempotent, so it was not called again; '
      + 'it may or may not have had its effect.');
}

/** After a call's task was lost (the server restarted): called again when idempotent, else reported. */
function afterLostTask(d: Draft, step: StepRecord, tool: MCPTool, why: string): void {
  if (afterInterruption(tool, step.attempt) === 'retry') {
    event(d, 'Warning', 'ToolRetrying',
      `Step ${step.id} (${tool.name}): MCP server ${tool.mcp.server} lost the task (${truncate(why, 300)}); `
        + `the tool is idempotent, so attempt ${step.attempt + 1} calls it again.`);
    step.attempt += 1;
    startMCPCall(d, step, tool);
    return;
  }
  record(d, step, tool, StepOutcome.Interrupted, lostTaskMessage(tool, truncate(why, 400)));
}

/** What an interrupted call leads to: called again (idempotent, attempts left) or reported. */
export function afterInterruption(tool: ResolvedTool, attempt: number): 'retry' | 'report' {
  return tool.idempotent && attempt <= tool.retries ? 'retry' : 'report';
}

function recordMCPOutcome(d: Draft, step: StepRecord, tool: MCPTool, r: MCPCallResult): void {
  const where = `MCP server ${tool.mcp.server}`;
  switch (r.kind) {
    case 'result':
      record(d, step, tool, StepOutcome.Completed, r.text, false, r.truncated);
      return;
    case 'tool-error':
      record(d, step, tool, StepOutcome.ToolError, r.text, true, r.truncated);
      return;
    case 'unknown-tool':
      record(d, step, tool, StepOutcome.ToolUnavailable, `Error: ${where} no longer offers the tool ${tool.mcp.tool} `
        + `(it answered: ${truncate(r.text, 400)}). The tool did not run; do not call it again in this run.`);
      return;
    case 'protocol-error':
      record(d, step, tool, StepOutcome.MCPProtocolError,
        `Error: ${where} refused the call with a protocol error: ${truncate(r.text, 800)}`);
      return;
    case 'timeout':
      record(d, step, tool, StepOutcome.TimedOut,
        `Error: the tool did not finish within its timeout (${tool.timeoutSeconds}s); `
          + 'the call was cancelled. It may or may not have had its effect.');
      return;
    case 'task-lost':
      afterLostTask(d, step, tool, r.text);
      return;
    case 'not-sent':
    case 'transport-error': {
      // A call that never reached the server is always safe to make again; one that may have, only when idempotent.
      const safe = r.kind === 'not-sent' || tool.idempotent;
      if (safe && step.attempt <= tool.retries) {
        scheduleRetry(d, step, tool, r);
        return;
      }
      const why = truncate(r.text, 600);
      record(d, step, tool, StepOutcome.MCPUnreachable, r.kind === 'not-sent'
        ? `Error: ${where} could not be reached on ${step.attempt} attempts (${why}); the tool did not run.`
        : `Error: the connection to ${where} broke during the call (${why}). `
          + 'The tool is not marked idempotent, so it was not called again; it may or may not have had its effect.');
      return;
    }
  }
}

function scheduleRetry(d: Draft, step: StepRecord, tool: MCPTool, r: MCPCallResult): void {
  const at = d.o.now + MCP_RETRY_BASE_MS * step.attempt;
  step.retry = { attempt: step.attempt, errorClass: r.kind === 'not-sent' ? 'MCPNotSent' : 'MCPTransport',
    errorMessage: truncate(r.text, 1024), nextRetryAt: new Date(at).toISOString() };
  event(d, 'Warning', 'ToolRetrying',
    `Step ${step.id} (${tool.name}): ${truncate(r.text, 300)}; attempt ${step.attempt + 1} `
      + `at ${step.retry.nextRetryAt ?? ''}.`);
  step.attempt += 1;
  requeueAt(d, at);
}

function record(d: Draft, step: StepRecord, tool: MCPTool, outcome: StepOutcome, output: string, isError = true,
  truncated = false): void {
  step.finishedAt = now(d);
  recordToolResult(d, step, { isError, outcome, output, truncated,
    mcp: { server: tool.mcp.server, tool: tool.mcp.tool } });
}
