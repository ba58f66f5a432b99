/**
 * The peers' MCP tool: server-everything's `echo`, called with the official SDK client over
 * Streamable HTTP. One session per process, opened when the agent starts and kept (as the
 * operator keeps one per MCPServer), so a turn costs one request, not an initialize.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** echo as the model sees it (the schema server-everything lists). */
export const ECHO_TOOL = {
  name: 'echo', description: 'Echoes back the input',
  input_schema: { type: 'object' as const, properties: { message: { type: 'string', description: 'Message to echo' } }, required: ['message'] },
};

const sessions = new Map<string, Promise<Client>>();

/** The session to the server at `url`, opened on first use (a peer opens it at start, before its first turn). */
export function openMCPSession(url: string): Promise<Client> {
  let open = sessions.get(url);
  if (!open) {
    const client = new Client({ name: 'agentrun-bench-peer', version: '0.1.0' });
    open = client.connect(new StreamableHTTPClientTransport(new URL(url))).then(() => client);
    sessions.set(url, open);
    open.catch(() => { sessions.delete(url); });
  }
  return open;
}

/** Calls `tool` on the server at `url`; the result's text blocks, joined (an error result throws). */
export async function callMCPTool(url: string, tool: string, input: unknown): Promise<string> {
  const client = await openMCPSession(url);
  const result = await client.callTool({ name: tool, arguments: (input ?? {}) as Record<string, unknown> });
  const content = (result.content ?? []) as { type: string; text?: string }[];
  const out = content.filter((b) => b.type === 'text').map((b) => b.text ?? '').join('\n');
  if (result.isError === true) throw new Error(`MCP tool ${tool} failed: ${out}`);
  return out;
}

/** Closes every open session (a process that is done with its agent). */
export async function closeMCPSessions(): Promise<void> {
  const open = [...sessions.values()];
  sessions.clear();
  await Promise.all(open.map(async (s) => { await (await s).close(); }));
}
