/**
 * The AgentRunJournal objects the operator writes: one per journal entry (api/journal-entry.ts),
 * owned by the run (a controller ownerReference: deleting the run deletes its journal) and
 * labelled so the run's entries can be listed.
 */
import type { z } from 'zod';
import { API_VERSION } from '../api/group.ts';
import { JOURNAL_KIND, agentRunJournalSpec, type AgentRunJournalObject } from '../api/agent-run-journal.ts';
import { Label, MANAGED_BY } from '../api/conditions.ts';
import { entryStep, serializeEntry, type JournalEntry } from '../api/journal-entry.ts';
import { runLabelValue } from './naming.ts';

/** Who the entry belongs to, as the reconciler knows the run. */
export interface JournalOwner {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

/** The AgentRunJournal object that stores `entry` for `owner` under `name`. */
export function journalObject(owner: JournalOwner, name: string, entry: JournalEntry): AgentRunJournalObject & {
  spec: z.infer<typeof agentRunJournalSpec>;
} {
  return {
    apiVersion: API_VERSION,
    kind: JOURNAL_KIND,
    metadata: {
      name,
      namespace: owner.namespace,
      labels: { [Label.managedBy]: MANAGED_BY, [Label.component]: 'journal', [Label.run]: runLabelValue(owner.name),
        [Label.runUid]: owner.uid },
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'AgentRun', name: owner.name, uid: owner.uid,
        controller: true }],
    },
    spec: { run: { name: owner.name, uid: owner.uid }, step: entryStep(entry), kind: entry.kind,
      entry: serializeEntry(entry) },
  };
}
