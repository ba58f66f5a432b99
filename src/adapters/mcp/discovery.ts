/**
 * MCP discovery sessions over the official SDK (connect.ts): what the MCPServer controller lists
 * tools on and hears notifications/tools/list_changed from. Connect failures become the port's
 * MCPUnreachableError; errors of tools/list carry the SDK's message in a plain Error.
 */
import type { MCPServerSpec } from '../../api/mcp-server.ts';
import type { ListedTool } from '../../core/mcp-discovery.ts';
import { MCPUnreachableError } from '../../port-errors.ts';
import type { MCPDiscovery, MCPDiscoveryEvents, MCPDiscoverySession, SecretReader } from '../../ports.ts';
import { MCPConnectError, connectMCP, describeMCPError, type MCPConnection } from './connect.ts';

/** Pages of tools/list read at most (each may hold many tools; the status keeps a bounded number). */
const MAX_LIST_PAGES = 20;

/** Opens discovery sessions with the MCPServer's headers, read from its Secrets at connect time. */
export class MCPSDKDiscovery implements MCPDiscovery {
  private readonly secrets: SecretReader;

  constructor(secrets: SecretReader) {
    this.secrets = secrets;
  }

  async open(namespace: string, spec: MCPServerSpec, events: MCPDiscoveryEvents): Promise<MCPDiscoverySession> {
    let connection: MCPConnection;
    try {
      connection = await connectMCP(namespace, spec, this.secrets, events);
    } catch (error) {
      if (error instanceof MCPConnectError) {
        // connect.ts names the header first when its Secret was the problem.
        const reason = error.message.startsWith('header ') ? 'secret' : 'connect';
        throw new MCPUnreachableError(reason, describeMCPError(error), { cause: error });
      }
      throw error;
    }
    const info = connection.client.getServerVersion();
    return {
      server: {
        ...(info?.name ? { name: info.name } : {}),
        ...(info?.version ? { version: info.version } : {}),
        ...(connection.protocolVersion ? { protocolVersion: connection.protocolVersion } : {}),
        toolTasks: connection.client.getServerCapabilities()?.tasks?.requests?.tools?.call !== undefined,
      },
      listTools: async (timeoutMs) => {
        try {
          return await listTools(connection, timeoutMs);
        } catch (error) {
          throw new Error(describeMCPError(error), { cause: error });
        }
      },
      close: () => connection.client.close(),
    };
  }
}

async function listTools(connection: MCPConnection, timeoutMs: number): Promise<ListedTool[]> {
  const out: ListedTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await connection.client.listTools(cursor !== undefined ? { cursor } : {}, { timeout: timeoutMs });
    out.push(...result.tools);
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  return out;
}
