/**
 * What the journal holds: one immutable entry per finished step (the model's response, or a
 * tool call's result) plus the run's resolved tools. Entries are stored verbatim in owned
 * ConfigMaps; status only points at them with a digest. The conversation is rebuilt from them.
 */
import { z } from 'zod';
import { StepOutcome } from '../api/conditions.ts';

/** A content block exactly as the Messages API sent it; kept opaque so every block type round-trips. */
export const wireBlock = z.object({ type: z.string() }).loose();
export type WireBlock = z.infer<typeof wireBlock>;

export const modelUsage = z.object({
  input_tokens: z.number().default(0),
  output_tokens: z.number().default(0),
  cache_creation_input_tokens: z.number().nullish(),
  cache_read_input_tokens: z.number().nullish(),
}).loose();
export type ModelUsage = z.infer<typeof modelUsage>;

/** The parts of a Messages API response the journal keeps. */
export const modelResponse = z.object({
  id: z.string(),
  model: z.string(),
  content: z.array(wireBlock),
  stop_reason: z.string().nullable(),
  usage: modelUsage,
});
export type ModelResponse = z.infer<typeof modelResponse>;

/** A tool definition after toolRefs are resolved: everything a step needs to run. */
export const resolvedTool = z.object({
  name: z.string(),
  description: z.string().optional(),
  inputSchema: z.record(z.string(), z.unknown()),
  container: z.object({
    image: z.string(),
    command: z.array(z.string()).optional(),
    args: z.array(z.string()).optional(),
    workingDir: z.string().optional(),
    env: z.array(z.object({ name: z.string() }).loose()).optional(),
    resources: z.object({
      limits: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
      requests: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
    }).optional(),
  }),
  timeoutSeconds: z.number(),
  requiresApproval: z.boolean(),
  idempotent: z.boolean(),
  retries: z.number(),
  /** The AgentTool it came from, if any. */
  source: z.string().optional(),
});
export type ResolvedTool = z.infer<typeof resolvedTool>;

export const journalEntry = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('ModelResponse'),
    stepId: z.number(),
    turn: z.number(),
    attempt: z.number(),
    response: modelResponse,
  }),
  z.object({
    kind: z.literal('ToolResult'),
    stepId: z.number(),
    tool: z.string(),
    toolUseId: z.string(),
    attempt: z.number(),
    /** What the model gets back, already truncated to the run's limit. */
    output: z.string(),
    isError: z.boolean(),
    outcome: z.enum(Object.values(StepOutcome) as [StepOutcome, ...StepOutcome[]]),
    exitCode: z.number().optional(),
    truncated: z.boolean().default(false),
    podName: z.string().optional(),
  }),
  z.object({
    kind: z.literal('Tools'),
    tools: z.array(resolvedTool),
  }),
]);
export type JournalEntry = z.infer<typeof journalEntry>;
export type ModelResponseEntry = Extract<JournalEntry, { kind: 'ModelResponse' }>;
export type ToolResultEntry = Extract<JournalEntry, { kind: 'ToolResult' }>;

/** The ConfigMap data key that holds an entry. */
export const JOURNAL_DATA_KEY = 'entry.json';

/** A digest as status records it: `sha256:<hex>` of the stored text (the hash is injected: core does no I/O). */
export function journalDigest(sha256Hex: string): string {
  return `sha256:${sha256Hex}`;
}

/** The canonical serialisation of an entry: what is stored and what the digest covers. */
export function serializeEntry(entry: JournalEntry): string {
  return JSON.stringify(entry);
}
