/**
 * Reads the logs of ended tool pods off the reconcile path. A log read goes through the apiserver
 * to the kubelet and can take hundreds of ms under load; done inline it held a worker that long
 * (43 % of all worker time at 200 concurrent runs). Like a model call, a read runs on its own and
 * enqueues its run when it is done; decide() sees "no observation yet" and waits.
 */
import type { ToolOutputObservation } from '../core/observed.ts';

interface Read { done?: ToolOutputObservation }

export class ToolOutputReads {
  private readonly reads = new Map<string, Read>();
  private readonly read: (namespace: string, pod: string, limitBytes: number) => Promise<ToolOutputObservation>;

  constructor(read: (namespace: string, pod: string, limitBytes: number) => Promise<ToolOutputObservation>) {
    this.read = read;
  }

  /**
   * The pod's output once read; otherwise starts a read (at most one per pod) that calls `onDone`
   * when it ends, and returns undefined. A failed read is reported once, then read again when
   * asked next.
   */
  observe(runUid: string, namespace: string, pod: string, limitBytes: number, onDone: () => void): ToolOutputObservation | undefined {
    const key = `${runUid}/${pod}`;
    const existing = this.reads.get(key);
    if (existing?.done) {
      if (!existing.done.ok) this.reads.delete(key);
      return existing.done;
    }
    if (existing) return undefined;
    const read: Read = {};
    this.reads.set(key, read);
    void this.read(namespace, pod, limitBytes)
      .then((output) => { read.done = output; }, (error: unknown) => { read.done = { ok: false, error: error instanceof Error ? error.message : String(error) }; })
      .finally(onDone);
    return undefined;
  }

  /** Drops what was read for a pod whose result is journaled, or for all of a run's pods. */
  forget(runUid: string, pod?: string): void {
    if (pod !== undefined) { this.reads.delete(`${runUid}/${pod}`); return; }
    for (const key of this.reads.keys()) if (key.startsWith(`${runUid}/`)) this.reads.delete(key);
  }

  /** Reads in flight or done and not yet forgotten (for tests and metrics). */
  get size(): number { return this.reads.size; }
}
