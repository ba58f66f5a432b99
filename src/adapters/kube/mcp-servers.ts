/** Writes MCPServer status (discovered tools, Ready) under a resourceVersion lock. */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION } from '../../api/group.ts';
import { MCP_SERVER_KIND, MCP_SERVER_PLURAL, type MCPServerStatus } from '../../api/mcp-server.ts';
import type { MCPServerStatusWriter } from '../../ports.ts';
import { kubeCall } from './errors.ts';

/** Writes MCPServer status through the apiserver. */
export class KubeMCPServerStatusWriter implements MCPServerStatusWriter {
  private readonly api: CustomObjectsApi;
  constructor(api: CustomObjectsApi) {
    this.api = api;
  }

  async write(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    status: MCPServerStatus,
  ): Promise<void> {
    await kubeCall(() => this.api.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: MCP_SERVER_PLURAL,
      namespace,
      name,
      body: { apiVersion: API_VERSION, kind: MCP_SERVER_KIND, metadata: { name, namespace, resourceVersion }, status },
    }));
  }
}
