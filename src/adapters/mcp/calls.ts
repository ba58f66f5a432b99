/**
 * MCP tool calls in flight, outside the reconcile workers (like ModelCalls): the reconciler
 * starts a call after the step's intent is in status; when it ends, its classified outcome is
 * kept here and the run is enqueued so that decide() journals it. Memory is per process on
 * purpose: after a restart a Running step with no call here was interrupted (core/mcp-steps.ts).
 * One session per MCPServer is kept open and shared by every call to it.
 */
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { MCPServerSpec } from '../../api/mcp-server.ts';
import { cutToBytes, mcpResultText, type MCPContentBlock } from '../../core/mcp-content.ts';
import type { MCPCallObservation, MCPCallResult } from '../../core/observed.ts';
import type { SecretReader } from '../../ports.ts';
import { connectMCP, describeMCPError, type MCPConnection } from './connect.ts';

export interface StartMCPCall {
  readonly runUid: string;
  readonly stepId: number;
  readonly attempt: number;
  readonly namespace: string;
  readonly server: string;
  readonly tool: string;
  readonly input: unknown;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  /** The MCPServer's spec when the call starts (undefined: it no longer exists). */
  readonly spec: () => MCPServerSpec | undefined;
  readonly onDone: () => void;
}

/** The SDK's ErrorCode values this file tells apart (an enum; compared as plain numbers). */
const JSONRPC = { connectionClosed: -32000, requestTimeout: -32001, invalidParams: -32602 } as const;

interface Call { attempt: number; observation: MCPCallObservation; abort: AbortController }
interface Session { fingerprint: string; connection: Promise<MCPConnection> }

/** Called once per finished call, for metrics: server is namespace/name. */
export type MCPCallListener = (server: string, outcome: MCPCallResult['kind'], ms: number) => void;

export class MCPCalls {
  private readonly calls = new Map<string, Call>();
  private readonly sessions = new Map<string, Session>();
  private readonly secrets: SecretReader;
  private readonly onCallFinished: MCPCallListener | undefined;

  constructor(secrets: SecretReader, onCallFinished?: MCPCallListener) {
    this.secrets = secrets;
    this.onCallFinished = onCallFinished;
  }

  /** Starts the call unless this attempt is already in flight or done. */
  start(call: StartMCPCall): void {
    const id = `${call.runUid}/${call.stepId}`;
    const existing = this.calls.get(id);
    if (existing && existing.attempt === call.attempt) return;
    existing?.abort.abort();
    const abort = new AbortController();
    const record: Call = { attempt: call.attempt, observation: { state: 'in-flight', attempt: call.attempt }, abort };
    this.calls.set(id, record);
    const started = performance.now();
    void this.run(call, abort.signal).then((result) => {
      if (abort.signal.aborted) return;
      record.observation = { state: 'done', attempt: call.attempt, result };
      this.onCallFinished?.(`${call.namespace}/${call.server}`, result.kind, performance.now() - started);
      if (this.calls.get(id) === record) call.onDone();
    });
  }

  private async run(call: StartMCPCall, signal: AbortSignal): Promise<MCPCallResult> {
    const spec = call.spec();
    if (!spec) return notSent(`MCPServer ${call.namespace}/${call.server} does not exist (any more): ask an admin to create it`);
    let connection: MCPConnection;
    const key = `${call.namespace}/${call.server}`;
    try {
      connection = await this.session(call.namespace, call.server, spec);
    } catch (error) {
      return notSent(describeMCPError(error));
    }
    try {
      const result = await connection.client.callTool(
        { name: call.tool, arguments: (call.input ?? {}) as Record<string, unknown> },
        CallToolResultSchema,
        { signal, timeout: call.timeoutMs, maxTotalTimeout: call.timeoutMs, resetTimeoutOnProgress: true },
      );
      const view = mcpResultText(result as { content?: MCPContentBlock[]; structuredContent?: unknown }, call.maxOutputBytes);
      if (result.isError !== true) return { kind: 'result', ...view };
      // The SDK's server turns "no such tool" into an error result; the step says what it is.
      if (/^MCP error -32602: Tool \S+ not found/.test(view.text)) return { kind: 'unknown-tool', ...view };
      return { kind: 'tool-error', ...view };
    } catch (error) {
      return this.classify(key, error, call.maxOutputBytes);
    }
  }

  private classify(key: string, error: unknown, limit: number): MCPCallResult {
    const text = cutToBytes(describeMCPError(error), Math.min(limit, 2048));
    if (error instanceof McpError) {
      const code: number = error.code;
      if (code === JSONRPC.requestTimeout) return { kind: 'timeout', ...text };
      if (code === JSONRPC.connectionClosed) { this.drop(key); return { kind: 'transport-error', ...text }; }
      if (code === JSONRPC.invalidParams && /not found/i.test(error.message)) return { kind: 'unknown-tool', ...text };
      return { kind: 'protocol-error', ...text };
    }
    this.drop(key);
    // 404: the server does not know the session (it restarted) and ran nothing; the next attempt reconnects.
    if (error instanceof StreamableHTTPError && error.code === 404) return { kind: 'not-sent', ...text };
    return { kind: 'transport-error', ...text };
  }

  /** The open session to the server, reconnecting when its spec (URL, headers, timeouts) changed. */
  private async session(namespace: string, name: string, spec: MCPServerSpec): Promise<MCPConnection> {
    const key = `${namespace}/${name}`;
    const fingerprint = JSON.stringify(spec);
    const open = this.sessions.get(key);
    if (open?.fingerprint === fingerprint) return await open.connection;
    if (open) this.drop(key);
    const connection = connectMCP(namespace, spec, this.secrets, {
      onClose: () => { if (this.sessions.get(key) === session) this.sessions.delete(key); },
      // A broken stream fails the calls on it now (ConnectionClosed) rather than at their timeout.
      onError: () => { if (this.sessions.get(key) === session) this.drop(key); },
    });
    const session: Session = { fingerprint, connection };
    this.sessions.set(key, session);
    connection.catch(() => { if (this.sessions.get(key) === session) this.sessions.delete(key); });
    return await connection;
  }

  private drop(key: string): void {
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    session?.connection.then((c) => c.client.close(), () => undefined).catch(() => undefined);
  }

  /** What this process knows about the run's calls, by step id. */
  observe(runUid: string): Map<number, MCPCallObservation> {
    const out = new Map<number, MCPCallObservation>();
    const prefix = `${runUid}/`;
    for (const [id, call] of this.calls) if (id.startsWith(prefix)) out.set(Number(id.slice(prefix.length)), call.observation);
    return out;
  }

  /** Forgets a step's call once its outcome is recorded (aborting it if still in flight), or all of a run's. */
  forget(runUid: string, stepId?: number): void {
    for (const [id, call] of [...this.calls]) {
      if (stepId !== undefined ? id !== `${runUid}/${stepId}` : !id.startsWith(`${runUid}/`)) continue;
      if (call.observation.state === 'in-flight') call.abort.abort();
      this.calls.delete(id);
    }
  }

  inFlight(): number {
    let n = 0;
    for (const call of this.calls.values()) if (call.observation.state === 'in-flight') n++;
    return n;
  }

  /** Aborts every call and closes every session (the operator stops). */
  async close(): Promise<void> {
    for (const call of this.calls.values()) call.abort.abort();
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map(async (s) => { await s.connection.then((c) => c.client.close(), () => undefined).catch(() => undefined); }));
  }
}

function notSent(message: string): MCPCallResult {
  return { kind: 'not-sent', text: message.slice(0, 1024), truncated: false };
}
