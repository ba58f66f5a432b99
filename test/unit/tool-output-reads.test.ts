/** ToolOutputReads: one log read per ended pod, off the reconcile path, enqueueing the run when done. */
import { describe, expect, it } from 'vitest';
import type { ToolOutputObservation } from '../../src/core/observed.ts';
import { ToolOutputReads } from '../../src/reconciler/memory/tool-output-reads.ts';
import { RunMemory } from '../../src/reconciler/memory/run-memory.ts';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

describe('ToolOutputReads', () => {
  it('starts one read per pod, reports nothing while it runs, then the output; onDone enqueues', async () => {
    const pending = deferred<ToolOutputObservation>();
    const calls: string[] = [];
    const reads = new ToolOutputReads((namespace, pod, limit) => { calls.push(`${namespace}/${pod}/${limit}`); return pending.promise; });
    let enqueued = 0;
    expect(reads.observe('uid', 'ns', 'run-s2-a1', 100, () => { enqueued++; })).toBeUndefined();
    expect(reads.observe('uid', 'ns', 'run-s2-a1', 100, () => { enqueued++; })).toBeUndefined();
    expect(calls).toEqual(['ns/run-s2-a1/100']);
    pending.resolve({ ok: true, text: 'out', truncated: false });
    await new Promise((r) => setImmediate(r));
    expect(enqueued).toBe(1);
    expect(reads.observe('uid', 'ns', 'run-s2-a1', 100, () => { enqueued++; })).toEqual({ ok: true, text: 'out', truncated: false });
    reads.forget('uid', 'run-s2-a1');
    expect(reads.size).toBe(0);
  });

  it('a failed read (even a thrown one) is reported once, then read again', async () => {
    let n = 0;
    const memory = new RunMemory();
    const reads = new ToolOutputReads(() => (++n === 1 ? Promise.reject(new Error('kubelet unreachable')) : Promise.resolve({ ok: true, text: 'x', truncated: false })), undefined, undefined, memory);
    const noop = () => undefined;
    reads.observe('uid', 'ns', 'p', 10, noop);
    await new Promise((r) => setImmediate(r));
    expect(reads.observe('uid', 'ns', 'p', 10, noop)).toEqual({ ok: false, error: 'kubelet unreachable' });
    expect(reads.observe('uid', 'ns', 'p', 10, noop)).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(reads.observe('uid', 'ns', 'p', 10, noop)).toMatchObject({ ok: true, text: 'x' });
    expect(n).toBe(2);
    memory.forget('uid');
    expect(reads.size).toBe(0);
  });
});

describe('ToolOutputReads holds a bounded number of outputs', () => {
  it('with room for 2, a third read waits until an output is forgotten, then starts and enqueues its run', async () => {
    const started: string[] = [];
    const reads = new ToolOutputReads((_ns, pod) => { started.push(pod); return Promise.resolve({ ok: true, text: `out of ${pod}`, truncated: false }); }, 2);
    const enqueued: string[] = [];
    for (const pod of ['a', 'b', 'c']) expect(reads.observe('uid', 'ns', pod, 10, () => { enqueued.push(pod); })).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b']);
    expect(reads.observe('uid', 'ns', 'c', 10, () => undefined)).toBeUndefined();
    reads.forget('uid', 'a');
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b', 'c']);
    expect(enqueued).toEqual(['a', 'b', 'c']);
    expect(reads.observe('uid', 'ns', 'c', 10, () => undefined)).toEqual({ ok: true, text: 'out of c', truncated: false });
    expect(reads.size).toBe(2);
  });

  it('forgetting a run drops its waiting reads too', async () => {
    const started: string[] = [];
    const memory = new RunMemory();
    const reads = new ToolOutputReads((_ns, pod) => { started.push(pod); return new Promise<ToolOutputObservation>(() => undefined); }, 1, undefined, memory);
    reads.observe('u1', 'ns', 'a', 10, () => undefined);
    reads.observe('u2', 'ns', 'b', 10, () => undefined);
    reads.observe('u1', 'ns', 'c', 10, () => undefined);
    memory.forget('u1');
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b']);
  });
});

describe('one run cannot take every output slot', () => {
  it('a run at its share waits while another run\'s read starts at once', async () => {
    const started: string[] = [];
    const reads = new ToolOutputReads((_ns, pod) => { started.push(pod); return new Promise<ToolOutputObservation>(() => undefined); }, 4, 2);
    for (const pod of ['h1', 'h2', 'h3', 'h4']) reads.observe('hostile', 'ns', pod, 10, () => undefined);
    reads.observe('ordinary', 'ns', 'o1', 10, () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['h1', 'h2', 'o1']);
    reads.forget('hostile', 'h1');
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['h1', 'h2', 'o1', 'h3']);
  });
});
