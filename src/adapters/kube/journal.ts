/**
 * The journal: one immutable AgentRunJournal object per entry, created before status points at
 * it. Every object read back is verified (core/journal.ts verifyJournalObject) before anything
 * uses it; verified entries never change, so they are cached until the run is forgotten.
 */
import { createHash } from 'node:crypto';
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { JOURNAL_PLURAL, type AgentRunJournalObject } from '../../api/agent-run-journal.ts';
import { GROUP, VERSION } from '../../api/group.ts';
import { journalObject, verifyJournalObject, type ExpectedEntry, type JournalEntry, type JournalRead } from '../../core/journal.ts';
import { entryStep } from '../../core/journal.ts';
import type { JournalStore, RunOwner } from '../../ports.ts';
import { isAlreadyExists, isNotFound } from './errors.ts';

/** sha256 hex of a string: the journal's content digest. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class KubeJournalStore implements JournalStore {
  /** Verified entries by run UID, then name. */
  private readonly cache = new Map<string, Map<string, JournalRead & { state: 'found' }>>();
  private readonly api: CustomObjectsApi;
  constructor(api: CustomObjectsApi) { this.api = api; }

  async write(owner: RunOwner, name: string, entry: JournalEntry): Promise<JournalRead> {
    const body = journalObject(owner, name, entry);
    try {
      await this.api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: owner.namespace, plural: JOURNAL_PLURAL, body });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      // Written before (a crash, or another leader): what is stored wins, if it is ours.
      return this.read(owner, { runUid: owner.uid, name, stepId: entryStep(entry) });
    }
    const found = { state: 'found' as const, recorded: { entry, digest: `sha256:${sha256(body.spec.entry)}` } };
    this.remember(owner.uid, name, found);
    return found;
  }

  async read(owner: RunOwner, expected: ExpectedEntry): Promise<JournalRead> {
    const cached = this.cache.get(owner.uid)?.get(expected.name);
    if (cached) return this.checkDigest(cached, expected);
    let obj: AgentRunJournalObject;
    try {
      obj = await this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: owner.namespace, plural: JOURNAL_PLURAL, name: expected.name }) as AgentRunJournalObject;
    } catch (error) {
      if (isNotFound(error)) return { state: 'missing' };
      throw error;
    }
    const read = verifyJournalObject(obj, expected, sha256);
    if (read.state === 'found') this.remember(owner.uid, expected.name, read);
    return read;
  }

  forget(runUid: string): void {
    this.cache.delete(runUid);
  }

  private remember(runUid: string, name: string, found: JournalRead & { state: 'found' }): void {
    let entries = this.cache.get(runUid);
    if (!entries) { entries = new Map(); this.cache.set(runUid, entries); }
    entries.set(name, found);
  }

  private checkDigest(found: JournalRead & { state: 'found' }, expected: ExpectedEntry): JournalRead {
    if (expected.digest === undefined || expected.digest === found.recorded.digest) return found;
    return { state: 'untrusted', reason: 'JournalTampered',
      problem: `AgentRunJournal ${expected.name} has digest ${found.recorded.digest}, but status recorded ${expected.digest}` };
  }
}
