/**
 * The journal's wire format: one immutable entry per finished step (the model's response, or a
 * tool call's result) plus the run's resolved tools, stored verbatim in owned AgentRunJournal
 * objects that status points at with a digest. This is the contract between the operator (which
 * writes entries and reads them back) and the plugin and console (which only read): nothing read
 * back is used before verifyJournalObject() accepts it.
 */
import { z } from 'zod';
import { JOURNAL_KIND, agentRunJournalSpec, type AgentRunJournalObject } from './agent-run-journal.ts';
import { Reason, StepOutcome } from './conditions.ts';

/** A content block exactly as the Messages API sent it; kept opaque so every block type round-trips. */
export const wireBlock = z.object({ type: z.string() }).loose();
export type WireBlock = z.infer<typeof wireBlock>;

/** Token usage as the Messages API reports it; unknown fields kept. */
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

/** What a restarted operator needs to poll an MCP task again (the server's task store is per session). */
export const mcpTaskHandle = z.object({
  taskId: z.string().max(256),
  /** Mcp-Session-Id of the session that created it: a handle, not a credential (headers authenticate). */
  sessionId: z.string().max(256).optional(),
  protocolVersion: z.string().max(64).optional(),
  /** When the server created it (ISO 8601): the tool's timeout counts from here. */
  createdAt: z.string().max(64),
  pollIntervalMs: z.number().optional(),
  ttlMs: z.number().nullable().optional(),
});
export type MCPTaskHandle = z.infer<typeof mcpTaskHandle>;

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
  }).optional().describe('The pod that runs a call; absent for MCP tools.'),
  /**
   * An MCP tool: called on the MCPServer `server` as `tool` (its name there), not in a pod; `task`:
   * called as an MCP task (its handle journaled and polled), decided once at the run's start.
   */
  mcp: z.object({ server: z.string(), tool: z.string(), task: z.boolean().optional() }).optional(),
  timeoutSeconds: z.number(),
  requiresApproval: z.boolean(),
  idempotent: z.boolean(),
  retries: z.number(),
  /** The AgentTool it came from, if any. */
  source: z.string().optional(),
});
export type ResolvedTool = z.infer<typeof resolvedTool>;
/** A tool that runs in a pod. */
export type PodTool = ResolvedTool & { container: NonNullable<ResolvedTool['container']> };
/** A tool called on an MCP server. */
export type MCPTool = ResolvedTool & { mcp: NonNullable<ResolvedTool['mcp']> };

/** One journal entry: a model response, a tool call's result, the run's resolved tools, or an MCP task handle. */
export const journalEntry = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('ModelResponse'),
    stepId: z.number(),
    turn: z.number(),
    attempt: z.number(),
    response: modelResponse,
    /**
     * Tool steps whose MCP calls start as soon as this entry is stored, beside the status that
     * records them: this entry is their intent. After a crash before that status, they may have
     * been called (core/mcp-steps.ts).
     */
    mcpCallsStarted: z.array(z.number().int()).max(64).optional(),
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
    /** For an MCP call: the server and the tool's name there. */
    mcp: z.object({ server: z.string(), tool: z.string() }).optional(),
  }),
  z.object({
    kind: z.literal('Tools'),
    tools: z.array(resolvedTool),
  }),
  z.object({
    kind: z.literal('MCPTask'),
    stepId: z.number(),
    attempt: z.number(),
    server: z.string(),
    tool: z.string(),
    /** The task as the server created it: polled with tasks/get on the session that created it. */
    handle: mcpTaskHandle,
  }),
]);
export type JournalEntry = z.infer<typeof journalEntry>;
/** A journaled model response, with the step, turn and attempt it answers. */
export type ModelResponseEntry = Extract<JournalEntry, { kind: 'ModelResponse' }>;
/** A journaled tool result: what the model gets back, and how the call ended. */
export type ToolResultEntry = Extract<JournalEntry, { kind: 'ToolResult' }>;
/** A journaled MCP task handle of one attempt of a tool step. */
export type MCPTaskEntry = Extract<JournalEntry, { kind: 'MCPTask' }>;

/** A digest as status records it: `sha256:<hex>` of the stored text (the hash is injected: core does no I/O). */
export function journalDigest(sha256Hex: string): string {
  return `sha256:${sha256Hex}`;
}

/** The canonical serialisation of an entry: what is stored and what the digest covers. */
export function serializeEntry(entry: JournalEntry): string {
  return JSON.stringify(entry);
}

/** The step id an entry records: 0 for the resolved tools. */
export function entryStep(entry: JournalEntry): number {
  return entry.kind === 'Tools' ? 0 : entry.stepId;
}

/** A journal entry read back, with the digest of its stored bytes. */
export interface RecordedEntry {
  readonly entry: JournalEntry;
  readonly digest: string;
}

/** The outcome of reading one journal entry: only `found` may be acted on. */
export type JournalRead =
  | { readonly state: 'found'; readonly recorded: RecordedEntry }
  | { readonly state: 'missing' }
  | { readonly state: 'untrusted'; readonly reason: typeof Reason.JournalTampered | typeof Reason.JournalCorrupted;
    readonly problem: string };

/** What a journal object must be to count as the run's own entry for a step. */
export interface ExpectedEntry {
  readonly runUid: string;
  readonly name: string;
  readonly stepId: number;
  /** The digest status recorded for it, when status has recorded one. */
  readonly digest?: string;
}

/**
 * Accepts a journal object only when it is the operator's entry for exactly this run and step:
 * controller-owned by the run's UID, naming that UID and step, a journal entry for that step,
 * and (when status recorded one) matching the digest. Anything else is never used.
 */
export function verifyJournalObject(obj: AgentRunJournalObject, expected: ExpectedEntry,
  hash: (text: string) => string): JournalRead {
  const where = `AgentRunJournal ${expected.name}`;
  const tampered = (problem: string): JournalRead => ({ state: 'untrusted', reason: Reason.JournalTampered,
    problem: `${where} ${problem}` });
  const controller = (obj.metadata?.ownerReferences ?? []).find((r) => r.controller === true);
  if (obj.kind !== undefined && obj.kind !== JOURNAL_KIND) return tampered(`is a ${obj.kind}, not a journal entry`);
  if (controller?.kind !== 'AgentRun' || controller.uid !== expected.runUid) {
    return tampered(`is not controlled by this run (UID ${expected.runUid}): someone else created it`);
  }
  const spec = agentRunJournalSpec.safeParse(obj.spec);
  if (!spec.success)
    return { state: 'untrusted', reason: Reason.JournalCorrupted,
      problem: `${where} is not a journal entry: ${spec.error.issues[0]?.message ?? 'invalid'}` };
  if (spec.data.run.uid !== expected.runUid)
    return tampered(`belongs to run UID ${spec.data.run.uid}, not ${expected.runUid}`);
  if (spec.data.step !== expected.stepId)
    return tampered(`records step ${spec.data.step}, not step ${expected.stepId}`);
  const digest = journalDigest(hash(spec.data.entry));
  if (expected.digest !== undefined && digest !== expected.digest) {
    return tampered(`has digest ${digest}, but status recorded ${expected.digest}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(spec.data.entry);
  } catch {
    return { state: 'untrusted', reason: Reason.JournalCorrupted, problem: `${where} is not JSON` };
  }
  const entry = journalEntry.safeParse(json);
  if (!entry.success)
    return { state: 'untrusted', reason: Reason.JournalCorrupted,
      problem: `${where} is not a journal entry: ${entry.error.issues[0]?.message ?? 'invalid'}` };
  if (entry.data.kind !== spec.data.kind || entryStep(entry.data) !== expected.stepId) {
    return tampered(`holds a ${entry.data.kind} entry of step ${entryStep(entry.data)}, not step ${expected.stepId}`);
  }
  return { state: 'found', recorded: { entry: entry.data, digest } };
}
