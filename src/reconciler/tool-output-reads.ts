/**
 * Reads the logs of ended tool pods off the reconcile path. A log read goes through the apiserver
 * to the kubelet and can take hundreds of ms under load; done inline it held a worker that long
 * (43 % of all worker time at 200 concurrent runs). Like a model call, a read runs on its own and
 * enqueues its run when it is done; decide() sees "no observation yet" and waits.
 *
 * An output stays in memory from its read until its result is journaled, and each may be
 * limits.maxToolOutputBytes (768 KiB): at most `maxHeld` are read or held at once, so runs with
 * 32 parallel tools cannot fill the operator's memory, and one run holds at most `maxPerRun` of
 * them, so its burst cannot make every other run's reads wait. Further reads wait in arrival order.
 */
import type { ToolOutputObservation } from '../core/observed.ts';
import type { PodClient } from '../ports.ts';
import { describeApiError } from '../adapters/kube/errors.ts';

interface Read { done?: ToolOutputObservation }
interface Waiting { namespace: string; pod: string; limitBytes: number; onDone: () => void }

/** Default bound on outputs read or held at once (24 MiB at the largest maxToolOutputBytes). */
export const DEFAULT_MAX_HELD_OUTPUTS = 32;
/** Default bound on one run's share of them. */
export const DEFAULT_MAX_HELD_PER_RUN = 8;

export class ToolOutputReads {
  private readonly reads = new Map<string, Read>();
  private readonly waiting = new Map<string, Waiting>();
  private readonly read: (namespace: string, pod: string, limitBytes: number) => Promise<ToolOutputObservation>;
  private readonly maxHeld: number;
  private readonly maxPerRun: number;

  constructor(read: (namespace: string, pod: string, limitBytes: number) => Promise<ToolOutputObservation>, maxHeld = DEFAULT_MAX_HELD_OUTPUTS, maxPerRun = DEFAULT_MAX_HELD_PER_RUN) {
    this.read = read;
    this.maxHeld = maxHeld;
    this.maxPerRun = maxPerRun;
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
      if (!existing.done.ok) { this.reads.delete(key); this.startWaiting(); }
      return existing.done;
    }
    if (existing) return undefined;
    if (!this.hasRoomFor(runUid)) {
      // Its run is enqueued when the read has been made (onDone).
      if (!this.waiting.has(key)) this.waiting.set(key, { namespace, pod, limitBytes, onDone });
      return undefined;
    }
    this.start(key, { namespace, pod, limitBytes, onDone });
    return undefined;
  }

  /** Drops what was read for a pod whose result is journaled, or for all of a run's pods. */
  forget(runUid: string, pod?: string): void {
    if (pod !== undefined) {
      this.reads.delete(`${runUid}/${pod}`);
      this.waiting.delete(`${runUid}/${pod}`);
    } else {
      for (const key of this.reads.keys()) if (key.startsWith(`${runUid}/`)) this.reads.delete(key);
      for (const key of this.waiting.keys()) if (key.startsWith(`${runUid}/`)) this.waiting.delete(key);
    }
    this.startWaiting();
  }

  private start(key: string, w: Waiting): void {
    const read: Read = {};
    this.reads.set(key, read);
    void this.read(w.namespace, w.pod, w.limitBytes)
      .then((output) => { read.done = output; }, (error: unknown) => { read.done = { ok: false, error: error instanceof Error ? error.message : String(error) }; })
      .finally(w.onDone);
  }

  /** Starts waiting reads, oldest first, while there is room (a run at its share is skipped). */
  private startWaiting(): void {
    for (const [key, w] of this.waiting) {
      if (this.reads.size >= this.maxHeld) return;
      if (!this.hasRoomFor(key.slice(0, key.indexOf('/')))) continue;
      this.waiting.delete(key);
      this.start(key, w);
    }
  }

  private hasRoomFor(runUid: string): boolean {
    if (this.reads.size >= this.maxHeld) return false;
    let held = 0;
    for (const key of this.reads.keys()) if (key.startsWith(`${runUid}/`) && ++held >= this.maxPerRun) return false;
    return true;
  }

  /** Reads in flight or done and not yet forgotten (for tests and metrics). */
  get size(): number { return this.reads.size; }
}

/** Reads a tool pod's log (container `tool`) as an observation: the text, or what went wrong. */
export function podLogReader(pods: Pick<PodClient, 'readLog'>): (namespace: string, pod: string, limitBytes: number) => Promise<ToolOutputObservation> {
  return async (namespace, pod, limitBytes) => {
    try {
      const { text, truncated } = await pods.readLog(namespace, pod, 'tool', limitBytes);
      return { ok: true, text, truncated };
    } catch (error) {
      return { ok: false, error: describeApiError(error) };
    }
  };
}
