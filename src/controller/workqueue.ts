/**
 * A work queue of string keys with client-go's semantics: de-duplication, one worker per key at a
 * time, delayed and rate-limited re-adds, and shutdown.
 */
import { MAX_TIMER_DELAY_MS, realClock, type Clock, type TimerHandle } from './clock.ts';

/** Options of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** First delay of the per-key exponential backoff used by `addRateLimited` (default 100 ms). */
  readonly baseDelayMs?: number;
  /** Longest delay of that backoff (default 5 minutes). client-go uses 5 ms and 1000 s. */
  readonly maxDelayMs?: number;
  readonly clock?: Clock;
}

/** Default first delay of the per-key backoff. */
export const DEFAULT_BASE_DELAY_MS = 100;
/** Default longest delay of the per-key backoff. */
export const DEFAULT_MAX_DELAY_MS = 5 * 60_000;

type Getter = (key: string | undefined) => void;

/**
 * Queues string keys (usually `namespace/name`) for workers, with client-go's guarantees:
 *
 * - a key added several times before a worker takes it is handed out once;
 * - a key is never handed to two workers at once: adding a key that is being processed marks it
 *   dirty, and {@link WorkQueue.done} queues it again;
 * - {@link WorkQueue.addAfter} delays a key (the earliest pending time wins) and
 *   {@link WorkQueue.addRateLimited} delays it by a per-key exponential backoff until
 *   {@link WorkQueue.forget} resets it;
 * - keys are handed out in the order they became ready.
 *
 * Unlike client-go, {@link WorkQueue.shutDown} also discards queued and delayed keys: `get()`
 * returns `undefined` from then on. Queue contents are level-triggered state that informers rebuild
 * on the next start, so draining a backlog during shutdown would only delay it.
 *
 * Every key handed out by `get()` must be passed to `done()` exactly once, or it stays "processing"
 * and is never handed out again.
 */
export class WorkQueue {
  private readonly clock: Clock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  /** Keys ready for a worker, in order. Every key here is also in `dirty`. */
  private readonly ready: string[] = [];
  /** Keys that need processing: queued, or added again while processing. */
  private readonly dirty = new Set<string>();
  /** Keys handed to a worker and not yet done. */
  private readonly processing = new Set<string>();
  /** Delayed keys and the clock time at which they become ready. */
  private readonly delayed = new Map<string, number>();
  private delayTimer: { readonly handle: TimerHandle; readonly at: number } | undefined;
  /** Consecutive `addRateLimited` calls per key since its last `forget`. */
  private readonly failures = new Map<string, number>();
  /** Workers waiting in `get()`, oldest first. */
  private readonly getters: Getter[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    if (!(this.baseDelayMs > 0 && this.baseDelayMs <= this.maxDelayMs)) {
      throw new RangeError(`need 0 < baseDelayMs <= maxDelayMs, got ${this.baseDelayMs} and ${this.maxDelayMs}`);
    }
  }

  /** The number of keys ready for a worker (not counting delayed or processing keys). */
  get length(): number {
    return this.ready.length;
  }

  /** True once `shutDown` or `shutDownWithDrain` was called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Queues a key now; does nothing if it is already queued or the queue is shutting down. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done() will queue it
    this.makeReady(key);
  }

  /**
   * Queues a key after `delayMs` milliseconds (at once if `delayMs <= 0`). If the key is already
   * waiting, the earlier of the two times wins.
   *
   * @throws RangeError if `delayMs` is NaN or infinite.
   */
  addAfter(key: string, delayMs: number): void {
    if (!Number.isFinite(delayMs)) throw new RangeError(`delay must be a finite number of ms, got ${delayMs}`);
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined && pending <= at) return;
    this.delayed.set(key, at);
    if (this.delayTimer === undefined || at < this.delayTimer.at) this.armDelayTimer(at);
  }

  /**
   * Queues a key after its next backoff delay: `baseDelayMs * 2^n`, capped at `maxDelayMs`, where n
   * counts the calls since the key was last forgotten. Returns the delay used.
   */
  addRateLimited(key: string): number {
    const attempts = this.failures.get(key) ?? 0;
    this.failures.set(key, attempts + 1);
    const delayMs = Math.min(this.baseDelayMs * 2 ** attempts, this.maxDelayMs);
    this.addAfter(key, delayMs);
    return delayMs;
  }

  /** Resets the key's backoff; call it when the key was processed successfully. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times the key was rate-limited since it was last forgotten. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Waits for a key and marks it as processing; resolves to `undefined` once the queue shuts down.
   * The caller must call {@link WorkQueue.done} with the key when it has finished with it.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.ready.shift();
    if (key !== undefined) {
      this.startProcessing(key);
      return Promise.resolve(key);
    }
    return new Promise<string | undefined>((resolve) => this.getters.push(resolve));
  }

  /** Marks a key as processed; if it was added again meanwhile, queues it again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.shuttingDown) {
      if (this.processing.size === 0) { for (const resolve of this.drainWaiters.splice(0)) resolve(); }
      return;
    }
    if (this.dirty.has(key)) this.makeReady(key);
  }

  /**
   * Stops the queue: discards queued and delayed keys, ignores later adds, cancels its timer, and
   * makes every pending and future `get()` resolve to `undefined`. Idempotent.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.ready.length = 0;
    this.dirty.clear();
    this.delayed.clear();
    this.failures.clear();
    this.disarmDelayTimer();
    for (const resolve of this.getters.splice(0)) resolve(undefined);
  }

  /** Shuts the queue down like {@link WorkQueue.shutDown} and resolves once every key handed out is done. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private makeReady(key: string): void {
    const getter = this.getters.shift();
    if (getter === undefined) {
      this.ready.push(key);
      return;
    }
    this.startProcessing(key);
    getter(key);
  }

  private startProcessing(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
  }

  private armDelayTimer(at: number): void {
    this.disarmDelayTimer();
    // Capped because Node fires longer timeouts after 1 ms; releaseDueKeys re-arms for the rest.
    const delayMs = Math.min(Math.max(0, at - this.clock.now()), MAX_TIMER_DELAY_MS);
    const handle = this.clock.setTimeout(() => {
      this.delayTimer = undefined;
      this.releaseDueKeys();
    }, delayMs);
    this.delayTimer = { handle, at };
  }

  private disarmDelayTimer(): void {
    if (this.delayTimer === undefined) return;
    this.clock.clearTimeout(this.delayTimer.handle);
    this.delayTimer = undefined;
  }

  /** Queues the delayed keys whose time has come, earliest first, and re-arms for the next one. */
  private releaseDueKeys(): void {
    const now = this.clock.now();
    const due = [...this.delayed].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
    for (const [key] of due) {
      this.delayed.delete(key);
      this.add(key);
    }
    let next: number | undefined;
    for (const at of this.delayed.values()) if (next === undefined || at < next) next = at;
    if (next !== undefined) this.armDelayTimer(next);
  }
}
