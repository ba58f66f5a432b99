/**
 * The journal port with verified entries remembered in the run's memory: an entry never changes
 * once verified, so it is read from the apiserver once per process.
 */
import { Reason } from '../../api/conditions.ts';
import type { ExpectedEntry, JournalEntry, JournalRead } from '../../api/journal-entry.ts';
import type { JournalStore, RunOwner } from '../../ports.ts';
import type { RunMemory } from './run-memory.ts';

type Found = JournalRead & { state: 'found' };

/** A JournalStore that remembers verified entries per run (dropped when the run is forgotten). */
export class CachedJournal implements JournalStore {
  private readonly store: JournalStore;
  private readonly memory: RunMemory;
  constructor(store: JournalStore, memory: RunMemory) {
    this.store = store;
    this.memory = memory;
  }

  async write(owner: RunOwner, name: string, entry: JournalEntry): Promise<JournalRead> {
    return this.remember(owner.uid, name, await this.store.write(owner, name, entry));
  }

  async read(owner: RunOwner, expected: ExpectedEntry): Promise<JournalRead> {
    const cached = this.memory.peek(owner.uid)?.journal.get(expected.name);
    if (cached) return checkDigest(cached, expected);
    return this.remember(owner.uid, expected.name, await this.store.read(owner, expected));
  }

  private remember(uid: string, name: string, read: JournalRead): JournalRead {
    if (read.state === 'found') this.memory.of(uid).journal.set(name, read);
    return read;
  }
}

function checkDigest(found: Found, expected: ExpectedEntry): JournalRead {
  if (expected.digest === undefined || expected.digest === found.recorded.digest) return found;
  return { state: 'untrusted', reason: Reason.JournalTampered,
    problem: `AgentRunJournal ${expected.name} has digest ${found.recorded.digest}, `
      + `but status recorded ${expected.digest}` };
}
