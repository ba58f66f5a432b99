/**
 * What a run's creator must be allowed to do for the run to do it: a run can do nothing its
 * creator could not. Each object the run makes the operator use on its behalf — the
 * ModelEndpoint (and through it an API key), Secrets and ConfigMaps tool containers read, the
 * ServiceAccount tool pods run as — is one requirement, checked against the creator's own RBAC
 * (a SubjectAccessReview) before the first step starts.
 */
import type { AgentRunSpec } from '../api/agent-run.ts';
import { MODEL_ENDPOINT_PLURAL, USE_VERB } from '../api/model-endpoint.ts';
import { GROUP } from '../api/group.ts';
import { MCP_SERVER_PLURAL } from '../api/mcp-server.ts';
import type { ResolvedTool } from '../api/journal-entry.ts';

/** One permission the creator needs, on one named object of the run's namespace. */
export interface AccessRequirement {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly name: string;
  /** Which part of the run needs it, for the message. */
  readonly why: string;
}

/** Every permission the run needs its creator to have, without duplicates, in a stable order. */
export function accessRequirements(spec: AgentRunSpec, tools: readonly ResolvedTool[]): AccessRequirement[] {
  const out = new Map<string, AccessRequirement>();
  const add = (r: AccessRequirement) => {
    const k = `${r.group}/${r.resource}/${r.name}/${r.verb}`;
    if (!out.has(k)) out.set(k, r);
  };
  add({ verb: USE_VERB, group: GROUP, resource: MODEL_ENDPOINT_PLURAL, name: spec.model.endpointRef.name,
    why: 'spec.model.endpointRef' });
  const sa = spec.toolPodDefaults?.serviceAccountName;
  if (sa !== undefined)
    add({ verb: USE_VERB, group: '', resource: 'serviceaccounts', name: sa,
      why: 'spec.toolPodDefaults.serviceAccountName' });
  for (const tool of spec.tools ?? []) {
    // The MCPServer's header Secret is sent only for creators who may use the server.
    if (tool.mcpServerRef)
      add({ verb: USE_VERB, group: GROUP, resource: MCP_SERVER_PLURAL, name: tool.mcpServerRef.name,
        why: `tools[${tool.name}].mcpServerRef` });
  }
  for (const tool of tools) {
    for (const env of tool.container?.env ?? []) {
      const from =
        (env as { valueFrom?: { secretKeyRef?: { name: string }; configMapKeyRef?: { name: string } } }).valueFrom;
      if (from?.secretKeyRef)
        add({ verb: 'get', group: '', resource: 'secrets', name: from.secretKeyRef.name,
          why: `tool ${tool.name} (env ${env.name})` });
      if (from?.configMapKeyRef)
        add({ verb: 'get', group: '', resource: 'configmaps', name: from.configMapKeyRef.name,
          why: `tool ${tool.name} (env ${env.name})` });
    }
  }
  return [...out.values()];
}

/** How a requirement reads in a message: `use modelendpoints/anthropic`. */
export function describeRequirement(r: AccessRequirement): string {
  return `${r.verb} ${r.resource}${r.group ? `.${r.group}` : ''}/${r.name}`;
}
