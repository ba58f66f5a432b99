/**
 * The `AgentTool` kind: a reusable tool definition (what the model sees, and the container that
 * runs one call of it). AgentRuns use it by `toolRef`, or define the same fields inline.
 */
import { z } from 'zod';
import { API_VERSION } from './group.ts';
import { duration, objectName, resourceRequirements } from './primitives.ts';
import { withRules } from './rules.ts';

/** What the Messages API accepts as a tool name. */
export const TOOL_NAME_PATTERN = '^[a-zA-Z0-9_-]{1,64}$';
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Environment variables the operator sets in every tool container. */
export const RESERVED_ENV_PREFIX = 'AGENTRUN_';

const keyRef = z.object({
  name: objectName("Name of the object in the run's namespace."),
  key: z.string().min(1).max(253).describe('Key inside it.'),
});

/** An environment variable of a container: a value, or a key of a Secret or ConfigMap. */
export const envVar = withRules(z.object({
  name: z.string().min(1).max(128).regex(ENV_NAME_PATTERN, {
    error: 'must be a valid environment variable name (letters, digits, "_"; not starting with a digit)',
  }),
  value: z.string().max(32768).optional(),
  valueFrom: z.object({
    secretKeyRef: keyRef.optional(),
    configMapKeyRef: keyRef.optional(),
  }).optional(),
}), [
  {
    cel: "!self.name.startsWith('AGENTRUN_')",
    message: 'environment variables starting with AGENTRUN_ are set by the operator; choose another name',
    check: (e) => !e.name.startsWith(RESERVED_ENV_PREFIX),
  },
  {
    cel: 'has(self.value) != has(self.valueFrom)',
    message: 'set exactly one of value or valueFrom',
    check: (e) => (e.value !== undefined) !== (e.valueFrom !== undefined),
  },
]);

/** The container that runs one call of a tool, in its own Pod. */
export const toolContainer = z.object({
  image: z.string().min(1).max(512).describe('Container image.'),
  command: z.array(z.string().max(4096)).max(64).optional().describe(
    'Entrypoint; the tool input arrives as $AGENTRUN_INPUT and in the file $AGENTRUN_INPUT_FILE.',
  ),
  args: z.array(z.string().max(4096)).max(64).optional(),
  workingDir: z.string().max(4096).optional(),
  env: z.array(envVar).max(64).optional(),
  resources: resourceRequirements.optional(),
}).describe('The container that runs one call of the tool. What it prints on stdout is the tool result.');
export type ToolContainer = z.infer<typeof toolContainer>;

/**
 * A tool's JSON Schema, free-form except for what admission can check cheaply: it must be an
 * object schema (`type: object`), the only kind the Messages API takes. Whether it compiles (and
 * its patterns run in linear time) is checked when a run resolves its tools (InvalidToolDefinition).
 */
const inputSchema = z.object({
  type: z.literal('object').describe('Always "object": the Messages API takes only object inputs.'),
}).catchall(z.unknown()).meta({ 'x-kubernetes-preserve-unknown-fields': true })
  .describe(
    'JSON Schema of the tool input ("type": "object"); the operator validates each call against it before '
      + 'running a pod. Patterns are RE2 syntax (no backreferences or lookaround). Defaults to {"type":"object"}.',
  );

/** Fields a tool has whether it is defined inline or as an AgentTool. */
export const toolBehaviourFields = {
  description: z.string().max(4096).optional().describe('Tells the model what the tool does and when to use it.'),
  inputSchema: inputSchema.optional(),
  timeout: duration('How long one call may run before its pod is stopped (activeDeadlineSeconds). Default 10m.')
    .optional(),
  requiresApproval: z.boolean().optional().describe('Every call waits for a human decision before its pod is created.'),
  idempotent: z.boolean().optional().describe(
    'A call that may have run (pod deleted, node lost) is safe to run again. Without it such a call reports '
      + 'an error to the model instead.',
  ),
  retries: z.int().min(0).max(10).optional().describe(
    'How often an infrastructure failure of one call is retried. Default 2.',
  ),
};

/** An AgentTool's spec: a reusable tool, what the model sees and the container that runs each call. */
export const agentToolSpec = z.object({
  ...toolBehaviourFields,
  container: toolContainer,
}).describe('AgentToolSpec is a reusable tool: what the model sees and the container that runs each call.');
export type AgentToolSpec = z.infer<typeof agentToolSpec>;

/** An AgentTool object as the apiserver stores it. */
export const agentTool = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('AgentTool'),
  metadata: z.object({ name: z.string(), namespace: z.string().optional() }).loose(),
  spec: agentToolSpec,
});
export type AgentTool = z.infer<typeof agentTool>;
