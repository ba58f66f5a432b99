/** What the AgentRun reconciler observes of the MCPServers a run references (from the informer cache). */
import { discoveredTool, mcpServerSpec, type MCPServerSpec } from '../api/mcp-server.ts';
import type { MCPServerObservation } from '../core/observed.ts';
import type { Caches } from '../ports.ts';

/** MCPServers named by the run's mcpServerRefs; undefined for one that is missing or invalid. */
export function mcpServersOf(caches: Caches, namespace: string,
  spec: { tools?: readonly { mcpServerRef?: { name: string } | undefined }[] | undefined }
): Map<string, MCPServerObservation | undefined> {
  const out = new Map<string, MCPServerObservation | undefined>();
  for (const tool of spec.tools ?? []) {
    const name = tool.mcpServerRef?.name;
    if (name === undefined || out.has(name)) continue;
    const obj = caches.mcpServer?.(namespace, name);
    const parsed = obj ? mcpServerSpec.safeParse(obj.spec) : undefined;
    if (!parsed?.success) {
      out.set(name, undefined);
      continue;
    }
    const listed = obj?.status?.discoveredTools;
    const tools = Array.isArray(listed)
      ? listed.flatMap((t) => {
        const r = discoveredTool.safeParse(t);
        return r.success ? [r.data] : [];
      })
      : undefined;
    // A managed server is reached where its controller found it (status.url), once it is Ready.
    const found = (obj?.status as { url?: unknown } | undefined)?.url;
    const url = parsed.data.managed ? (typeof found === 'string' ? found : undefined) : parsed.data.url;
    out.set(name, { spec: { ...parsed.data, ...(url !== undefined ? { url } : {}) }, tools });
  }
  return out;
}

/** The spec of one MCPServer as cached now, when it exists and is valid (read when a call starts). */
export function mcpServerSpecOf(caches: Caches, namespace: string, name: string): MCPServerSpec | undefined {
  return mcpServersOf(caches, namespace, { tools: [{ mcpServerRef: { name } }] }).get(name)?.spec;
}
