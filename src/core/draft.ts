/**
 * The working copy one decide() call builds, and the small helpers every part of the decision
 * uses to change it: journal entries, Events, timers, conditions. Internal to core/.
 */
import type { AgentRunSpec, AgentRunStatus, StepRecord, TokenUsage } from '../api/agent-run.ts';
import type { EventReason, Reason } from '../api/conditions.ts';
import type { Condition } from '../api/primitives.ts';
import type { Effect } from './effects.ts';
import { journalDigest, serializeEntry, type JournalEntry, type ModelResponseEntry, type RecordedEntry,
  type ResolvedTool } from '../api/journal-entry.ts';
import type { Observed } from './observed.ts';

/** status.result's maxLength in the CRD; the whole final answer stays in the journal. */
export const RESULT_MAX = 4096;
/** status.message's maxLength in the CRD: a longer message would make the status write fail (422). */
export const STATUS_MESSAGE_MAX = 1024;
/** status.steps[].stopReason's maxLength in the CRD. */
export const STOP_REASON_MAX = 64;

/** Mutable working copy of one decision; lives only inside decide(). */
export interface Draft {
  readonly o: Observed;
  readonly spec: AgentRunSpec;
  readonly status: AgentRunStatus & { steps: StepRecord[] };
  readonly effects: Effect[];
  /** The observed journal plus the entries this decision writes: later steps of it build on them. */
  readonly journal: Map<number, RecordedEntry>;
  requeueAfterMs: number | undefined;
  tools: readonly ResolvedTool[];
  /** Set when the run reaches a final state in this decision. */
  finished: boolean;
  /** What the run waits for, when something more specific than its steps says it. */
  waiting: string | undefined;
  /** Why the run is held (Succeeded=Unknown reason and message), overriding the default. */
  hold: { reason: Reason; message: string } | undefined;
  /** Characters of the journal entries this decision writes: bounds what one reconcile sends. */
  journalChars: number;
  /**
   * The model answer this decision journals, while its tool steps may still start MCP calls with
   * it (mcpCallsStarted; the entry is written at the end of the decision, core/mcp-steps.ts).
   */
  answer: {
    readonly step: StepRecord;
    readonly entry: ModelResponseEntry;
    /** The tool steps it asks for. */
    readonly toolSteps: Set<number>;
    /** Those whose MCP calls start with it. */
    readonly started: number[];
    /** Where its writeJournal effect goes among the decision's effects (where it was decided). */
    readonly effectIndex: number;
  } | undefined;
  /** Tool steps an answer read back from the journal says were called with it (status lost them). */
  readonly calledWithAnswer: Set<number>;
}

/**
 * Journal characters one decision may write before further tool results wait for the next
 * reconcile (requeued at once, behind the other runs in the queue): a run with 32 parallel
 * tools printing 1 MB each sends at most ~2 MB per turn of the queue, not 32 MB at once over
 * the connection every run shares.
 */
export const DECISION_JOURNAL_BUDGET_CHARS = 2_000_000;

/** Asks for an entry to be journaled before the status write; returns its digest. */
export function journal(d: Draft, name: string, stepId: number | undefined, entry: JournalEntry): string {
  const text = serializeEntry(entry);
  d.journalChars += text.length;
  const digest = journalDigest(d.o.hash(text));
  d.effects.push({ type: 'writeJournal', name, ...(stepId !== undefined ? { stepId } : {}), entry, digest });
  if (stepId !== undefined) d.journal.set(stepId, { entry, digest });
  return digest;
}

/**
 * Journals the model answer of this decision (Draft.answer) once the steps it asks for are started,
 * naming the MCP calls that start with it.
 */
export function journalAnswer(d: Draft): void {
  const answer = d.answer;
  if (!answer) return;
  d.answer = undefined;
  const entry: ModelResponseEntry = answer.started.length > 0
    ? { ...answer.entry, mcpCallsStarted: [...answer.started] }
    : answer.entry;
  const name = answer.step.journal?.name ?? '';
  answer.step.journal = { name, digest: journal(d, name, answer.step.id, entry) };
  const write = d.effects.pop();
  if (write) d.effects.splice(answer.effectIndex, 0, write);
}

/** Queues a Kubernetes Event about the run. */
export function event(d: Draft, eventType: 'Normal' | 'Warning', reason: EventReason, message: string): void {
  d.effects.push({ type: 'event', eventType, reason, message });
}

/** Asks to reconcile the run again by `atMs` (ms since epoch); the earliest request wins. */
export function requeueAt(d: Draft, atMs: number): void {
  const after = Math.max(0, atMs - d.o.now);
  d.requeueAfterMs = d.requeueAfterMs === undefined ? after : Math.min(d.requeueAfterMs, after);
}

/** Sets a condition, keeping its lastTransitionTime unless the status changed. */
export function setCondition(d: Draft, type: string, status: Condition['status'], reason: string,
  message: string): void {
  const conditions = d.status.conditions ?? [];
  const existing = conditions.find((c) => c.type === type);
  const transitioned = existing?.status !== status;
  const next: Condition = {
    type,
    status,
    reason,
    message: truncate(message, 32_768),
    lastTransitionTime: existing && !transitioned ? existing.lastTransitionTime : now(d),
    ...(d.o.run.metadata.generation !== undefined ? { observedGeneration: d.o.run.metadata.generation } : {}),
  };
  d.status.conditions = [...conditions.filter((c) => c.type !== type), next];
}

/** The decision's clock reading as an RFC 3339 timestamp; decide() never reads the clock itself. */
export function now(d: Draft): string {
  return new Date(d.o.now).toISOString();
}

/** The id the next step gets: one more than the last, so ids are never reused. */
export function nextStepId(d: Draft): number {
  return (d.status.steps.at(-1)?.id ?? 0) + 1;
}

/** Cuts `text` to at most `max` characters, marking the cut with an ellipsis. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Zero token usage, to add step usages to. */
export function emptyUsage(): TokenUsage {
  return { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, totalTokens: 0 };
}

/** Converts the Messages API's usage into the status's, with the total that budgets count. */
export function usageOf(u: ModelResponseEntry['response']['usage']): TokenUsage {
  const usage = {
    inputTokens: u.input_tokens,
    outputTokens: u.output_tokens,
    cacheReadInputTokens: u.cache_read_input_tokens ?? 0,
    cacheCreationInputTokens: u.cache_creation_input_tokens ?? 0,
  };
  return { ...usage,
    totalTokens: usage.inputTokens + usage.outputTokens + usage.cacheReadInputTokens + usage.cacheCreationInputTokens };
}

/** Adds two token usages, field by field. */
export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadInputTokens: a.cacheReadInputTokens + b.cacheReadInputTokens,
    cacheCreationInputTokens: a.cacheCreationInputTokens + b.cacheCreationInputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}
