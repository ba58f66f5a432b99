/**
 * The journal on the apiserver: one immutable AgentRunJournal object per entry, created before
 * status points at it. Every object read back is verified (api/journal-entry.ts verifyJournalObject)
 * before anything uses it. Stateless: the reconciler's run memory caches verified entries.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { JOURNAL_PLURAL, type AgentRunJournalObject } from '../../api/agent-run-journal.ts';
import { GROUP, VERSION } from '../../api/group.ts';
import { sha256 } from '../../api/journal-digest.ts';
import { journalObject } from '../../core/journal.ts';
import { entryStep, verifyJournalObject, type ExpectedEntry, type JournalEntry,
  type JournalRead } from '../../api/journal-entry.ts';
import { isAlreadyExists, isNotFound } from '../../port-errors.ts';
import type { JournalStore, RunOwner } from '../../ports.ts';
import { kubeCall } from './errors.ts';

/** Writes and reads AgentRunJournal objects, verifying each one read. */
export class KubeJournalStore implements JournalStore {
  private readonly api: CustomObjectsApi;
  constructor(api: CustomObjectsApi) {
    this.api = api;
  }

  async write(owner: RunOwner, name: string, entry: JournalEntry): Promise<JournalRead> {
    const body = journalObject(owner, name, entry);
    try {
      await kubeCall(() => this.api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: owner.namespace,
        plural: JOURNAL_PLURAL,
        body,
      }));
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      // Written before (a crash, or another leader): what is stored wins, if it is ours.
      return this.read(owner, { runUid: owner.uid, name, stepId: entryStep(entry) });
    }
    return { state: 'found', recorded: { entry, digest: `sha256:${sha256(body.spec.entry)}` } };
  }

  async read(owner: RunOwner, expected: ExpectedEntry): Promise<JournalRead> {
    let obj: AgentRunJournalObject;
    try {
      obj = await kubeCall(() => this.api.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: owner.namespace,
        plural: JOURNAL_PLURAL,
        name: expected.name,
      })) as AgentRunJournalObject;
    } catch (error) {
      if (isNotFound(error)) return { state: 'missing' };
      throw error;
    }
    return verifyJournalObject(obj, expected, sha256);
  }
}
