/**
 * RunMemory: one store of what this process remembers per run, keyed by UID, with one forget;
 * and the in-flight helper every call and read shares (start once, keep the outcome, abort an
 * older attempt, enqueue when done).
 */
import { describe, expect, it } from 'vitest';
import type { ExpectedEntry, JournalEntry, JournalRead } from '../../src/api/journal-entry.ts';
import type { ModelCallOutcome, ModelClient, JournalStore, RunOwner } from '../../src/ports.ts';
import { CachedJournal } from '../../src/reconciler/memory/journal-cache.ts';
import { startOnce, type Flight } from '../../src/reconciler/memory/in-flight.ts';
import { ModelCalls } from '../../src/reconciler/memory/model-calls.ts';
import { PodMemory } from '../../src/reconciler/memory/pod-memory.ts';
import { RunMemory } from '../../src/reconciler/memory/run-memory.ts';
import { ToolOutputReads } from '../../src/reconciler/memory/tool-output-reads.ts';
import { modelEntry, response, text } from '../harness/builders.ts';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A journal whose reads are counted: a cached entry is never read again. */
function countingJournal(): JournalStore & { reads: string[] } {
  const reads: string[] = [];
  const entry: JournalEntry = modelEntry(1, 1, response('end_turn', [text('hi')]));
  return {
    reads,
    write: () => Promise.reject(new Error('not used')),
    read: (_owner: RunOwner, expected: ExpectedEntry): Promise<JournalRead> => {
      reads.push(expected.name);
      return Promise.resolve({ state: 'found', recorded: { entry, digest: 'sha256:x' } });
    },
  };
}

describe('RunMemory.forget', () => {
  it('forgets exactly the run it names: forgetting demo keeps demo-2 (no name or UID prefix match)', async () => {
    const memory = new RunMemory();
    const store = countingJournal();
    const journal = new CachedJournal(store, memory);
    const demo: RunOwner = { namespace: 'ns', name: 'demo', uid: 'demo' };
    const demo2: RunOwner = { namespace: 'ns', name: 'demo-2', uid: 'demo-2' };
    memory.of('demo', 'ns/demo');
    memory.of('demo-2', 'ns/demo-2');
    for (const owner of [demo, demo2]) await journal.read(owner, { runUid: owner.uid, name: `${owner.name}-s1`, stepId: 1 });
    expect(store.reads).toEqual(['demo-s1', 'demo-2-s1']);

    memory.forget('demo');
    for (const owner of [demo, demo2]) await journal.read(owner, { runUid: owner.uid, name: `${owner.name}-s1`, stepId: 1 });
    // demo is read again; demo-2's verified entry is still remembered.
    expect(store.reads).toEqual(['demo-s1', 'demo-2-s1', 'demo-s1']);
    expect(memory.uidOf('ns/demo')).toBeUndefined();
    expect(memory.uidOf('ns/demo-2')).toBe('demo-2');
  });

  it('a cached entry whose digest differs from what status recorded is untrusted', async () => {
    const memory = new RunMemory();
    const journal = new CachedJournal(countingJournal(), memory);
    const owner: RunOwner = { namespace: 'ns', name: 'demo', uid: 'u' };
    await journal.read(owner, { runUid: 'u', name: 'demo-s1', stepId: 1 });
    expect(await journal.read(owner, { runUid: 'u', name: 'demo-s1', stepId: 1, digest: 'sha256:other' }))
      .toMatchObject({ state: 'untrusted', reason: 'JournalTampered' });
  });

  it('drops pods, calls (aborting them) and reads of the run, frees its read slots, and tells listeners', async () => {
    const memory = new RunMemory();
    const signals: AbortSignal[] = [];
    const hanging: ModelClient = {
      call: (_r, o) => { signals.push(o.signal); return new Promise<ModelCallOutcome>(() => undefined); },
    };
    const calls = new ModelCalls(hanging, undefined, { memory });
    const pods = new PodMemory(memory);
    const started: string[] = [];
    const reads = new ToolOutputReads((_ns, pod) => { started.push(pod); return new Promise(() => undefined); }, 1, 1, memory);
    const forgotten: string[] = [];
    memory.onForget((uid) => forgotten.push(uid));

    calls.start({ runUid: 'a', stepId: 1, attempt: 1, request: { model: 'm', messages: [], maxTokens: 1 } as never,
      credentials: () => Promise.resolve({ apiKey: undefined, baseURL: undefined }), onDone: () => undefined });
    pods.record({ metadata: { name: 'a-s2-a1', namespace: 'ns', ownerReferences: [{ apiVersion: 'v', kind: 'AgentRun', name: 'a', uid: 'a', controller: true }] } });
    reads.observe('a', 'ns', 'a-s2-a1', 10, () => undefined);
    reads.observe('b', 'ns', 'b-s2-a1', 10, () => undefined);
    await settle();
    expect(started).toEqual(['a-s2-a1']);
    expect(calls.inFlight()).toBe(1);

    memory.forget('a');
    await settle();
    expect(signals[0]?.aborted).toBe(true);
    expect(calls.observe('a').size).toBe(0);
    expect(pods.ofRun('a').size).toBe(0);
    expect(started).toEqual(['a-s2-a1', 'b-s2-a1']);
    expect(forgotten).toEqual(['a']);
  });
});

describe('startOnce', () => {
  it('starts an attempt once, keeps its outcome, and calls onDone', async () => {
    const flights = new Map<number, Flight<string>>();
    let runs = 0;
    let done = 0;
    for (let i = 0; i < 3; i++) startOnce(flights, 1, 1, 'pending', () => { runs++; return Promise.resolve('ok'); }, () => { done++; });
    expect(flights.get(1)?.outcome).toBe('pending');
    await settle();
    expect({ runs, done, outcome: flights.get(1)?.outcome, finished: flights.get(1)?.done }).toEqual({ runs: 1, done: 1, outcome: 'ok', finished: true });
  });

  it('a newer attempt aborts the older one, whose late outcome is neither kept nor enqueued', async () => {
    const flights = new Map<number, Flight<string>>();
    const signals: AbortSignal[] = [];
    let finishFirst!: (v: string) => void;
    const enqueued: number[] = [];
    startOnce(flights, 1, 1, 'pending', (s) => { signals.push(s); return new Promise((r) => { finishFirst = r; }); }, () => enqueued.push(1));
    startOnce(flights, 1, 2, 'pending', () => Promise.resolve('second'), () => enqueued.push(2));
    expect(signals[0]?.aborted).toBe(true);
    finishFirst('first');
    await settle();
    expect(flights.get(1)).toMatchObject({ attempt: 2, outcome: 'second' });
    expect(enqueued).toEqual([2]);
  });

  it('work that resolves undefined (aborted) records nothing', async () => {
    const flights = new Map<number, Flight<string>>();
    let done = 0;
    startOnce(flights, 1, 1, 'pending', () => Promise.resolve(undefined), () => { done++; });
    await settle();
    expect(flights.get(1)).toMatchObject({ outcome: 'pending', done: false });
    expect(done).toBe(0);
  });
});
