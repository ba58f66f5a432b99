/**
 * The Lease protocol of LeaderElector against an in-memory lease with real compare-and-swap
 * semantics, on a manual clock: acquisition, renewal, expiry takeover, release, losing the lease.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.ts';
import { LeaderElector, type LeaseLock, type LeaseRecord, type ObservedLease } from '../../src/controller/leader-election.ts';
import { silentLogger } from '../../src/controller/logger.ts';

class Store {
  lease: ObservedLease | undefined;
  private rv = 0;
  writes = 0;
  put(record: LeaseRecord): string {
    this.rv++;
    this.writes++;
    this.lease = { record, resourceVersion: String(this.rv) };
    return String(this.rv);
  }
}

/** One process's view of the store; `mode` simulates a partition (fail) or a hung apiserver (hang). */
class MemoryLock implements LeaseLock {
  readonly description = 'test/lease';
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  private readonly store: Store;
  constructor(store: Store) { this.store = store; }

  private gate(): Promise<void> {
    if (this.mode === 'fail') return Promise.reject(new Error('connection refused'));
    if (this.mode === 'hang') return new Promise(() => undefined);
    return Promise.resolve();
  }

  async get(): Promise<ObservedLease | undefined> {
    await this.gate();
    return this.store.lease && { ...this.store.lease, record: { ...this.store.lease.record } };
  }

  async create(record: LeaseRecord): Promise<string> {
    await this.gate();
    if (this.store.lease) throw Object.assign(new Error('AlreadyExists'), { code: 409 });
    return this.store.put(record);
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<string> {
    await this.gate();
    if (this.store.lease?.resourceVersion !== resourceVersion) throw Object.assign(new Error('Conflict'), { code: 409 });
    return this.store.put(record);
  }
}

interface Candidate {
  readonly elector: LeaderElector;
  readonly lock: MemoryLock;
  readonly events: string[];
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function harness() {
  const clock = new ManualClock(1_000_000);
  const store = new Store();
  const timeline: { at: number; what: string }[] = [];
  const candidate = (identity: string, options: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number } = {}): Candidate => {
    const lock = new MemoryLock(store);
    const events: string[] = [];
    const elector = new LeaderElector({
      lock, identity, log: silentLogger, clock, random: () => 0.5,
      wallClock: () => new Date(clock.now()),
      ...options,
      onStartedLeading: () => { events.push('started'); timeline.push({ at: clock.now(), what: `${identity} started` }); },
      onStoppedLeading: (reason) => { events.push(`stopped: ${reason}`); timeline.push({ at: clock.now(), what: `${identity} stopped` }); },
    });
    return { elector, lock, events };
  };
  /** Moves time in 50 ms steps, letting the promises of each step settle. */
  const advance = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(Math.min(50, ms - t));
      for (let i = 0; i < 5; i++) await settle();
    }
  };
  return { clock, store, timeline, candidate, advance };
}

describe('LeaderElector', () => {
  it('creates a missing lease, leads, and renews it every retry period', async () => {
    const h = harness();
    const a = h.candidate('a');
    a.elector.start();
    await h.advance(0);
    await h.advance(50);
    expect(a.events).toEqual(['started']);
    expect(a.elector.isLeader()).toBe(true);
    expect(h.store.lease?.record).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const writes = h.store.writes;
    await h.advance(10_000);
    // A renewal every 2 s.
    expect(h.store.writes - writes).toBeGreaterThanOrEqual(4);
    expect(h.store.writes - writes).toBeLessThanOrEqual(5);
    expect(h.store.lease?.record.renewTime?.getTime()).toBeGreaterThan(1_000_000 + 8_000);
    expect(a.elector.isLeader()).toBe(true);
  });

  it('a standby waits while the leader renews, and takes over only after the lease expires on its own clock', async () => {
    const h = harness();
    const a = h.candidate('a');
    const b = h.candidate('b');
    a.elector.start();
    await h.advance(100);
    b.elector.start();
    await h.advance(30_000);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.leader()).toBe('a');

    // The leader is cut off from the apiserver (a partition, or a SIGKILL as far as the lease goes).
    a.lock.mode = 'fail';
    const cutAt = h.clock.now();
    await h.advance(30_000);
    const aStopped = h.timeline.find((e) => e.what === 'a stopped');
    const bStarted = h.timeline.find((e) => e.what === 'b started');
    expect(aStopped, 'the old leader gives up').toBeDefined();
    expect(bStarted, 'the standby takes over').toBeDefined();
    // The old leader stops within the renew deadline of its last renewal; the standby starts no
    // earlier than a lease duration after the last renewal it saw: never two leaders at once.
    expect((aStopped?.at ?? 0) - cutAt).toBeLessThanOrEqual(10_000);
    expect(bStarted?.at ?? 0).toBeGreaterThan(aStopped?.at ?? Infinity);
    expect((bStarted?.at ?? 0) - cutAt).toBeGreaterThanOrEqual(13_000);
    expect((bStarted?.at ?? 0) - cutAt).toBeLessThanOrEqual(15_000 + 2 * 2_000 * 2.2);
    expect(a.events).toEqual(['started', expect.stringContaining('renew deadline')]);
    expect(h.store.lease?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('a hung request counts as a failed renewal: the watchdog ends leadership at the renew deadline', async () => {
    const h = harness();
    const a = h.candidate('a');
    a.elector.start();
    await h.advance(100);
    a.lock.mode = 'hang';
    const hungAt = h.clock.now();
    await h.advance(12_000);
    const stopped = h.timeline.find((e) => e.what === 'a stopped');
    expect(stopped).toBeDefined();
    expect((stopped?.at ?? 0) - hungAt).toBeLessThanOrEqual(10_000);
    expect(a.elector.isLeader()).toBe(false);
  });

  it('release() hands the lease over at once instead of after the lease duration', async () => {
    const h = harness();
    const a = h.candidate('a');
    const b = h.candidate('b');
    a.elector.start();
    await h.advance(100);
    b.elector.start();
    await h.advance(5_000);
    const releasedAt = h.clock.now();
    await a.elector.release();
    expect(h.store.lease?.record.holderIdentity).toBe('');
    await h.advance(6_000);
    const bStarted = h.timeline.find((e) => e.what === 'b started');
    expect(bStarted).toBeDefined();
    // The next acquire attempt, at most 2.2 retry periods later, not 15 s.
    expect((bStarted?.at ?? 0) - releasedAt).toBeLessThanOrEqual(2_000 * 2.2 + 100);
    // Releasing is not losing: no onStoppedLeading.
    expect(a.events).toEqual(['started']);
  });

  it('steps down as soon as it sees another holder, without waiting for the deadline', async () => {
    const h = harness();
    const a = h.candidate('a');
    a.elector.start();
    await h.advance(100);
    // Someone rewrites the lease (e.g. an admin, or a replica that saw it expire during a long pause).
    const current = h.store.lease;
    if (!current) throw new Error('no lease');
    h.store.put({ ...current.record, holderIdentity: 'intruder', leaseTransitions: current.record.leaseTransitions + 1 });
    const at = h.clock.now();
    await h.advance(5_000);
    const stopped = h.timeline.find((e) => e.what === 'a stopped');
    expect((stopped?.at ?? Infinity) - at).toBeLessThanOrEqual(2_100);
    expect(a.events[1]).toContain('now held by intruder');
  });

  it('of two candidates racing for a free lease exactly one wins (compare-and-swap)', async () => {
    const h = harness();
    const a = h.candidate('a');
    const b = h.candidate('b');
    a.elector.start();
    b.elector.start();
    await h.advance(10_000);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(h.timeline.filter((e) => e.what.endsWith('started'))).toHaveLength(1);
  });

  it('refuses durations that cannot keep a single leader', () => {
    const lock = new MemoryLock(new Store());
    const base = { lock, identity: 'x', log: silentLogger, onStartedLeading: () => undefined, onStoppedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(/greater than the renew deadline/);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/retry period/);
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow(/identity/);
  });
});
