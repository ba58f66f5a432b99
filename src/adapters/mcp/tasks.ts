/**
 * MCP Tasks on the wire (protocol 2025-11-25, experimental): a `tools/call` with `task` returns
 * a task handle at once; the task is then polled with `tasks/get` (honouring its pollInterval,
 * bounded) until it ends, and its result read with `tasks/result`. The tool's timeout counts from
 * the task's creation; past it the task is cancelled. A server that no longer knows the task or
 * its session (it restarted) makes the outcome `task-lost`: the core decides what that leads to.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateTaskResultSchema,
  McpError,
  ResultSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import type { MCPTaskHandle } from '../../api/journal-entry.ts';
import { cutToBytes, mcpResultText, type MCPContentBlock } from '../../core/mcp-content.ts';
import type { MCPCallResult } from '../../core/observed.ts';
import { describeMCPError } from './connect.ts';

/** Bounds on polling: a server's pollInterval is honoured within them. */
export const TASK_POLL = { minMs: 200, defaultMs: 1000, maxMs: 30_000, requestTimeoutMs: 30_000 } as const;
/** How long a best-effort tasks/cancel may take. */
const CANCEL_TIMEOUT_MS = 5000;
const INVALID_PARAMS = -32602;
/** Longest task or session id kept in the journal (mcpTaskHandle in core/journal.ts). */
const MAX_ID_CHARS = 256;

/** What a task poll needs of the call. */
export interface TaskCall {
  readonly tool: string;
  readonly input: unknown;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
}

/** A plain CallToolResult classified for the core (shared by plain calls and task results). */
export function classifyToolResult(result: Pick<CallToolResult, 'isError'> & object, limit: number): MCPCallResult {
  const content = result as { content?: MCPContentBlock[]; structuredContent?: unknown };
  const view = mcpResultText(content, limit);
  if (result.isError !== true) return { kind: 'result', ...view };
  // The SDK's server turns "no such tool" into an error result; the step says what it is.
  if (/^MCP error -32602: Tool \S+ not found/.test(view.text)) return { kind: 'unknown-tool', ...view };
  return { kind: 'tool-error', ...view };
}

/** The outcome of `tools/call` with `task`: a handle, or a plain result (a server that ran it at once). */
export type TaskCreation =
  | { readonly created: true; readonly handle: MCPTaskHandle }
  | { readonly created: false; readonly result: MCPCallResult };

/** Sends `tools/call` with `task`; throws what the SDK throws (the caller classifies it). */
export async function createTask(client: Client, sessionId: string | undefined, protocolVersion: string | undefined,
  call: TaskCall, signal: AbortSignal): Promise<TaskCreation> {
  const params = { name: call.tool, arguments: (call.input ?? {}) as Record<string, unknown>, task: {} };
  const raw = await client.request({ method: 'tools/call', params }, ResultSchema, { signal, timeout: call.timeoutMs });
  const created = CreateTaskResultSchema.safeParse(raw);
  if (!created.success) {
    const plain = CallToolResultSchema.safeParse(raw);
    if (plain.success) return { created: false, result: classifyToolResult(plain.data, call.maxOutputBytes) };
    return { created: false,
      result: { kind: 'protocol-error', truncated: false,
        text: 'the server answered tools/call with neither a task nor a tool result' } };
  }
  const task = created.data.task;
  // The handle goes into the journal, whose schema bounds it: a server is not trusted to be small.
  if (task.taskId.length > MAX_ID_CHARS || (sessionId?.length ?? 0) > MAX_ID_CHARS) {
    return { created: false,
      result: { kind: 'protocol-error', truncated: false,
        text: `the server's task or session id is over ${MAX_ID_CHARS} characters; the task cannot be tracked` } };
  }
  const createdAt = Number.isFinite(Date.parse(task.createdAt)) && task.createdAt.length <= 64
    ? task.createdAt :
    new Date().toISOString();
  return { created: true, handle: {
    taskId: task.taskId,
    ...(sessionId !== undefined ? { sessionId } : {}),
    ...(protocolVersion !== undefined ? { protocolVersion: protocolVersion.slice(0, 64) } : {}),
    createdAt,
    ...(Number.isFinite(task.pollInterval) ? { pollIntervalMs: task.pollInterval } : {}),
    ttlMs: Number.isFinite(task.ttl) ? task.ttl : null,
  } };
}

/** Whether an error means the server no longer knows the task or its session. */
export function isTaskLost(error: unknown): boolean {
  if (error instanceof McpError) return error.code === INVALID_PARAMS && /not found/i.test(error.message);
  if (!(error instanceof StreamableHTTPError)) return false;
  return error.code === 404 || (error.code === 400 && /session/i.test(error.message));
}

/** Where to poll: a client on the task's session (opened again after a transient failure). */
export interface TaskSession {
  open(): Promise<Client>;
  /** The session failed: the next open() gives a fresh one. */
  broken(): void;
}

/**
 * Polls a task to its end and returns its classified outcome. Transient failures (a broken
 * connection, a slow answer) are retried until the tool's timeout; only a server that says it does
 * not know the task or session makes it `task-lost`.
 */
export async function pollTask(session: TaskSession, handle: MCPTaskHandle, call: TaskCall, signal: AbortSignal,
  now: () => number = Date.now): Promise<MCPCallResult> {
  const created = Date.parse(handle.createdAt);
  const deadline = (Number.isFinite(created) ? Math.min(created, now()) : now()) + call.timeoutMs;
  let interval = pollInterval(handle.pollIntervalMs);
  let lastError: string | undefined;
  const limit = call.maxOutputBytes;
  for (;;) {
    const remaining = deadline - now();
    if (signal.aborted) return { kind: 'transport-error', text: 'aborted', truncated: false };
    if (remaining <= 0) {
      if (lastError !== undefined) return { kind: 'transport-error', ...cutToBytes(lastError, Math.min(limit, 2048)) };
      await cancel(session, handle);
      return { kind: 'timeout', truncated: false,
        text: `the task ${handle.taskId} did not finish within its timeout; it was cancelled` };
    }
    const timeout = Math.max(1000, Math.min(remaining, TASK_POLL.requestTimeoutMs));
    try {
      const client = await session.open();
      const task = await client.experimental.tasks.getTask(handle.taskId, { signal, timeout });
      lastError = undefined;
      interval = pollInterval(task.pollInterval ?? handle.pollIntervalMs);
      const message = task.statusMessage ?? '';
      switch (task.status) {
        case 'completed': {
          const result = await client.experimental.tasks.getTaskResult(handle.taskId, CallToolResultSchema, { signal,
            timeout });
          return classifyToolResult(result, limit);
        }
        case 'failed':
          return { kind: 'tool-error',
            ...cutToBytes(`Error: the MCP task failed on the server: ${message || 'it gave no message'}`, limit) };
        case 'cancelled':
          return { kind: 'tool-error',
            ...cutToBytes(`Error: the MCP task was cancelled on the server${message ? `: ${message}` : ''}.`, limit) };
        case 'input_required':
          await cancel(session, handle);
          return { kind: 'tool-error', ...cutToBytes('Error: the MCP task asked for input '
            + `(${message || 'no message'}), which the operator cannot give; the task was cancelled.`, limit) };
        case 'working':
          break;
      }
    } catch (error) {
      // (An abort lands here too: the loop's top returns.)
      if (isTaskLost(error)) {
        return { kind: 'task-lost', ...cutToBytes(describeMCPError(error), Math.min(limit, 2048)) };
      }
      lastError = describeMCPError(error);
      session.broken();
    }
    await sleep(Math.min(interval, Math.max(0, deadline - now())), signal);
  }
}

function pollInterval(ms: number | undefined): number {
  return Math.min(TASK_POLL.maxMs, Math.max(TASK_POLL.minMs, ms ?? TASK_POLL.defaultMs));
}

/** Best effort: a task that outlived its use is cancelled; failing to is not the call's outcome. */
async function cancel(session: TaskSession, handle: MCPTaskHandle): Promise<void> {
  try {
    const client = await session.open();
    await client.experimental.tasks.cancelTask(handle.taskId, { timeout: CANCEL_TIMEOUT_MS });
  } catch {
    // The task may have ended meanwhile, or the server be gone.
  }
}

async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
