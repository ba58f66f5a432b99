/**
 * The `AgentRun` kind: one run of an agent. The spec says what to run; the status is the run's
 * journal index (compact step records; large payloads live in owned AgentRunJournal objects).
 */
import { z } from 'zod';
import { API_VERSION } from './group.ts';
import { TOOL_NAME_PATTERN, toolBehaviourFields, toolContainer } from './agent-tool.ts';
import { mcpToolFields, mcpToolRules } from './mcp-tool-ref.ts';
import { RFC3339, condition, duration, objectName, parseDurationMs, resourceRequirements } from './primitives.ts';
import { withRules, type TransitionRule } from './rules.ts';

const toolName = withRules(
  z.string().min(1).max(64).describe('Name the model calls the tool by (Messages API: ^[a-zA-Z0-9_-]{1,64}$).'),
  [{
    cel: `self.matches('${TOOL_NAME_PATTERN}')`,
    message: 'tool name must be 1-64 letters, digits, "_" or "-" (the Anthropic Messages API rejects anything else)',
    check: (name) => new RegExp(TOOL_NAME_PATTERN).test(name),
  }],
);

/** One tool of a run: an AgentTool by reference, an inline container, or an MCPServer's tool. */
export const runTool = withRules(z.object({
  name: toolName,
  toolRef: z.object({ name: objectName("Name of an AgentTool in the run's namespace.") }).optional()
    .describe('Use a reusable AgentTool. Set exactly one of toolRef, container and mcpServerRef.'),
  ...toolBehaviourFields,
  container: toolContainer.optional().describe(
    'Define the tool inline. Set exactly one of toolRef, container and mcpServerRef.',
  ),
  ...mcpToolFields,
}), [
  {
    cel: '(has(self.toolRef) ? 1 : 0) + (has(self.container) ? 1 : 0) + (has(self.mcpServerRef) ? 1 : 0) == 1',
    message: 'set exactly one of toolRef (use an AgentTool), container (define the tool inline) '
      + "or mcpServerRef (use an MCPServer's tools)",
    check: (t) => [t.toolRef, t.container, t.mcpServerRef].filter((v) => v !== undefined).length === 1,
  },
  {
    cel: '!has(self.toolRef) || !(has(self.description) || has(self.inputSchema) || has(self.timeout)'
      + ' || has(self.idempotent) || has(self.retries))',
    message: 'a tool with toolRef takes description, inputSchema, timeout, idempotent and retries from its AgentTool: '
      + 'remove them here (only requiresApproval may be added)',
    check: (t) =>
      t.toolRef === undefined
      || [t.description, t.inputSchema, t.timeout, t.idempotent, t.retries].every((v) => v === undefined),
  },
  ...mcpToolRules,
]);
export type RunTool = z.infer<typeof runTool>;

const model = z.object({
  name: z.string().min(1).max(128).describe('Model id, e.g. claude-sonnet-4-5; the endpoint must allow it.'),
  maxTokens: z.int().min(1).max(128_000).default(4096).describe('max_tokens for each model call.'),
  endpointRef: z.object({ name: objectName("A ModelEndpoint in the run's namespace.") })
    .describe(
      "The ModelEndpoint (URL, key, allowed models) admins configured; the run's creator needs the verb use on it.",
    ),
});

const limits = withRules(z.object({
  maxTurns: z.int().min(1).max(1000).default(20).describe('Model calls the run may make.'),
  maxTotalTokens: z.int().min(1).max(1_000_000_000).optional().describe(
    'Token budget over all model calls (input + output + cache). Unlimited when unset.',
  ),
  timeout: duration('Deadline for the whole run, from its start. Default 1h.').default('1h'),
  approvalTimeout: duration('How long a step waits for a human decision. Default 24h.').default('24h'),
  maxParallelTools: z.int().min(1).max(32).default(4).describe('Tool pods of one run that may run at once.'),
  maxToolOutputBytes: z.int().min(1024).max(786_432).default(65_536).describe(
    'Tool output beyond this is truncated (the model is told).',
  ),
  onExhausted: z.enum(['Fail', 'AskForApproval']).default('Fail').describe(
    'What reaching maxTurns or maxTotalTokens does: fail the run, or pause it for a human to extend.',
  ),
}), [{
  cel: "duration(self.timeout) >= duration('1s')",
  message: 'limits.timeout must be at least 1s',
  check: (l) => parseDurationMs(l.timeout) >= 1000,
  fieldPath: '.timeout',
}]);

const modelRetry = withRules(z.object({
  initialBackoff: duration('Wait before the first retry of a failed model call. Default 1s.').default('1s'),
  backoffFactor: z.number().min(1).max(10).default(2).describe('Each further wait is this many times longer.'),
  maxBackoff: duration('Longest wait between retries. Default 100s.').default('100s'),
}), [{
  cel: 'duration(self.initialBackoff) <= duration(self.maxBackoff)',
  message: 'modelRetry.initialBackoff must not be longer than modelRetry.maxBackoff',
  check: (r) => parseDurationMs(r.initialBackoff) <= parseDurationMs(r.maxBackoff),
}]);

const toleration = z.object({
  key: z.string().max(316).optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().max(63).optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.int().optional(),
});

const toolPodDefaults = z.object({
  serviceAccountName: objectName('ServiceAccount tool pods run as (its token is never mounted).').optional(),
  resources: resourceRequirements.optional().describe(
    'Default resources of tool containers. Default 500m CPU, 256Mi memory.',
  ),
  nodeSelector: z.record(z.string().max(316), z.string().max(63)).optional(),
  tolerations: z.array(toleration).max(32).optional(),
}).describe('Defaults for every tool pod of the run.');

const approvals = z.object({
  requiredFor: z.array(z.string().min(1).max(64)).max(64).optional()
    .describe('Tool names whose calls wait for a human decision, or "*" for every tool.'),
  onReject: z.enum(['Continue', 'Fail']).default('Continue')
    .describe('Continue: the model gets an error tool_result with the reason. Fail: the run fails.'),
  onTimeout: z.enum(['Reject', 'Fail']).default('Reject').describe('What happens when limits.approvalTimeout passes.'),
}).describe('Which tool calls need a human decision, and what a rejection does.');

/** Spec fields that may change after creation; everything else is fixed at creation. */
export const MUTABLE_SPEC_FIELDS = ['suspend', 'cancel'] as const;

const specShape = {
  model,
  systemPrompt: z.string().max(65_536).optional().describe('System prompt of every model call.'),
  prompt: z.string().min(1).max(65_536).describe('The task: the first user message.'),
  tools: z.array(runTool).max(64).optional().describe('Tools the model may call; each call runs in its own Pod.'),
  approvals: approvals.optional(),
  limits: limits.default({ maxTurns: 20, timeout: '1h', approvalTimeout: '24h', maxParallelTools: 4,
    maxToolOutputBytes: 65_536, onExhausted: 'Fail' }),
  modelRetry: modelRetry.default({ initialBackoff: '1s', backoffFactor: 2, maxBackoff: '100s' })
    .describe('Backoff for transient model errors (429, 529, 5xx, timeouts); retried until the run deadline.'),
  toolPodDefaults: toolPodDefaults.optional(),
  suspend: z.boolean().default(false).describe('Finish the step in flight, then start nothing new until unset.'),
  cancel: z.boolean().default(false).describe(
    'Stop the run: tool pods are deleted and the run ends Cancelled. Cannot be undone.',
  ),
  ttlSecondsAfterFinished: z.int().min(0).max(31_536_000).optional().describe(
    'Delete the run (and its journal and pods) this long after it finishes.',
  ),
};

type SpecKey = keyof typeof specShape;
const IMMUTABLE_SPEC_FIELDS = (Object.keys(specShape) as SpecKey[])
  .filter((k) => !(MUTABLE_SPEC_FIELDS as readonly string[]).includes(k));

/**
 * What to run: the model and endpoint, the task, the tools, limits and approval rules. Fixed at
 * creation except suspend and cancel.
 */
export const agentRunSpec = withRules(z.object(specShape), [
  {
    cel: '!has(self.tools) || self.tools.all(t, self.tools.exists_one(u, u.name == t.name))',
    message: 'tool names must be unique: give every entry in spec.tools its own name',
    check: (s) => new Set((s.tools ?? []).map((t) => t.name)).size === (s.tools ?? []).length,
    fieldPath: '.tools',
  },
  {
    cel: '!has(self.approvals) || !has(self.approvals.requiredFor)'
      + " || self.approvals.requiredFor.all(n, n == '*' || (has(self.tools) && self.tools.exists(t, t.name == n)))",
    message:
      'approvals.requiredFor names a tool that is not in spec.tools: use a name from spec.tools, or "*" for every tool',
    check: (s) => (s.approvals?.requiredFor ?? []).every((n) => n === '*' || (s.tools ?? []).some((t) => t.name === n)),
    fieldPath: '.approvals',
  },
]);
export type AgentRunSpec = z.infer<typeof agentRunSpec>;

const sameOptional = (k: string) =>
  `has(self.${k}) == has(oldSelf.${k}) && (!has(self.${k}) || self.${k} == oldSelf.${k})`;

/** Rules on how a spec may change: everything but suspend and cancel is fixed; cancel is one-way. */
export const specTransitionRules: readonly TransitionRule<AgentRunSpec>[] = [
  ...IMMUTABLE_SPEC_FIELDS.map((k): TransitionRule<AgentRunSpec> => ({
    cel: sameOptional(k),
    message: `spec.${k} cannot change after the run is created (only spec.suspend and spec.cancel can): `
      + 'create a new AgentRun instead',
    check: (before, after) => JSON.stringify(before[k]) === JSON.stringify(after[k]),
  })),
  {
    cel: '!oldSelf.cancel || self.cancel',
    message: 'spec.cancel cannot be undone once set: create a new AgentRun to run again',
    check: (before, after) => !before.cancel || after.cancel,
  },
];

// ---- status ----

/** Phases of a run, as `kubectl get agentruns` shows them. */
export const RUN_PHASES = ['Pending', 'Running', 'AwaitingApproval', 'Suspended', 'Succeeded', 'Failed',
  'Cancelled'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** A step is one model call or one tool call. */
export const STEP_KINDS = ['Model', 'Tool'] as const;
/** Phases of a step; Succeeded, Failed and Skipped are final. */
export const STEP_PHASES = ['Pending', 'AwaitingApproval', 'Running', 'Succeeded', 'Failed', 'Skipped'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

const count = z.int().min(0);

/** Tokens counted for a step or a whole run, as the model API reported them. */
export const tokenUsage = z.object({
  inputTokens: count.default(0),
  outputTokens: count.default(0),
  cacheReadInputTokens: count.default(0),
  cacheCreationInputTokens: count.default(0),
  totalTokens: count.default(0).describe('Sum of the four above: what counts against maxTotalTokens.'),
});
export type TokenUsage = z.infer<typeof tokenUsage>;

/** Where an entry is journaled, and the digest that every later read must match. */
export const journalRef = z.object({
  name: z.string().max(253).describe('The AgentRunJournal holding the entry.'),
  digest: z.string().max(80).describe('sha256 of the journaled entry, recorded before anything acts on it.'),
});
export type JournalRef = z.infer<typeof journalRef>;

/** One step in the run's status: a compact record that points at its journal entry for the payload. */
export const stepRecord = z.object({
  id: z.int().min(1).describe('Sequence number of the step in the run; never reused.'),
  kind: z.enum(STEP_KINDS),
  turn: count.describe('Model turn the step belongs to.'),
  phase: z.enum(STEP_PHASES),
  tool: z.string().max(64).optional().describe('Tool name, for tool steps.'),
  mcpServer: z.string().max(253).optional().describe('The MCPServer called, for MCP tool steps (no pod).'),
  toolUseId: z.string().max(128).optional(),
  attempt: z.int().min(1).default(1),
  podName: z.string().max(253).optional(),
  startedAt: RFC3339.optional(),
  finishedAt: RFC3339.optional(),
  journal: journalRef.optional().describe(
    "Where the step's payload (model response, tool input and output) is journaled.",
  ),
  mcpTask: journalRef.optional().describe(
    'Where the handle of the MCP task this attempt started is journaled (polled again after a restart).',
  ),
  usage: tokenUsage.optional(),
  stopReason: z.string().max(64).optional(),
  outcome: z.string().max(64).optional().describe('Why the step ended as it did, as a CamelCase reason.'),
  message: z.string().max(1024).optional(),
  retry: z.object({
    attempt: z.int().min(1),
    errorClass: z.string().max(64),
    errorMessage: z.string().max(1024),
    nextRetryAt: RFC3339.optional(),
  }).optional().describe('The last failed attempt and when the next one starts.'),
  approval: z.object({
    decision: z.enum(['Approved', 'Rejected', 'TimedOut']),
    by: z.string().max(512).optional().describe('The identity the apiserver authenticated (decided-by annotation).'),
    at: RFC3339,
    requestedAt: RFC3339.optional().describe('When the step started to wait for a decision.'),
    comment: z.string().max(1024).optional(),
    annotation: z.string().max(253).optional().describe('The annotation that carried the decision.'),
  }).optional().describe('The human decision on this step: a tool call that needed approval, or a budget extension.'),
});
export type StepRecord = z.infer<typeof stepRecord>;

/** A step or budget extension waiting for a human decision, with what the approver decides on. */
export const pendingApproval = z.object({
  step: z.int().min(1),
  kind: z.enum(['Tool', 'Budget']).default('Tool').describe(
    'Tool: a tool call waits to run. Budget: the run asks to extend its limits.',
  ),
  tool: z.string().max(64).describe('The tool, for Tool approvals.'),
  inputPreview: z.string().max(640).describe(
    'The start of the tool input, or what a budget extension grants; says how much is cut.',
  ),
  inputBytes: z.int().min(0).optional().describe('Size of the whole tool input in bytes (UTF-8).'),
  inputDigest: z.string().max(80).optional()
    .describe('sha256 of the whole tool input: what the approver approves (kubectl agentrun describe --show-input).'),
  since: RFC3339,
  staleDecision: z.string().max(80).optional()
    .describe('Digest of a decision annotation that already existed when the wait began: it does not count.'),
});
export type PendingApproval = z.infer<typeof pendingApproval>;

/** A decision annotation the operator did not act on, kept so the person who wrote it can see why. */
export const ignoredDecision = z.object({
  annotation: z.string().max(253),
  value: z.string().max(1024),
  reason: z.string().max(512),
  at: RFC3339,
});

/** The run's trace (OpenTelemetry), recorded by the operator when the run starts with tracing on. */
export const runTrace = z.object({
  traceId: z.string().regex(/^[0-9a-f]{32}$/).describe('The trace every span of the run belongs to.'),
  spanId: z.string().regex(/^[0-9a-f]{16}$/).describe("The run's root span (invoke_agent)."),
  parentSpanId: z.string().regex(/^[0-9a-f]{16}$/).optional().describe(
    "The caller's span, from the traceparent annotation.",
  ),
  sampled: z.boolean().describe("Whether the run's spans are exported."),
}).describe(
  'Written by the operator only; step span ids derive from the run UID, step id and attempt (docs/tracing.md).',
);

/** Status of a run, written only by the operator: its phase, steps, usage, pending approvals and result. */
export const agentRunStatus = z.object({
  phase: z.enum(RUN_PHASES).optional(),
  conditions: z.array(condition).max(16).optional().meta({ 'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'] }),
  observedGeneration: count.optional(),
  startTime: RFC3339.optional(),
  completionTime: RFC3339.optional(),
  currentTurn: count.optional(),
  currentStep: z.string().max(128).optional().describe('The step in flight, for humans: e.g. "4 tool/web_fetch".'),
  waitingFor: z.string().max(256).optional().describe(
    'What the run waits for, if anything: approval, model retry, tool pod.',
  ),
  toolsJournal: journalRef.optional().describe('The journaled tool definitions the run uses, fixed at its start.'),
  steps: z.array(stepRecord).max(2000).optional(),
  usage: tokenUsage.optional(),
  pendingApprovals: z.array(pendingApproval).max(64).optional(),
  ignoredDecisions: z.array(ignoredDecision).max(64).optional().describe(
    'Decision annotations that changed nothing, and why.',
  ),
  result: z.string().max(4096).optional().describe('The final answer, truncated; the whole of it is in the journal.'),
  message: z.string().max(1024).optional().describe('What is happening, or what is wrong and what to do.'),
  trace: runTrace.optional(),
});
export type AgentRunStatus = z.infer<typeof agentRunStatus>;

/** An AgentRun as read from the apiserver: metadata kept loose, spec and status validated. */
export const agentRun = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('AgentRun'),
  metadata: z.object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.int().optional(),
    resourceVersion: z.string().optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    deletionTimestamp: z.string().optional(),
    creationTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
  }).loose(),
  spec: agentRunSpec,
  status: agentRunStatus.optional(),
});
export type AgentRun = z.infer<typeof agentRun>;

/** Checks an update of a spec against the transition rules, as the apiserver does. */
export function specUpdateViolations(before: AgentRunSpec, after: AgentRunSpec): string[] {
  return specTransitionRules.filter((r) => !r.check(before, after)).map((r) => r.message);
}
