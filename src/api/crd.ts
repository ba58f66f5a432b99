/**
 * Builds the CustomResourceDefinitions from the zod schemas, so the schema the apiserver enforces
 * and the one the operator parses with can never drift. `npm run generate` writes them to crds/.
 */
import { z } from 'zod';
import { GROUP, PART_OF_LABEL, VERSION } from './group.ts';
import { agentRunSpec, agentRunStatus, specTransitionRules } from './agent-run.ts';
import { agentToolSpec } from './agent-tool.ts';
import { JOURNAL_KIND, JOURNAL_PLURAL, agentRunJournalSpec } from './agent-run-journal.ts';
import { MODEL_ENDPOINT_KIND, MODEL_ENDPOINT_PLURAL, modelEndpointSpec } from './model-endpoint.ts';
import { MCP_SERVER_KIND, MCP_SERVER_PLURAL, mcpServerSpec, mcpServerStatus } from './mcp-server.ts';

type JsonSchema = Record<string, unknown>;

/**
 * Turns zod's OpenAPI 3.0 output into a Kubernetes structural schema: no `additionalProperties:
 * false`, int-or-string and preserve-unknown-fields in their Kubernetes spelling, no `$schema`.
 */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const src = node as JsonSchema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(src)) {
    if (key === '$schema' || key === 'id') continue;
    if (key === 'additionalProperties' &&
      (value === false || (typeof value === 'object' && value !== null && Object.keys(value).length === 0))) continue;
    // Property names are data, not schema keywords: recurse into each schema, keep the names.
    if (key === 'properties' && typeof value === 'object' && value !== null) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, toStructural(s)]));
      continue;
    }
    out[key] = toStructural(value);
  }
  if (out['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (out['x-kubernetes-preserve-unknown-fields'] === true) {
    delete out.additionalProperties;
    out.type = 'object';
  }
  // Bounds zod adds for "any safe integer" say nothing to a user; keep only real ones.
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  return out;
}

function openApi(schema: z.ZodType): JsonSchema {
  return toStructural(
    z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }),
  ) as JsonSchema;
}

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description: string;
  priority?: number;
}

function crd(options: {
  kind: string;
  plural: string;
  shortNames: string[];
  description: string;
  spec: JsonSchema;
  status?: JsonSchema;
  columns: PrinterColumn[];
}): JsonSchema {
  const properties: JsonSchema = { spec: options.spec };
  if (options.status) properties.status = options.status;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${options.plural}.${GROUP}`, labels: { ...PART_OF_LABEL } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: options.kind,
        listKind: `${options.kind}List`,
        plural: options.plural,
        singular: options.kind.toLowerCase(),
        shortNames: options.shortNames,
        categories: ['agents'],
      },
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        ...(options.status ? { subresources: { status: {} } } : {}),
        additionalPrinterColumns: options.columns,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            description: options.description,
            required: ['spec'],
            properties: {
              apiVersion: { type: 'string' },
              kind: { type: 'string' },
              metadata: { type: 'object' },
              ...properties,
            },
          },
        },
      }],
    },
  };
}

/** The AgentRun CRD: spec with CEL rules (including immutability), status subresource, printer columns. */
export function agentRunCrd(): JsonSchema {
  const spec = openApi(agentRunSpec);
  spec['x-kubernetes-validations'] = [
    ...(spec['x-kubernetes-validations'] as unknown[] | undefined ?? []),
    ...specTransitionRules.map((r) => ({ rule: r.cel, message: r.message })),
  ];
  return crd({
    kind: 'AgentRun',
    plural: 'agentruns',
    shortNames: ['ar'],
    description:
      'AgentRun is one durable run of an AI agent: a model, a task and tools, each tool call in its own Pod, '
      + 'every step journaled.',
    spec,
    status: openApi(agentRunStatus),
    columns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Where the run is in its lifecycle.' },
      { name: 'Step', type: 'string', jsonPath: '.status.currentStep', description: 'The step in flight.' },
      { name: 'Turn', type: 'integer', jsonPath: '.status.currentTurn', description: 'Model turns so far.' },
      { name: 'Tokens', type: 'integer', jsonPath: '.status.usage.totalTokens', description: 'Tokens used so far.' },
      { name: 'Waiting-For', type: 'string', jsonPath: '.status.waitingFor',
        description: 'What the run waits for (approval, model retry, tool pod).' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
      { name: 'Model', type: 'string', jsonPath: '.spec.model.name', description: 'Model id.', priority: 1 },
      { name: 'Message', type: 'string', jsonPath: '.status.message', description: 'What is happening or wrong.',
        priority: 1 },
    ],
  });
}

/** The AgentTool CRD: a reusable tool definition. */
export function agentToolCrd(): JsonSchema {
  return crd({
    kind: 'AgentTool',
    plural: 'agenttools',
    shortNames: ['at'],
    description: 'AgentTool is a reusable tool definition: what the model sees and the container that runs each call.',
    spec: openApi(agentToolSpec),
    columns: [
      { name: 'Image', type: 'string', jsonPath: '.spec.container.image', description: 'Container image.' },
      { name: 'Approval', type: 'boolean', jsonPath: '.spec.requiresApproval', description: 'Calls wait for a human.' },
      { name: 'Idempotent', type: 'boolean', jsonPath: '.spec.idempotent', description: 'Safe to run again.' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
    ],
  });
}

/** The AgentRunJournal CRD: immutable entries, written only by the operator (agent-run-journal.ts). */
export function agentRunJournalCrd(): JsonSchema {
  const spec = openApi(agentRunJournalSpec);
  spec['x-kubernetes-validations'] = [{
    rule: 'self == oldSelf',
    message: 'journal entries are immutable: the operator writes each entry once and nobody changes it',
  }];
  return crd({
    kind: JOURNAL_KIND,
    plural: JOURNAL_PLURAL,
    shortNames: ['arj'],
    description: 'AgentRunJournal is one immutable journal entry of an AgentRun (a model response, a tool result, '
      + 'or its resolved tools), written only by the operator.',
    spec,
    columns: [
      { name: 'Run', type: 'string', jsonPath: '.spec.run.name', description: 'The AgentRun.' },
      { name: 'Step', type: 'integer', jsonPath: '.spec.step', description: 'Step id (0: the resolved tools).' },
      { name: 'Entry', type: 'string', jsonPath: '.spec.kind', description: 'What the entry holds.' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
    ],
  });
}

/** The ModelEndpoint CRD: a model API admins configure; runs reference it by name. */
export function modelEndpointCrd(): JsonSchema {
  return crd({
    kind: MODEL_ENDPOINT_KIND,
    plural: MODEL_ENDPOINT_PLURAL,
    shortNames: ['me'],
    description: 'ModelEndpoint is a model API admins configure for a namespace: URL, the Secret with its key, '
      + 'allowed models and limits. Runs reference it by name; their creators need the verb use on it.',
    spec: openApi(modelEndpointSpec),
    columns: [
      { name: 'Provider', type: 'string', jsonPath: '.spec.provider', description: 'The API it speaks.' },
      { name: 'URL', type: 'string', jsonPath: '.spec.baseURL', description: 'Where the API is.' },
      { name: 'Models', type: 'string', jsonPath: '.spec.models', description: 'Models runs may use.' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
    ],
  });
}

/** The MCPServer CRD: an MCP server admins configure; runs use its tools by mcpServerRef. */
export function mcpServerCrd(): JsonSchema {
  return crd({
    kind: MCP_SERVER_KIND,
    plural: MCP_SERVER_PLURAL,
    shortNames: ['mcp'],
    description: 'MCPServer is a Model Context Protocol server (Streamable HTTP) admins configure for a namespace; '
      + 'the operator lists its tools into status and runs call them durably. Runs reference it by name; '
      + 'their creators need the verb use on it.',
    spec: openApi(mcpServerSpec),
    status: openApi(mcpServerStatus),
    columns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status',
        description: 'Connected and tools listed.' },
      { name: 'Tools', type: 'integer', jsonPath: '.status.toolCount', description: 'Tools the server lists.' },
      { name: 'URL', type: 'string', jsonPath: '.status.url',
        description: "Where the operator reaches the server (spec.url, or a managed server's address)." },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
        description: 'Why it is (not) ready.', priority: 1 },
    ],
  });
}
