import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.ts';
import { WorkQueue } from '../../src/controller/workqueue.ts';

const PENDING = Symbol('pending');

/** The value of a promise if it has already settled, else PENDING (no waiting involved). */
function peek<T>(promise: Promise<T>): Promise<T | typeof PENDING> {
  return Promise.race([promise, Promise.resolve(PENDING)]);
}

function setup(options: { baseDelayMs?: number; maxDelayMs?: number } = {}) {
  const clock = new ManualClock();
  const queue = new WorkQueue({ ...options, clock });
  return { clock, queue };
}

/** Takes every ready key, marking each done. */
async function drainReady(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.length > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    keys.push(key);
    queue.done(key);
  }
  return keys;
}

describe('WorkQueue', () => {
  it('hands out a key added several times once, in first-added order', async () => {
    const { queue } = setup();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    expect(queue.length).toBe(2);
    expect(await drainReady(queue)).toEqual(['ns/a', 'ns/b']);
  });

  it('wakes a waiting get() when a key is added', async () => {
    const { queue } = setup();
    const waiting = queue.get();
    expect(await peek(waiting)).toBe(PENDING);
    queue.add('ns/a');
    expect(await waiting).toBe('ns/a');
  });

  it('never hands a key being processed to a second worker, and requeues it on done() if it was added meanwhile', async () => {
    const { queue } = setup();
    queue.add('ns/a');
    expect(await queue.get()).toBe('ns/a');

    const secondWorker = queue.get();
    queue.add('ns/a');
    queue.add('ns/a');
    expect(queue.length).toBe(0);
    expect(await peek(secondWorker)).toBe(PENDING);

    queue.done('ns/a');
    expect(await secondWorker).toBe('ns/a');
    queue.done('ns/a');
    expect(queue.length).toBe(0);
  });

  it('does not requeue a processed key that was not added again', async () => {
    const { queue } = setup();
    queue.add('ns/a');
    expect(await queue.get()).toBe('ns/a');
    queue.done('ns/a');
    expect(queue.length).toBe(0);
  });

  it('releases delayed keys when their time comes, earliest first', async () => {
    const { clock, queue } = setup();
    queue.addAfter('ns/late', 100);
    queue.addAfter('ns/early', 50);
    queue.addAfter('ns/middle', 75);
    expect(queue.length).toBe(0);

    clock.advance(49);
    expect(queue.length).toBe(0);
    clock.advance(1);
    expect(await drainReady(queue)).toEqual(['ns/early']);
    clock.advance(50);
    expect(await drainReady(queue)).toEqual(['ns/middle', 'ns/late']);
    expect(clock.pendingTimers).toBe(0);
  });

  it('releases keys that became due together in order of their due time, even when the timer fires late', async () => {
    let now = 0;
    let fire: (() => void) | undefined;
    const lateClock = {
      now: () => now,
      setTimeout: (callback: () => void) => { fire = callback; return 1; },
      clearTimeout: () => { fire = undefined; },
    };
    const queue = new WorkQueue({ clock: lateClock });
    queue.addAfter('ns/late', 100);
    queue.addAfter('ns/early', 50);
    now = 500; // the event loop was busy: the timer for 50 ms fires at 500 ms
    fire?.();
    expect(await drainReady(queue)).toEqual(['ns/early', 'ns/late']);
  });

  it('keeps the earlier time when a waiting key is added again with a delay', async () => {
    const { clock, queue } = setup();
    queue.addAfter('ns/a', 100);
    queue.addAfter('ns/a', 10);
    clock.advance(10);
    expect(await drainReady(queue)).toEqual(['ns/a']);

    queue.addAfter('ns/b', 10);
    queue.addAfter('ns/b', 100);
    clock.advance(10);
    expect(await drainReady(queue)).toEqual(['ns/b']);
    clock.advance(1000);
    expect(queue.length).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('adds at once when the delay is zero or negative, and refuses NaN and infinite delays', () => {
    const { queue } = setup();
    queue.addAfter('ns/a', 0);
    queue.addAfter('ns/b', -5);
    expect(queue.length).toBe(2);
    expect(() => { queue.addAfter('ns/c', Number.NaN); }).toThrow(RangeError);
    expect(() => { queue.addAfter('ns/c', Number.POSITIVE_INFINITY); }).toThrow(RangeError);
  });

  it('caps the timer of a very long delay at what Node supports and still releases the key on time', async () => {
    const { clock, queue } = setup();
    const thirtyDays = 30 * 24 * 3600_000;
    // ManualClock throws on delays above 2^31-1 ms, as Node would silently fire them after 1 ms.
    queue.addAfter('ns/a', thirtyDays);
    clock.advance(thirtyDays - 1);
    expect(queue.length).toBe(0);
    clock.advance(1);
    expect(await drainReady(queue)).toEqual(['ns/a']);
  });

  it('backs off a rate-limited key exponentially up to the cap, and forget() resets it', async () => {
    const { clock, queue } = setup({ baseDelayMs: 5, maxDelayMs: 40 });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const delay = queue.addRateLimited('ns/a');
      delays.push(delay);
      clock.advance(delay - 1);
      expect(queue.length, `attempt ${i} released early`).toBe(0);
      clock.advance(1);
      expect(await drainReady(queue)).toEqual(['ns/a']);
    }
    expect(delays).toEqual([5, 10, 20, 40, 40, 40]);
    expect(queue.numRequeues('ns/a')).toBe(6);
    expect(queue.addRateLimited('ns/b')).toBe(5);

    queue.forget('ns/a');
    expect(queue.numRequeues('ns/a')).toBe(0);
    expect(queue.addRateLimited('ns/a')).toBe(5);
  });

  it('shutDown() discards queued and delayed keys, cancels its timer and ignores later adds', async () => {
    const { clock, queue } = setup();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.addAfter('ns/c', 100);
    expect(clock.pendingTimers).toBe(1);

    queue.shutDown();
    expect(queue.isShuttingDown).toBe(true);
    expect(queue.length).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(await queue.get()).toBeUndefined();

    queue.add('ns/d');
    queue.addAfter('ns/e', 10);
    queue.addRateLimited('ns/f');
    expect(queue.length).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(1000);
    expect(await queue.get()).toBeUndefined();
  });

  it('shutDown() releases workers waiting in get() with undefined', async () => {
    const { queue } = setup();
    const first = queue.get();
    const second = queue.get();
    queue.shutDown();
    expect(await first).toBeUndefined();
    expect(await second).toBeUndefined();
  });

  it('shutDown() does not requeue a key that was added again while processing', async () => {
    const { queue } = setup();
    queue.add('ns/a');
    expect(await queue.get()).toBe('ns/a');
    queue.add('ns/a');
    queue.shutDown();
    queue.done('ns/a');
    expect(queue.length).toBe(0);
  });

  it('shutDownWithDrain() resolves only when every key handed out is done', async () => {
    const { queue } = setup();
    queue.add('ns/a');
    queue.add('ns/b');
    const a = await queue.get();
    const b = await queue.get();
    expect([a, b]).toEqual(['ns/a', 'ns/b']);

    const drained = queue.shutDownWithDrain();
    queue.done('ns/a');
    expect(await peek(drained)).toBe(PENDING);
    queue.done('ns/b');
    expect(await peek(drained)).toBeUndefined();
    await expect(queue.shutDownWithDrain()).resolves.toBeUndefined();
  });

  it('refuses a base delay of zero or above the cap', () => {
    expect(() => new WorkQueue({ baseDelayMs: 0 })).toThrow(RangeError);
    expect(() => new WorkQueue({ baseDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
  });
});
