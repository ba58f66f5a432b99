/**
 * CoalescingWriter: collapses bursts of pod status changes into few API writes.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { RETRY_MS } from './constants.ts';
import { sleep } from './util.ts';

/**
 * Collapses bursts of status changes into few writes: one write in flight per pod, and at most
 * one more queued, which writes whatever the state is by then. Failed writes are retried.
 */
export class CoalescingWriter {
  private readonly write: () => Promise<boolean>;
  private readonly onError: (error: unknown) => void;
  private readonly track: (task: Promise<unknown>, what: string) => void;
  private readonly closer = new AbortController();
  private pending = false;
  private draining: Promise<void> | undefined;

  /** `write` returns false when the object is gone, which closes the writer. */
  constructor(write: () => Promise<boolean>, onError: (error: unknown) => void, track: (task: Promise<unknown>, what: string) => void) {
    this.write = write;
    this.onError = onError;
    this.track = track;
  }

  request(): void {
    if (this.closer.signal.aborted) return;
    this.pending = true;
    if (this.draining) return;
    this.draining = this.drain();
    this.track(this.draining, 'pod status writer');
  }

  /** Resolves once every requested write happened (or the writer was closed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  close(): void {
    this.closer.abort();
  }

  private async drain(): Promise<void> {
    try {
      await delay(0); // changes made in the same turn go out in one write
      while (this.pending && !this.closer.signal.aborted) {
        this.pending = false;
        try {
          if (!await this.write()) this.close();
        } catch (error) {
          this.onError(error);
          this.pending = true;
          await sleep(RETRY_MS, this.closer.signal);
        }
      }
    } finally {
      // Reset in the same turn as the last `pending` check, so that no request() can be lost.
      this.draining = undefined;
    }
  }
}
