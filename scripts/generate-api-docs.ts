/**
 * docs/api.md, generated from the zod schemas through the very CRDs the apiserver enforces
 * (src/api/crd.ts): every field with its type, default, bounds or allowed values and description,
 * every CEL rule with the message a user sees when it fails, the printer columns, and the
 * annotations that carry human decisions. Registered in scripts/generated-files.ts, so
 * `npm run generate` writes it and a unit test fails when it is stale.
 *
 *   node scripts/generate-api-docs.ts        # prints it
 */
import { agentRunCrd, agentToolCrd, mcpServerCrd } from '../src/api/crd.ts';
import { APPROVAL_SUBRESOURCE, APPROVAL_VERB, APPROVER_CLUSTER_ROLE, approveKey, decidedByKey, rejectKey } from '../src/api/approval.ts';
import { ConditionType, FINALIZER, TOOL_POD_FINALIZER } from '../src/api/conditions.ts';
import { API_VERSION } from '../src/api/group.ts';

/** The parts of a structural schema this page shows. */
interface Schema {
  type?: string; description?: string; default?: unknown; format?: string; pattern?: string;
  enum?: unknown[]; minimum?: number; maximum?: number; minLength?: number; maxLength?: number; minItems?: number; maxItems?: number;
  properties?: Record<string, Schema>; required?: string[]; items?: Schema; additionalProperties?: Schema | boolean; anyOf?: Schema[];
  'x-kubernetes-int-or-string'?: boolean; 'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: string; 'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message: string; fieldPath?: string }[];
}

interface Row { path: string; type: string; required: boolean; default: string; bounds: string; description: string }
interface CelRule { path: string; rule: string; message: string; transition: boolean }

interface CrdView {
  kind: string; plural: string; shortNames: string[]; description: string;
  spec: Schema; status: Schema | undefined;
  columns: { name: string; jsonPath: string; description: string; priority?: number }[];
}

function view(crd: Record<string, unknown>): CrdView {
  const spec = crd.spec as {
    names: { kind: string; plural: string; shortNames: string[] };
    versions: { schema: { openAPIV3Schema: Schema }; additionalPrinterColumns: CrdView['columns'] }[];
  };
  const version = spec.versions[0];
  if (!version) throw new Error(`CRD ${spec.names.kind} has no version`);
  const root = version.schema.openAPIV3Schema;
  const props = root.properties ?? {};
  return {
    kind: spec.names.kind, plural: spec.names.plural, shortNames: spec.names.shortNames,
    description: root.description ?? '',
    spec: props.spec ?? {}, status: props.status,
    columns: version.additionalPrinterColumns,
  };
}

const code = (s: string) => `\`${s.replaceAll('`', '\\`')}\``;
/** Table cells: no pipes or newlines may break the row. */
const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

function typeOf(s: Schema): string {
  if (s['x-kubernetes-int-or-string'] === true) return 'int or string';
  if (s['x-kubernetes-preserve-unknown-fields'] === true) return 'object (any JSON)';
  const type = s.type;
  if (type === 'array') return `array of ${typeOf(s.items ?? {})}`;
  if (type === 'object' && typeof s.additionalProperties === 'object') return `map of string to ${typeOf(s.additionalProperties)}`;
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (type === 'string' && s.format === 'date-time') return 'string (RFC 3339 time)';
  return type ?? 'any';
}

function boundsOf(s: Schema): string {
  const parts: string[] = [];
  if (s.enum) parts.push(`one of ${s.enum.map((v) => code(String(v))).join(', ')}`);
  const range = (min: number | undefined, max: number | undefined, unit: string) => {
    if (min !== undefined && max !== undefined) parts.push(`${String(min)}–${String(max)}${unit}`);
    else if (min !== undefined) parts.push(`at least ${String(min)}${unit}`);
    else if (max !== undefined) parts.push(`at most ${String(max)}${unit}`);
  };
  range(s.minimum, s.maximum, '');
  range(s.minLength, s.maxLength, ' characters');
  range(s.minItems, s.maxItems, ' items');
  if (typeof s.pattern === 'string' && s['x-kubernetes-int-or-string'] !== true) parts.push(`matches ${code(s.pattern)}`);
  if (s['x-kubernetes-list-type'] === 'map') parts.push(`list keyed by ${(s['x-kubernetes-list-map-keys'] ?? []).map(code).join(', ')}`);
  return parts.join('; ');
}

function defaultOf(s: Schema): string {
  if (s.default === undefined) return '';
  const json = JSON.stringify(s.default);
  if (typeof s.default === 'object' && s.default !== null) return json.length <= 40 ? code(json) : 'see its fields';
  return code(typeof s.default === 'string' ? s.default : json);
}

/** Walks a structural schema depth first: one row per field, and the CEL rules found on the way. */
function walk(s: Schema, path: string, required: boolean, rows: Row[], rules: CelRule[]): void {
  if (path) {
    rows.push({ path, type: typeOf(s), required, default: defaultOf(s), bounds: boundsOf(s), description: s.description ?? '' });
  }
  rulesAt(s, path, rules);
  const type = s.type;
  // List items and map values get no row of their own: their fields are listed under path[] / path.*.
  const inner = type === 'array' ? { schema: s.items, path: `${path}[]` }
    : type === 'object' && typeof s.additionalProperties === 'object' ? { schema: s.additionalProperties, path: `${path}.*` }
      : undefined;
  if (inner?.schema) {
    rulesAt(inner.schema, inner.path, rules);
    descend(inner.schema, inner.path, rows, rules);
    return;
  }
  descend(s, path, rows, rules);
}

function rulesAt(s: Schema, path: string, rules: CelRule[]): void {
  for (const v of s['x-kubernetes-validations'] ?? []) {
    rules.push({ path: `${path}${v.fieldPath ?? ''}`, rule: v.rule, message: v.message, transition: v.rule.includes('oldSelf') });
  }
}

function descend(s: Schema, path: string, rows: Row[], rules: CelRule[]): void {
  const props = s.properties;
  if (!props) return;
  const required = new Set(s.required ?? []);
  for (const [name, child] of Object.entries(props)) walk(child, path ? `${path}.${name}` : name, required.has(name), rows, rules);
}

function fieldTable(kind: string, title: string, schema: Schema): { text: string; rules: CelRule[] } {
  const { rows, rules } = fields(kind, title, schema);
  const lines = [
    `| Field (${title}) | Type | Required | Default | Bounds / values | Description |`,
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${code(r.path)} | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(r.default)} | ${cell(r.bounds)} | ${cell(r.description)} |`),
  ];
  return { text: lines.join('\n'), rules };
}

/** The rows of one section (descriptions from the schema, else from NOTES) and its CEL rules. */
function fields(kind: string, title: string, schema: Schema): { rows: Row[]; rules: CelRule[] } {
  const rows: Row[] = [];
  const rules: CelRule[] = [];
  walk(schema, '', false, rows, rules);
  for (const row of rows) if (!row.description) row.description = note(`${kind}.${title}.${row.path}`) ?? '';
  return { rows, rules: rules.map((r) => ({ ...r, path: r.path === '' ? title : `${title}${r.path.startsWith('.') ? '' : '.'}${r.path}` })) };
}

function rulesTable(rules: CelRule[]): string {
  if (rules.length === 0) return '';
  const lines = [
    '| On | When | Rule (CEL) | Message when it fails |',
    '|---|---|---|---|',
    ...rules.map((r) => `| ${code(r.path)} | ${r.transition ? 'update' : 'create, update'} | ${code(cell(r.rule.replace(/\s+/g, ' ')))} | ${cell(r.message)} |`),
  ];
  return lines.join('\n');
}

function kindSection(crd: CrdView): string {
  const out: string[] = [
    `## ${crd.kind}`,
    '',
    crd.description,
    '',
    `\`apiVersion: ${API_VERSION}\`, \`kind: ${crd.kind}\`, namespaced; \`kubectl get ${crd.plural}\` (short name${crd.shortNames.length > 1 ? 's' : ''} ${crd.shortNames.map(code).join(', ')}, category \`agents\`).`,
    '',
  ];
  const spec = fieldTable(crd.kind, 'spec', crd.spec);
  out.push(`### ${crd.kind} spec`, '', spec.text, '');
  if (spec.rules.length > 0) {
    out.push(`### ${crd.kind} validation rules`, '',
      'Enforced by the apiserver at admission (`x-kubernetes-validations`) and by the operator with the same rules in zod; a request that breaks one is refused with its message. Rules marked *update* compare the new object with the old one.',
      '', rulesTable(spec.rules), '');
  }
  if (crd.status) {
    const status = fieldTable(crd.kind, 'status', crd.status);
    out.push(`### ${crd.kind} status`, '', 'Written by the operator only (status subresource).', '', status.text, '');
  }
  out.push(`### \`kubectl get ${crd.plural}\` columns`, '', '| Column | From | Description |', '|---|---|---|',
    ...crd.columns.map((c) => `| ${c.name}${c.priority ? ' (`-o wide`)' : ''} | ${code(c.jsonPath)} | ${cell(c.description)} |`), '');
  return out.join('\n');
}

/**
 * Descriptions of fields whose zod schema has no `.describe()`. Keys are `Kind.section.path`, or a
 * path suffix starting with `*` that applies wherever it ends a path. Moving one into src/api (as
 * `.describe()`) puts it into the CRDs too; then delete it here (unusedNotes() reports it).
 */
const NOTES: Readonly<Record<string, string>> = {
  'AgentRun.spec.model': 'The model to call and how to reach it (Anthropic Messages API).',
  'AgentRun.spec.limits': 'Bounds on the run: model turns, tokens, time, parallel tool pods, tool output size.',
  'AgentRun.spec.toolPodDefaults.nodeSelector': 'Node labels every tool pod must match, as in a Pod spec.',
  'AgentRun.spec.toolPodDefaults.tolerations': 'Tolerations of every tool pod, as in a Pod spec.',
  '*tolerations[].key': 'Taint key the toleration matches; empty with operator Exists matches every taint.',
  '*tolerations[].operator': 'Exists, or Equal (the default) to match value.',
  '*tolerations[].value': 'Taint value to match with operator Equal.',
  '*tolerations[].effect': 'Taint effect to match; empty matches every effect.',
  '*tolerations[].tolerationSeconds': 'How long a pod stays bound to a node with a NoExecute taint.',
  '*container.args': 'Arguments to the entrypoint, as in a Pod container.',
  '*container.workingDir': 'Working directory of the tool process.',
  '*container.env': 'Environment variables of the tool container. Names starting with AGENTRUN_ are reserved.',
  '*container.env[].name': 'Variable name.',
  '*container.env[].value': 'Literal value; $(VAR) references to earlier variables are expanded, as in a Pod.',
  '*container.env[].valueFrom': 'Take the value from a key of a Secret or ConfigMap in the run\'s namespace.',
  '*container.env[].valueFrom.secretKeyRef': 'A key of a Secret.',
  '*container.env[].valueFrom.configMapKeyRef': 'A key of a ConfigMap.',
  'MCPServer.spec.managed.args': 'Arguments to the entrypoint, as in a Pod container.',
  'MCPServer.spec.managed.env[].name': 'Variable name. PORT is set to spec.managed.port unless given here.',
  'MCPServer.spec.managed.env[].value': 'Literal value; $(VAR) references to earlier variables are expanded, as in a Pod.',
  'MCPServer.spec.managed.env[].valueFrom': 'Take the value from a key of a Secret or ConfigMap in the MCPServer\'s namespace (read by the kubelet).',
  'MCPServer.spec.managed.env[].valueFrom.secretKeyRef': 'A key of a Secret.',
  'MCPServer.spec.managed.env[].valueFrom.configMapKeyRef': 'A key of a ConfigMap.',
  'AgentRun.status.phase': 'Where the run is: Pending, Running, AwaitingApproval or Suspended while it runs; then Succeeded, Failed or Cancelled.',
  'MCPServer.spec.headers[].secretKeyRef': 'The Secret key whose value is sent as the header; list the Secret in the chart value mcpServerSecrets.',
  'MCPServer.spec.timeouts': 'How long connecting and one tool call may take.',
  'MCPServer.status.conditions': 'Ready, as a metav1.Condition: True once the server answered initialize and tools/list.',
  'MCPServer.status.conditions[].type': 'Ready.',
  'MCPServer.status.conditions[].status': 'True or False.',
  'MCPServer.status.conditions[].reason': 'Connected, ConnectFailed, SecretUnavailable or ListToolsFailed.',
  'MCPServer.status.conditions[].message': 'What was listed, or what is wrong and what to fix.',
  'MCPServer.status.conditions[].lastTransitionTime': 'When status last changed.',
  'MCPServer.status.conditions[].observedGeneration': 'The metadata.generation the condition was computed for.',
  'MCPServer.status.observedGeneration': 'The metadata.generation the status was computed for.',
  'MCPServer.status.serverInfo': 'What the server said about itself in initialize.',
  'MCPServer.status.serverInfo.name': 'The server\'s name.',
  'MCPServer.status.serverInfo.version': 'The server\'s version.',
  'MCPServer.status.serverInfo.protocolVersion': 'The MCP protocol version negotiated, e.g. 2025-11-25.',
  'MCPServer.status.discoveredTools': 'The tools from the last tools/list, bounded (128 tools, 2048-character descriptions, 16 KiB schemas, 512 KiB in all). Runs resolve from this list at their start.',
  'MCPServer.status.discoveredTools[].name': 'The tool\'s name on the server.',
  'MCPServer.status.discoveredTools[].description': 'What the model is told about the tool.',
  'MCPServer.status.discoveredTools[].annotations': 'The server\'s hints (untrusted): approval and idempotency follow them unless spec.tools overrides.',
  'MCPServer.status.discoveredTools[].annotations.title': 'A human-readable title.',
  'MCPServer.status.discoveredTools[].annotations.readOnlyHint': 'The tool changes nothing: no approval by default.',
  'MCPServer.status.discoveredTools[].annotations.destructiveHint': 'The tool may destroy data (the MCP default when not read-only): approval by default.',
  'MCPServer.status.discoveredTools[].annotations.idempotentHint': 'Calling it twice has no extra effect; counts only with spec.trustHints.',
  'MCPServer.status.discoveredTools[].annotations.openWorldHint': 'The tool reaches beyond the server (the internet).',
  'MCPServer.status.lastRefreshTime': 'When tools/list last succeeded.',
  'AgentRun.status.conditions': 'Succeeded and AwaitingApproval, as metav1.Conditions. Reasons: troubleshooting.md.',
  'AgentRun.status.conditions[].type': 'Succeeded or AwaitingApproval.',
  'AgentRun.status.conditions[].status': 'True, False or Unknown.',
  'AgentRun.status.conditions[].reason': 'Why, as a CamelCase reason (see troubleshooting.md).',
  'AgentRun.status.conditions[].message': 'What is happening, or what is wrong and what to do.',
  'AgentRun.status.conditions[].lastTransitionTime': 'When status last changed.',
  'AgentRun.status.conditions[].observedGeneration': 'The metadata.generation the condition was computed for.',
  'AgentRun.status.observedGeneration': 'The metadata.generation this status was written for.',
  'AgentRun.status.startTime': 'When the operator started the run; limits.timeout counts from here.',
  'AgentRun.status.completionTime': 'When the run finished.',
  'AgentRun.status.currentTurn': 'Model turns completed so far.',
  'AgentRun.status.steps': 'One compact record per step, oldest first; the payloads are in the journal ConfigMaps.',
  'AgentRun.status.steps[].kind': 'Model: one model call. Tool: one tool call, run in its own Pod.',
  'AgentRun.status.steps[].phase': 'Pending, AwaitingApproval, Running, then Succeeded or Failed; a step never moves backwards.',
  'AgentRun.status.steps[].toolUseId': 'The id of the tool_use block the model sent, for tool steps.',
  'AgentRun.status.steps[].attempt': 'The current attempt: model calls retried after transient errors, tool pods re-created after infrastructure failures.',
  'AgentRun.status.steps[].podName': 'The tool pod of the current attempt: <run>-s<step>-a<attempt>.',
  'AgentRun.status.steps[].startedAt': 'When the step started (a tool step: when its pod was requested).',
  'AgentRun.status.steps[].finishedAt': 'When the step ended.',
  'AgentRun.status.steps[].usage': 'Tokens of this model call.',
  'AgentRun.status.steps[].stopReason': 'The stop_reason of the model response.',
  'AgentRun.status.steps[].message': 'Detail about how the step ended, e.g. the tool\'s exit code.',
  'AgentRun.status.steps[].retry.attempt': 'The attempt that failed.',
  'AgentRun.status.steps[].retry.errorClass': 'RateLimited, Overloaded, ServerError, Timeout, ConnectionError, InvalidResponse, APIKeyUnavailable, or for a failure that is not retried AuthenticationFailed, PermissionDenied, NotFound, InvalidRequest.',
  'AgentRun.status.steps[].retry.errorMessage': 'What the model API (or the connection) said.',
  'AgentRun.status.steps[].retry.nextRetryAt': 'When the next attempt starts; absent when the failure is not retried.',
  'AgentRun.status.steps[].approval.decision': 'Approved, Rejected, or TimedOut (no decision within limits.approvalTimeout).',
  'AgentRun.status.steps[].approval.at': 'When the operator applied the decision.',
  'AgentRun.status.steps[].approval.comment': 'The value of the decision annotation: the approver\'s comment or the rejection reason.',
  'AgentRun.status.usage': 'Tokens of all model calls so far.',
  '*usage.inputTokens': 'Input tokens not read from or written to the prompt cache.',
  '*usage.outputTokens': 'Output tokens.',
  '*usage.cacheReadInputTokens': 'Input tokens read from the prompt cache.',
  '*usage.cacheCreationInputTokens': 'Input tokens written to the prompt cache.',
  'AgentRun.status.pendingApprovals': 'The steps that wait for a human decision now.',
  'AgentRun.status.pendingApprovals[].step': 'The step id: approve it with approve.agentrun.dev/step-<step>.',
  'AgentRun.status.pendingApprovals[].since': 'When the step started to wait.',
  'AgentRun.status.ignoredDecisions[].annotation': 'The decision annotation that was ignored.',
  'AgentRun.status.ignoredDecisions[].value': 'Its value (the comment or reason).',
  'AgentRun.status.ignoredDecisions[].reason': 'Why it changed nothing.',
  'AgentRun.status.ignoredDecisions[].at': 'When the operator saw it.',
};

const usedNotes = new Set<string>();

function note(key: string): string | undefined {
  const exact = NOTES[key];
  if (exact !== undefined) { usedNotes.add(key); return exact; }
  const suffix = Object.keys(NOTES).filter((k) => k.startsWith('*') && key.endsWith(`.${k.slice(1)}`))
    .sort((a, b) => b.length - a.length)[0];
  if (suffix === undefined) return undefined;
  usedNotes.add(suffix);
  return NOTES[suffix];
}

function allSections(): { kind: string; title: string; schema: Schema }[] {
  return [view(agentRunCrd()), view(agentToolCrd()), view(mcpServerCrd())].flatMap((crd) => [
    { kind: crd.kind, title: 'spec', schema: crd.spec },
    ...(crd.status ? [{ kind: crd.kind, title: 'status', schema: crd.status }] : []),
  ]);
}

/** Fields with no description in the schema nor in NOTES, as `Kind.section.path`. */
export function undocumentedFields(): string[] {
  return allSections().flatMap((s) => fields(s.kind, s.title, s.schema).rows.filter((r) => !r.description).map((r) => `${s.kind}.${s.title}.${r.path}`));
}

/** NOTES entries no field uses (the schema describes the field now, or it is gone). */
export function unusedNotes(): string[] {
  usedNotes.clear();
  for (const s of allSections()) fields(s.kind, s.title, s.schema);
  return Object.keys(NOTES).filter((k) => !usedNotes.has(k));
}

/** Every CEL rule of both kinds with its message, as the docs list them. */
export function celRules(): { path: string; message: string }[] {
  return allSections().flatMap((s) => fields(s.kind, s.title, s.schema).rules.map((r) => ({ path: r.path, message: r.message })));
}

/** The whole of docs/api.md. */
export function apiMarkdown(): string {
  const run = view(agentRunCrd());
  const tool = view(agentToolCrd());
  const mcp = view(mcpServerCrd());
  return [
    '<!-- Generated by `npm run generate` (scripts/generate-api-docs.ts) from the zod schemas in src/api/. Do not edit. -->',
    '# API reference: `agentrun.dev/v1alpha1`',
    '',
    `Three kinds: [\`AgentRun\`](#agentrun), one run of an agent, [\`AgentTool\`](#agenttool), a reusable tool that runs use by \`toolRef\`, and [\`MCPServer\`](#mcpserver), an MCP server whose tools runs use by \`mcpServerRef\` (ModelEndpoint is described in [security.md](security.md)). This page is generated from the zod schemas in [\`src/api/\`](../src/api), the single source of truth from which the CRDs in [\`crds/\`](../crds) are generated too, so it says exactly what the apiserver accepts. Field paths use \`[]\` for list items and \`.*\` for map values. Durations are Go-style with the units \`ms\`, \`s\`, \`m\`, \`h\` (\`90s\`, \`1h30m\`). What each condition reason and step outcome means, and what to do about it: [troubleshooting.md](troubleshooting.md).`,
    '',
    kindSection(run),
    kindSection(tool),
    kindSection(mcp),
    '## Annotations, conditions and finalizers',
    '',
    '| Name | On | Set by | Meaning |',
    '|---|---|---|---|',
    `| ${code(approveKey(0).replace('step-0', 'step-N'))} | AgentRun | a human (\`kubectl agentrun approve\`, or \`kubectl annotate\`) | Approves pending step N; the value is a comment kept in \`status.steps[].approval.comment\`. Needs the verb \`${APPROVAL_VERB}\` on \`agentruns/${APPROVAL_SUBRESOURCE}\` (ClusterRole \`${APPROVER_CLUSTER_ROLE}\`). |`,
    `| ${code(rejectKey(0).replace('step-0', 'step-N'))} | AgentRun | a human (\`kubectl agentrun reject\`, or \`kubectl annotate\`) | Rejects pending step N; the value is the reason the model is told (\`spec.approvals.onReject\`). Same permission as approving. |`,
    `| ${code(decidedByKey(0).replace('step-0', 'step-N'))} | AgentRun | the apiserver (MutatingAdmissionPolicy \`agentrun-record-approver\`) | The authenticated user who set the decision on step N. Nobody else may write it. |`,
    `| condition ${code(ConditionType.Succeeded)} | AgentRun status | the operator | \`Unknown\` while the run runs, \`True\` when it succeeded, \`False\` when it ended otherwise; its reason says why. |`,
    `| condition ${code(ConditionType.AwaitingApproval)} | AgentRun status | the operator | \`True\` while a step waits for a human decision. |`,
    `| finalizer ${code(FINALIZER)} | AgentRun | the operator | Lets the operator stop the run's tool pods before the run disappears; removed once the run has finished. |`,
    `| finalizer ${code(TOOL_POD_FINALIZER)} | tool Pod | the operator | Keeps a deleted tool pod until the operator has seen how it ended. |`,
    '',
  ].join('\n');
}

if (import.meta.main) process.stdout.write(apiMarkdown());
