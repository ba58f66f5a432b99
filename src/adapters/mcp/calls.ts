/**
 * MCP tool calls on the wire: one session per MCPServer is kept open and shared by every call to
 * it, and each call's outcome is classified for the core. Which calls are in flight, and their
 * outcomes, live in the reconciler's run memory (reconciler/memory/mcp-calls.ts).
 */
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { MCPServerSpec } from '../../api/mcp-server.ts';
import type { MCPTaskHandle } from '../../api/journal-entry.ts';
import { cutToBytes } from '../../core/mcp-content.ts';
import type { MCPCallResult } from '../../core/observed.ts';
import type { MCPCallRequest, MCPClient, SecretReader } from '../../ports.ts';
import { connectMCP, describeMCPError, type MCPConnection } from './connect.ts';
import { classifyToolResult, createTask, pollTask, type TaskSession } from './tasks.ts';

/** The SDK's ErrorCode values this file tells apart (an enum; compared as plain numbers). */
const JSONRPC = { connectionClosed: -32000, requestTimeout: -32001, invalidParams: -32602 } as const;

interface Session {
  fingerprint: string;
  connection: Promise<MCPConnection>;
}

/** Calls MCP tools over shared sessions, one per MCPServer. */
export class MCPSessionClient implements MCPClient {
  private readonly sessions = new Map<string, Session>();
  private readonly secrets: SecretReader;

  constructor(secrets: SecretReader) {
    this.secrets = secrets;
  }

  async call(call: MCPCallRequest, signal: AbortSignal): Promise<MCPCallResult> {
    const opened = await this.open(call);
    if (!opened.ok) return opened.result;
    const { connection, key } = opened;
    try {
      const result = await connection.client.callTool(
        { name: call.tool, arguments: (call.input ?? {}) as Record<string, unknown> },
        CallToolResultSchema,
        { signal, timeout: call.timeoutMs, maxTotalTimeout: call.timeoutMs, resetTimeoutOnProgress: true },
      );
      return classifyToolResult(result, call.maxOutputBytes);
    } catch (error) {
      return this.classify(key, error, call.maxOutputBytes);
    }
  }

  async callTask(call: MCPCallRequest, signal: AbortSignal,
    created: (handle: MCPTaskHandle) => Promise<void>): Promise<MCPCallResult> {
    const opened = await this.open(call);
    if (!opened.ok) return opened.result;
    const { connection, key } = opened;
    let handle: MCPTaskHandle;
    try {
      const creation = await createTask(connection.client, connection.transport.sessionId, connection.protocolVersion,
        call, signal);
      if (!creation.created) return creation.result;
      handle = creation.handle;
    } catch (error) {
      return this.classify(key, error, call.maxOutputBytes);
    }
    try {
      await created(handle);
    } catch {
      return { kind: 'transport-error', text: 'aborted before the task was polled', truncated: false };
    }
    return await this.resumeTask(call, handle, signal);
  }

  /** The shared session to the call's server, or the not-sent result that says why there is none. */
  private async open(call: MCPCallRequest): Promise<
    | { readonly ok: true; readonly connection: MCPConnection; readonly key: string }
    | { readonly ok: false; readonly result: MCPCallResult }
  > {
    const spec = call.spec;
    if (!spec) {
      return { ok: false, result: notSent(
        `MCPServer ${call.namespace}/${call.server} does not exist (any more): ask an admin to create it`,
      ) };
    }
    try {
      const connection = await this.session(call.namespace, call.server, spec);
      return { ok: true, connection, key: `${call.namespace}/${call.server}` };
    } catch (error) {
      return { ok: false, result: notSent(describeMCPError(error)) };
    }
  }

  async resumeTask(call: MCPCallRequest, handle: MCPTaskHandle, signal: AbortSignal): Promise<MCPCallResult> {
    const spec = call.spec;
    if (!spec) {
      return { kind: 'task-lost', truncated: false,
        text: `MCPServer ${call.namespace}/${call.server} does not exist any more` };
    }
    const session = this.taskSession(call.namespace, call.server, spec, handle);
    try {
      return await pollTask(session, handle, call, signal);
    } finally {
      await session.close();
    }
  }

  /**
   * A client on the task's session: the shared one while it is that session, else one that
   * rejoins it by its id (the server's task store is per session), closed when polling ends.
   */
  private taskSession(namespace: string, name: string, spec: MCPServerSpec, handle: MCPTaskHandle): TaskSession & {
    close(): Promise<void>;
  } {
    const key = `${namespace}/${name}`;
    let own: Promise<MCPConnection> | undefined;
    const closeOwn = async () => {
      const c = own;
      own = undefined;
      await c?.then((x) => x.client.close(), () => undefined).catch(() => undefined);
    };
    return {
      open: async () => {
        const shared = this.sessions.get(key);
        if (shared && !own) {
          const connection = await shared.connection.catch(() => undefined);
          if (connection && connection.transport.sessionId === handle.sessionId) return connection.client;
        }
        if (handle.sessionId === undefined) return (await this.session(namespace, name, spec)).client;
        own ??= connectMCP(namespace, spec, this.secrets, {
          resume: { sessionId: handle.sessionId, protocolVersion: handle.protocolVersion },
        });
        return (await own).client;
      },
      broken: () => {
        void closeOwn();
      },
      close: closeOwn,
    };
  }

  private classify(key: string, error: unknown, limit: number): MCPCallResult {
    const text = cutToBytes(describeMCPError(error), Math.min(limit, 2048));
    if (error instanceof McpError) {
      const code: number = error.code;
      if (code === JSONRPC.requestTimeout) return { kind: 'timeout', ...text };
      if (code === JSONRPC.connectionClosed) {
        this.drop(key);
        return { kind: 'transport-error', ...text };
      }
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
      onClose: () => {
        if (this.sessions.get(key) === session) this.sessions.delete(key);
      },
      // A broken stream fails the calls on it now (ConnectionClosed) rather than at their timeout.
      onError: () => {
        if (this.sessions.get(key) === session) this.drop(key);
      },
    });
    const session: Session = { fingerprint, connection };
    this.sessions.set(key, session);
    connection.catch(() => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    });
    return await connection;
  }

  private drop(key: string): void {
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    session?.connection.then((c) => c.client.close(), () => undefined).catch(() => undefined);
  }

  /** Closes every session (the operator stops). */
  async close(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map(async (s) => {
      await s.connection.then((c) => c.client.close(), () => undefined).catch(() => undefined);
    }));
  }
}

function notSent(message: string): MCPCallResult {
  return { kind: 'not-sent', text: message.slice(0, 1024), truncated: false };
}
