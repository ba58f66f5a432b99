/**
 * Reads a run's journal as the operator wrote it: one ConfigMap per finished step (named in
 * status.steps[].journal), its `entry.json` checked against the sha256 digest recorded in status.
 * A mismatch is reported and the entry still shown: the human decides what to make of it.
 */
import type { StepRecord } from '../api/agent-run.ts';
import { sha256 } from '../adapters/kube/journal.ts';
import { JOURNAL_DATA_KEY, journalDigest, journalEntry, type JournalEntry } from '../core/journal.ts';
import type { Kube, Run } from './kube.ts';

export const ENTRY_KEY = JOURNAL_DATA_KEY;

export interface JournaledStep {
  readonly step: StepRecord;
  /** The entry, when the step has one that could be read. */
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

/** The journal entry of one step, or undefined (with a warning when it should have been there). */
export async function readEntry(kube: Kube, run: Run, step: StepRecord, warn: (message: string) => void): Promise<JournalEntry | undefined> {
  const ref = step.journal;
  if (!ref) return undefined;
  const cm = await kube.configMap(run.metadata.namespace, ref.configMap);
  if (!cm) {
    warn(`warning: step ${step.id}: its journal entry, ConfigMap ${ref.configMap}, does not exist (deleted?)`);
    return undefined;
  }
  const text = cm.data?.[ENTRY_KEY];
  if (text === undefined) {
    warn(`warning: step ${step.id}: ConfigMap ${ref.configMap} has no ${ENTRY_KEY}`);
    return undefined;
  }
  const actual = digestOf(text);
  if (actual !== ref.digest) {
    warn(`warning: step ${step.id}: journal entry ${ref.configMap} does not match the digest in status (status ${ref.digest}, content ${actual}): it changed after the operator wrote it; shown as stored`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    warn(`warning: step ${step.id}: journal entry ${ref.configMap} is not JSON; skipped`);
    return undefined;
  }
  const parsed = journalEntry.safeParse(json);
  if (!parsed.success) {
    warn(`warning: step ${step.id}: journal entry ${ref.configMap} is not a journal entry this plugin understands; skipped`);
    return undefined;
  }
  return parsed.data;
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
