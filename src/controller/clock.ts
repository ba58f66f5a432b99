/**
 * Time as the controller runtime sees it. Everything that waits takes a {@link Clock} so tests can
 * move time forward by hand instead of sleeping.
 */

/** An opaque timer handle (Node's Timeout object, or a number from a fake clock). */
export type TimerHandle = object | number;

/** Reads the time and schedules callbacks. */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences between two readings are meaningful. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Node's longest timer delay. Node fires a longer timeout after 1 ms instead, so code that can
 * schedule far ahead must cap its delays at this and check again when the timer fires.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * The process clock: `performance.now()` and the global timers.
 *
 * Monotonic on purpose: a wall-clock jump must not make a delayed key wait an hour or fire early.
 * The globals are looked up on every call so vitest fake timers still apply.
 */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => {
    clearTimeout(handle as NodeJS.Timeout | number);
  },
};

interface ManualTimer {
  readonly at: number;
  readonly callback: () => void;
}

/**
 * A clock that only moves when {@link ManualClock.advance} is called; for deterministic tests.
 *
 * It refuses delays that Node would silently shorten to 1 ms (see {@link MAX_TIMER_DELAY_MS}), so a
 * test catches that bug instead of hiding it.
 */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    if (!(delayMs <= MAX_TIMER_DELAY_MS)) {
      throw new RangeError(`timer delay ${delayMs} ms exceeds ${MAX_TIMER_DELAY_MS} ms; Node would fire it after 1 ms`);
    }
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + Math.max(0, delayMs), callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  /** The number of timers scheduled and not yet fired or cleared (for leak checks). */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order of due time (then creation), each with
   * `now()` equal to its due time. Timers scheduled by a callback fire too if they fall in the window.
   */
  advance(ms: number): void {
    const end = this.current + ms;
    for (;;) {
      const next = this.nextDue(end);
      if (next === undefined) break;
      const [id, timer] = next;
      this.timers.delete(id);
      this.current = Math.max(this.current, timer.at);
      timer.callback();
    }
    this.current = end;
  }

  private nextDue(end: number): [number, ManualTimer] | undefined {
    let best: [number, ManualTimer] | undefined;
    for (const entry of this.timers) {
      if (entry[1].at > end) continue;
      if (best === undefined || entry[1].at < best[1].at) best = entry;
    }
    return best;
  }
}
