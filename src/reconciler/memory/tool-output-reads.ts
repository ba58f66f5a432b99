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
import type { ToolOutputObservation } from '../../core/observed.ts';
import { describeError } from '../../port-errors.ts';
import type { PodClient } from '../../ports.ts';
import { startOnce } from './in-flight.ts';
import { RunMemory, type RunState } from './run-memory.ts';

/** Default bound on outputs read or held at once (24 MiB at the largest maxToolOutputBytes). */
export const DEFAULT_MAX_HELD_OUTPUTS = 32;
/** Default bound on one run's share of them. */
export const DEFAULT_MAX_HELD_PER_RUN = 8;

type Reader = (namespace: string, pod: string, limitBytes: number) => Promise<ToolOutputObservation>;

/** Reads ended tool pods' logs once each, bounded in number, keeping outputs in the run's memory. */
export class ToolOutputReads {
  private readonly read: Reader;
  private readonly maxHeld: number;
  private readonly maxPerRun: number;
  private readonly memory: RunMemory;
  /** Arrival order of waiting reads, across runs. */
  private seq = 0;

  constructor(
    read: Reader,
    maxHeld = DEFAULT_MAX_HELD_OUTPUTS,
    maxPerRun = DEFAULT_MAX_HELD_PER_RUN,
    memory = new RunMemory(),
  ) {
    this.read = read;
    this.maxHeld = maxHeld;
    this.maxPerRun = maxPerRun;
    this.memory = memory;
    // A forgotten run frees what it held.
    memory.onForget(() => {
      this.startWaiting();
    });
  }

  /**
   * The pod's output once read; otherwise starts a read (at most one per pod) that calls `onDone`
   * when it ends, and returns undefined. A failed read is reported once, then read again when
   * asked next.
   */
  observe(
    runUid: string,
    namespace: string,
    pod: string,
    limitBytes: number,
    onDone: () => void,
  ): ToolOutputObservation | undefined {
    const run = this.memory.of(runUid);
    const existing = run.toolOutputs.get(pod);
    if (existing?.done) {
      if (existing.outcome?.ok === false) {
        run.toolOutputs.delete(pod);
        this.startWaiting();
      }
      return existing.outcome;
    }
    if (existing) return undefined;
    if (!this.hasRoomFor(run)) {
      // Its run is enqueued when the read has been made (onDone).
      if (!run.waitingReads.has(pod)) run.waitingReads.set(pod, { seq: this.seq++, namespace, limitBytes, onDone });
      return undefined;
    }
    run.waitingReads.delete(pod);
    this.start(run, pod, namespace, limitBytes, onDone);
    return undefined;
  }

  /** Drops what was read for a pod whose result is journaled (a whole run: RunMemory.forget). */
  forget(runUid: string, pod: string): void {
    const run = this.memory.peek(runUid);
    run?.toolOutputs.delete(pod);
    run?.waitingReads.delete(pod);
    this.startWaiting();
  }

  private start(run: RunState, pod: string, namespace: string, limitBytes: number, onDone: () => void): void {
    startOnce(run.toolOutputs, pod, 0, undefined, async () => {
      try {
        return await this.read(namespace, pod, limitBytes);
      } catch (error) {
        return { ok: false, error: describeError(error) };
      }
    }, onDone);
  }

  /** Starts waiting reads, oldest first, while there is room (a run at its share is skipped). */
  private startWaiting(): void {
    const waiting = [...this.memory.all()].flatMap((run) => [...run.waitingReads].map(([pod, w]) => ({ run, pod, w })));
    waiting.sort((a, b) => a.w.seq - b.w.seq);
    for (const { run, pod, w } of waiting) {
      if (this.size >= this.maxHeld) return;
      if (!this.hasRoomFor(run)) continue;
      run.waitingReads.delete(pod);
      this.start(run, pod, w.namespace, w.limitBytes, w.onDone);
    }
  }

  private hasRoomFor(run: RunState): boolean {
    return this.size < this.maxHeld && run.toolOutputs.size < this.maxPerRun;
  }

  /** Reads in flight or done and not yet forgotten, across runs (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const run of this.memory.all()) n += run.toolOutputs.size;
    return n;
  }
}

/** Reads a tool pod's log (container `tool`) as an observation: the text, or what went wrong. */
export function podLogReader(pods: Pick<PodClient, 'readLog'>): Reader {
  return async (namespace, pod, limitBytes) => {
    try {
      const { text, truncated } = await pods.readLog(namespace, pod, 'tool', limitBytes);
      return { ok: true, text, truncated };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  };
}
