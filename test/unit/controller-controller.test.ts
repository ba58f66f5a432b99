import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.ts';
import { Controller, type ReconcileOutcome, type ReconcileResult } from '../../src/controller/controller.ts';
import { ConflictError, RequeueError, TerminalError } from '../../src/controller/errors.ts';
import type { Logger } from '../../src/controller/logger.ts';

const PENDING = Symbol('pending');

/** The value of a promise if it has already settled, else PENDING (no waiting involved). */
function peek<T>(promise: Promise<T>): Promise<T | typeof PENDING> {
  return Promise.race([promise, Promise.resolve(PENDING)]);
}

/** Lets every queued promise callback run; no time passes. Used to show that nothing else happens. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** An async FIFO: `push` values, `next()` waits for the next one. */
class Channel<T> {
  readonly items: T[] = [];
  private taken = 0;
  private waiter: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.waiter?.();
  }

  async next(): Promise<T> {
    while (this.taken >= this.items.length) await new Promise<void>((resolve) => { this.waiter = resolve; });
    return this.items[this.taken++] as T;
  }
}

interface Call {
  readonly key: string;
  readonly signal: AbortSignal;
  resolve(result?: ReconcileResult): void;
  reject(err: Error): void;
}

interface LogLine {
  readonly level: keyof Logger;
  readonly fields: object;
  readonly msg: string;
}

function setup(options: { workers?: number } = {}) {
  const clock = new ManualClock();
  const calls = new Channel<Call>();
  const outcomes = new Channel<[string, ReconcileOutcome, number]>();
  const lines: LogLine[] = [];
  const record = (level: keyof Logger) => (fields: object, msg: string) => { lines.push({ level, fields, msg }); };
  const log: Logger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
  let active = 0;
  let maxActive = 0;
  const controller = new Controller({
    name: 'test',
    workers: options.workers ?? 1,
    queue: { baseDelayMs: 100, maxDelayMs: 1000 },
    clock,
    log,
    reconcile: (key, signal) => new Promise<ReconcileResult>((resolve, reject) => {
      active++;
      maxActive = Math.max(maxActive, active);
      const finish = () => { active--; };
      calls.push({
        key,
        signal,
        resolve: (result) => { finish(); resolve(result); },
        reject: (err) => { finish(); reject(err); },
      });
    }),
    onReconcileDone: (key, durationMs, outcome) => { outcomes.push([key, outcome, durationMs]); },
  });
  return { clock, calls, outcomes, lines, controller, maxActive: () => maxActive };
}

describe('Controller', () => {
  it('reconciles keys enqueued before start and reports success with the duration', async () => {
    const { clock, calls, outcomes, controller } = setup();
    controller.enqueue('ns/a');
    expect(controller.queueDepth()).toBe(1);
    controller.start();

    const call = await calls.next();
    expect(call.key).toBe('ns/a');
    expect(controller.queueDepth()).toBe(0);
    clock.advance(7);
    call.resolve();
    expect(await outcomes.next()).toEqual(['ns/a', 'success', 7]);
    await settle();
    expect(calls.items).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('retries a failing key with exponential backoff and resets the backoff after a success', async () => {
    const { clock, calls, outcomes, lines, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();

    (await calls.next()).reject(new Error('apiserver unavailable'));
    expect((await outcomes.next())[1]).toBe('error');
    expect(lines.find((l) => l.msg === 'reconcile failed; retrying with backoff')?.fields)
      .toMatchObject({ controller: 'test', key: 'ns/a', retryInMs: 100, failures: 1 });
    clock.advance(99);
    await settle();
    expect(calls.items).toHaveLength(1);
    clock.advance(1);

    (await calls.next()).reject(new Error('still unavailable'));
    await outcomes.next();
    clock.advance(199);
    await settle();
    expect(calls.items).toHaveLength(2);
    clock.advance(1);

    (await calls.next()).resolve();
    expect((await outcomes.next())[1]).toBe('success');

    controller.enqueue('ns/a');
    (await calls.next()).reject(new Error('failed again'));
    await outcomes.next();
    clock.advance(100);
    expect((await calls.next()).key).toBe('ns/a');
  });

  it('does not requeue a key whose reconcile throws a TerminalError', async () => {
    const { clock, calls, outcomes, lines, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();

    (await calls.next()).reject(new TerminalError('spec.model is not supported'));
    expect((await outcomes.next())[1]).toBe('terminal');
    expect(clock.pendingTimers).toBe(0);
    clock.advance(3600_000);
    await settle();
    expect(calls.items).toHaveLength(1);
    expect(lines.some((l) => l.level === 'error' && l.msg === 'reconcile failed permanently; not requeueing')).toBe(true);
  });

  it('reconciles again after requeueAfterMs', async () => {
    const { clock, calls, outcomes, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();

    (await calls.next()).resolve({ requeueAfterMs: 500 });
    expect((await outcomes.next())[1]).toBe('requeue');
    clock.advance(499);
    await settle();
    expect(calls.items).toHaveLength(1);
    clock.advance(1);
    expect((await calls.next()).key).toBe('ns/a');
  });

  it('requeues a ConflictError at once and a RequeueError after its retryAfterMs, without backoff', async () => {
    const { clock, calls, outcomes, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();

    (await calls.next()).reject(new ConflictError('resourceVersion changed'));
    expect((await outcomes.next())[1]).toBe('requeue');
    (await calls.next()).reject(new RequeueError('rate limited by upstream', { retryAfterMs: 250 }));
    expect((await outcomes.next())[1]).toBe('requeue');
    clock.advance(249);
    await settle();
    expect(calls.items).toHaveLength(2);
    clock.advance(1);
    // A plain error now gets the first backoff step: the requeues above did not count as failures.
    (await calls.next()).reject(new Error('boom'));
    await outcomes.next();
    clock.advance(100);
    expect((await calls.next()).key).toBe('ns/a');
  });

  it('treats an invalid requeueAfterMs as an error instead of spinning', async () => {
    const { calls, outcomes, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();
    (await calls.next()).resolve({ requeueAfterMs: Number.NaN });
    expect((await outcomes.next())[1]).toBe('error');
    await settle();
    expect(calls.items).toHaveLength(1);
  });

  it('never reconciles one key on two workers at once, but reconciles different keys in parallel', async () => {
    const { calls, outcomes, controller, maxActive } = setup({ workers: 3 });
    controller.start();
    controller.enqueue('ns/a');
    controller.enqueue('ns/b');
    const first = await calls.next();
    const second = await calls.next();
    expect([first.key, second.key]).toEqual(['ns/a', 'ns/b']);
    expect(maxActive()).toBe(2);

    controller.enqueue('ns/a');
    controller.enqueue('ns/a');
    await settle();
    expect(calls.items).toHaveLength(2);
    first.resolve();
    const again = await calls.next();
    expect(again.key).toBe('ns/a');
    again.resolve();
    second.resolve();
    await outcomes.next();
    await outcomes.next();
    await outcomes.next();
    await settle();
    expect(calls.items).toHaveLength(3);
  });

  it('stop() waits for the in-flight reconcile, takes no new keys and leaves no timers', async () => {
    const { clock, calls, outcomes, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();
    const call = await calls.next();

    const stopped = controller.stop({ drainTimeoutMs: 1000 });
    controller.enqueue('ns/b');
    controller.enqueueAfter('ns/c', 10);
    await settle();
    expect(await peek(stopped)).toBe(PENDING);

    call.resolve({ requeueAfterMs: 10 });
    await stopped;
    expect(call.signal.aborted).toBe(false);
    expect(outcomes.items.map(([key, outcome]) => [key, outcome])).toEqual([['ns/a', 'requeue']]);
    clock.advance(1000);
    await settle();
    expect(calls.items).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
    expect(controller.stop()).toBe(stopped);
  });

  it('stop() aborts the reconcile signal when the drain timeout expires', async () => {
    const { clock, calls, outcomes, lines, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();
    const call = await calls.next();
    call.signal.addEventListener('abort', () => { call.reject(new Error('aborted')); });

    const stopped = controller.stop({ drainTimeoutMs: 1000 });
    clock.advance(999);
    await settle();
    expect(call.signal.aborted).toBe(false);
    expect(await peek(stopped)).toBe(PENDING);

    clock.advance(1);
    await stopped;
    expect(call.signal.aborted).toBe(true);
    expect((await outcomes.next())[1]).toBe('error');
    expect(lines.map((l) => l.msg)).toContain('drain timeout expired; aborting in-flight reconciles');
    expect(clock.pendingTimers).toBe(0);
  });

  it('drops keys waiting for a backoff retry when stopped', async () => {
    const { clock, calls, outcomes, controller } = setup();
    controller.enqueue('ns/a');
    controller.start();
    (await calls.next()).reject(new Error('boom'));
    await outcomes.next();
    expect(clock.pendingTimers).toBe(1);
    await controller.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('cannot be started twice or after stop', async () => {
    const { controller } = setup();
    controller.start();
    expect(() => { controller.start(); }).toThrow(/already started or stopped/);
    await controller.stop();
    expect(() => { controller.start(); }).toThrow(/already started or stopped/);
  });
});
