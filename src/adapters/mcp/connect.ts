/**
 * Connects to a remote MCP server with the official SDK: `Client` over
 * `StreamableHTTPClientTransport`, with the MCPServer's headers read from its Secrets at connect
 * time (never stored beyond the transport, never logged), a connect timeout, and a cap on the
 * bytes one response may carry (a server is not trusted to be small).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { MCPServerSpec } from '../../api/mcp-server.ts';
import { parseDurationMs } from '../../api/primitives.ts';
import type { SecretReader } from '../../ports.ts';
import { boundedFetch } from '../model/bounded-fetch.ts';

/** The operator's client identity in `initialize`. */
export const CLIENT_INFO = { name: 'agentrun-operator', version: '0.1.0' } as const;
/** Bytes one MCP response (a tools/list, a call's result) may have before it is cut off. */
export const MAX_MCP_RESPONSE_BYTES = 8 * 1024 * 1024;

/** Connecting failed before any request reached the server: nothing ran. */
export class MCPConnectError extends Error {
  override name = 'MCPConnectError';
}

/** An open MCP session: the SDK client and what the server said at initialize. */
export interface MCPConnection {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  /** Negotiated in initialize. */
  readonly protocolVersion: string | undefined;
}

/** Headers of the server, from its Secrets; throws MCPConnectError saying which Secret is wrong. */
export async function headersOf(namespace: string, spec: MCPServerSpec,
  secrets: SecretReader): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of spec.headers ?? []) {
    try {
      out[h.name] = await secrets.read(namespace, h.secretKeyRef.name, h.secretKeyRef.key);
    } catch (error) {
      throw new MCPConnectError(`header ${h.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return out;
}

/**
 * Opens a session: initialize within spec.timeouts.connect. The POSTs that carry messages are
 * size-capped; the standalone GET stream (server notifications) is not, since it lives as long as
 * the session and carries only small notifications.
 */
export async function connectMCP(namespace: string, spec: MCPServerSpec, secrets: SecretReader,
  options: { onToolsChanged?: () => void; onClose?: () => void; onError?: () => void;
    /** Rejoin an existing session (an MCP task's): no initialize, the session's protocol version. */
    resume?: { sessionId: string; protocolVersion: string | undefined } } = {}): Promise<MCPConnection> {
  // A managed server's address is known once it runs (mcp-observations.ts puts status.url in).
  if (spec.url === undefined)
    throw new MCPConnectError('the managed MCP server has no address yet: it is not Ready (see its Ready condition)');
  const headers = await headersOf(namespace, spec, secrets);
  const bounded = boundedFetch(MAX_MCP_RESPONSE_BYTES);
  const transport = new StreamableHTTPClientTransport(new URL(spec.url), {
    requestInit: { headers },
    fetch: async (input, init) => (init?.method === 'GET' ? fetch(input, init) : bounded(input, init)),
    // A broken stream is not resumed: the call's outcome is decided by the step (retry or report).
    reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000,
      reconnectionDelayGrowFactor: 1 },
    ...(options.resume ? { sessionId: options.resume.sessionId } : {}),
  });
  const client = new Client(CLIENT_INFO, {
    capabilities: {},
    ...(options.onToolsChanged
      ? { listChanged: { tools: { autoRefresh: false, debounceMs: 300, onChanged: () => {
        options.onToolsChanged?.();
      } } } }
      : {}),
  });
  if (options.onClose) client.onclose = options.onClose;
  try {
    await client.connect(transport, { timeout: parseDurationMs(spec.timeouts.connect) });
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new MCPConnectError(`connecting to ${spec.url} failed: ${describeMCPError(error)}`);
  }
  // The SDK skips initialize for a transport with a session id; requests still name the version.
  if (options.resume?.protocolVersion !== undefined) transport.setProtocolVersion(options.resume.protocolVersion);
  // Set after connect: errors during it are the connect's own.
  if (options.onError) client.onerror = options.onError;
  return { client, transport, protocolVersion: transport.protocolVersion };
}

/** A short description of an SDK or network error, with its cause (fetch hides the reason there). */
export function describeMCPError(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 500);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`.slice(0, 500);
}
