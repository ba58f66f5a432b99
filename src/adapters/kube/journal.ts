/**
 * The journal: one immutable, owned ConfigMap per entry, created before status points at it.
 * Entries never change, so every read is cached for the life of the process.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { API_VERSION } from '../../api/group.ts';
import { Label, MANAGED_BY } from '../../api/conditions.ts';
import { JOURNAL_DATA_KEY, journalDigest, journalEntry, serializeEntry, type JournalEntry } from '../../core/journal.ts';
import { runLabelValue } from '../../core/naming.ts';
import type { RecordedEntry } from '../../core/observed.ts';
import type { JournalStore, RunOwner } from '../../ports.ts';
import { isAlreadyExists, isNotFound } from './errors.ts';

export const DIGEST_ANNOTATION = 'agentrun.dev/digest';

/** sha256 hex of a string: the journal's content digest. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A journal entry failed to parse or did not match its digest. */
export class JournalCorruptedError extends Error {
  override name = 'JournalCorruptedError';
}

export class KubeJournalStore implements JournalStore {
  private readonly cache = new Map<string, RecordedEntry>();
  private readonly core: CoreV1Api;
  constructor(core: CoreV1Api) { this.core = core; }

  async write(owner: RunOwner, name: string, entry: JournalEntry, digest: string): Promise<RecordedEntry> {
    const text = serializeEntry(entry);
    const body: V1ConfigMap = {
      metadata: {
        name,
        namespace: owner.namespace,
        labels: { [Label.managedBy]: MANAGED_BY, [Label.component]: 'journal', [Label.run]: runLabelValue(owner.name) },
        annotations: { [DIGEST_ANNOTATION]: digest },
        ownerReferences: [{ apiVersion: API_VERSION, kind: 'AgentRun', name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }],
      },
      immutable: true,
      data: { [JOURNAL_DATA_KEY]: text },
    };
    try {
      await this.core.createNamespacedConfigMap({ namespace: owner.namespace, body });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      // Written before a crash: what is stored wins, so a resumed run sees exactly what it saw.
      this.cache.delete(key(owner.namespace, name));
      const existing = await this.read(owner.namespace, name);
      if (existing) return existing;
      throw error;
    }
    const recorded = { entry, digest };
    this.cache.set(key(owner.namespace, name), recorded);
    return recorded;
  }

  async read(namespace: string, name: string): Promise<RecordedEntry | undefined> {
    const cached = this.cache.get(key(namespace, name));
    if (cached) return cached;
    let cm: V1ConfigMap;
    try {
      cm = await this.core.readNamespacedConfigMap({ namespace, name });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const text = cm.data?.[JOURNAL_DATA_KEY] ?? '';
    const digest = journalDigest(sha256(text));
    let parsed: unknown;
    try { parsed = JSON.parse(text); } catch { throw new JournalCorruptedError(`journal ${namespace}/${name} is not JSON`); }
    const result = journalEntry.safeParse(parsed);
    if (!result.success) throw new JournalCorruptedError(`journal ${namespace}/${name} is not a journal entry: ${result.error.message}`);
    const recorded = { entry: result.data, digest };
    this.cache.set(key(namespace, name), recorded);
    return recorded;
  }

  forget(namespace: string, namePrefix: string): void {
    const prefix = key(namespace, namePrefix);
    for (const k of this.cache.keys()) if (k.startsWith(prefix)) this.cache.delete(k);
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
