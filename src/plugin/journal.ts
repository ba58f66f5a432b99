/**
 * Reads a run's journal as the operator wrote it: one AgentRunJournal per finished step (named
 * in status.steps[].journal), verified exactly as the operator verifies it (api/journal-entry.ts):
 * owned by the run, for that step, matching the digest in status. An entry that fails is never
 * shown — only a warning that says why.
 */
import type { StepRecord } from '../api/agent-run.ts';
import { sha256 } from '../api/journal-digest.ts';
import { journalDigest, verifyJournalObject, type JournalEntry } from '../api/journal-entry.ts';
import type { Kube, Run } from './kube.ts';

/** One step of a run with its verified journal entry, when there is one. */
export interface JournaledStep {
  readonly step: StepRecord;
  /** The entry, when the step has one that could be read and verified. */
  readonly entry?: JournalEntry;
}

/** A journal entry's digest as status records it: `sha256:<hex>` of the stored text. */
export function digestOf(text: string): string {
  return journalDigest(sha256(text));
}

/** Every step of the run in id order, with its journal entry where there is one; problems go to `warn`. */
export async function readJournal(kube: Kube, run: Run, warn: (message: string) => void): Promise<JournaledStep[]> {
  const steps = [...(run.status?.steps ?? [])].sort((a, b) => a.id - b.id);
  return mapLimited(steps, 8, async (step) => {
    const entry = await readEntry(kube, run, step, warn);
    return entry === undefined ? { step } : { step, entry };
  });
}

/** The verified journal entry of one step, or undefined (with a warning when it should have been there). */
export async function readEntry(
  kube: Kube,
  run: Run,
  step: StepRecord,
  warn: (message: string) => void,
): Promise<JournalEntry | undefined> {
  const ref = step.journal;
  if (!ref) return undefined;
  const obj = await kube.journal(run.metadata.namespace, ref.name);
  if (!obj) {
    warn(`warning: step ${step.id}: its journal entry, AgentRunJournal ${ref.name}, does not exist (deleted?)`);
    return undefined;
  }
  const expected = { runUid: run.metadata.uid ?? '', name: ref.name, stepId: step.id, digest: ref.digest };
  const read = verifyJournalObject(obj, expected, sha256);
  if (read.state !== 'found') {
    warn(`warning: step ${step.id}: ${read.state === 'untrusted' ? read.problem : 'missing'}; not shown`);
    return undefined;
  }
  return read.recorded.entry;
}

/** `fn` over `items` with at most `limit` in flight, results in order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The whole input of a pending tool call, from the model response that asked for it (verified). */
export interface PendingInput {
  readonly text: string;
  /** The input's digest matches the one the operator recorded in the pending approval. */
  readonly matches: boolean;
}

/** Reads the full input of a pending tool approval from the journal; undefined when it cannot be verified. */
export async function pendingInput(
  kube: Kube,
  run: Run,
  pending: { step: number; inputDigest?: string | undefined },
  warn: (message: string) => void,
): Promise<PendingInput | undefined> {
  const steps = run.status?.steps ?? [];
  const tool = steps.find((s) => s.id === pending.step);
  if (tool?.kind !== 'Tool' || tool.toolUseId === undefined) return undefined;
  const model = steps.filter((s) => s.kind === 'Model' && s.turn === tool.turn && s.journal !== undefined).at(-1);
  if (!model) return undefined;
  const entry = await readEntry(kube, run, model, warn);
  if (entry?.kind !== 'ModelResponse') return undefined;
  const block = entry.response.content
    .find((b) => b.type === 'tool_use' && b.id === tool.toolUseId) as { input?: unknown } | undefined;
  if (!block) return undefined;
  // The same serialisation the operator used for the digest (core/approvals.ts requestApproval).
  const text = JSON.stringify(block.input ?? {});
  return { text, matches: pending.inputDigest === undefined || digestOf(text) === pending.inputDigest };
}
