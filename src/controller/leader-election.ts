/**
 * Leader election on a `coordination.k8s.io/v1` Lease, modelled on client-go's leaderelection
 * package, so that of several replicas exactly one runs the controllers.
 *
 * - **Acquire**: every `retryPeriod` a candidate reads the Lease. It creates it when missing, and
 *   takes it over when it is free (empty holder: the last leader released it) or expired. A lease
 *   is expired when this process has seen no change to it (its resourceVersion) for the lease's
 *   `leaseDurationSeconds`, measured on this process's own monotonic clock: like client-go, no
 *   clock comparison between machines is involved.
 * - **Renew**: the leader writes `renewTime` every `retryPeriod`. If no renewal succeeds for
 *   `renewDeadline` (a watchdog timer, so a hung request counts too), or the Lease shows another
 *   holder, leadership is lost: `onStoppedLeading` runs once and the caller is expected to exit,
 *   because a process that may have been replaced must not act again with what it has in memory.
 * - **Release**: on graceful shutdown the leader empties `holderIdentity`, so a standby takes over
 *   on its next try instead of waiting for the lease to expire.
 *
 * Every write is a compare-and-swap on the Lease's resourceVersion, so two candidates can never
 * both believe they acquired the same term. Knows nothing about agents.
 */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import type { Logger } from './logger.ts';

/** What a Lease says about its holder (the fields of `spec` leader election uses). */
export interface LeaseRecord {
  /** The leader; '' when nobody holds the lease (released). */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime?: Date;
  readonly renewTime?: Date;
  readonly leaseTransitions: number;
}

/** A lease as read, with the resourceVersion that makes the next write a compare-and-swap. */
export interface ObservedLease {
  readonly record: LeaseRecord;
  readonly resourceVersion: string;
}

/** Storage of one lease; {@link KubeLeaseLock} is the Kubernetes one, tests use an in-memory one. */
export interface LeaseLock {
  /** `namespace/name`, for logs. */
  readonly description: string;
  /** Reads the lease; undefined when it does not exist. */
  get(): Promise<ObservedLease | undefined>;
  /** Creates the lease; rejects when it exists already. Returns the new resourceVersion. */
  create(record: LeaseRecord): Promise<string>;
  /** Replaces the lease if it still has `resourceVersion`; rejects otherwise. Returns the new one. */
  update(record: LeaseRecord, resourceVersion: string): Promise<string>;
}

/** Options of a {@link LeaderElector}; the durations default to client-go's. */
export interface LeaderElectorOptions {
  readonly lock: LeaseLock;
  /** This candidate's identity; unique per process (e.g. pod name + a random suffix). */
  readonly identity: string;
  /** How long a lease is valid after its last observed change (default 15 s). */
  readonly leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up leadership (default 10 s). */
  readonly renewDeadlineMs?: number;
  /** How often candidates try to acquire and the leader renews (default 2 s). */
  readonly retryPeriodMs?: number;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Wall-clock time written into acquireTime/renewTime (for humans and other tools). */
  readonly wallClock?: () => Date;
  /** Randomises the acquire period like client-go's jitter; returns a factor in [0, 1). */
  readonly random?: () => number;
  /** Called once when this process becomes the leader. */
  readonly onStartedLeading: () => void;
  /** Called once when this process, having led, lost the lease (not after {@link LeaderElector.release}). */
  readonly onStoppedLeading: (reason: string) => void;
  /** Called when the observed leader changes ('' when the lease is free). */
  readonly onNewLeader?: (identity: string) => void;
}

/** client-go's defaults: take over 15 s after the last renewal, give up renewing after 10 s, try every 2 s. */
export const DEFAULT_LEASE_DURATION_MS = 15_000, DEFAULT_RENEW_DEADLINE_MS = 10_000, DEFAULT_RETRY_PERIOD_MS = 2_000;
/** client-go's JitterFactor: acquire attempts are spread over [retryPeriod, 2.2 × retryPeriod). */
const JITTER_FACTOR = 1.2;

type State = 'new' | 'candidate' | 'leading' | 'lost' | 'stopped';

/** Runs for a Lease; see the module comment for the protocol. */
export class LeaderElector {
  readonly identity: string;
  private readonly lock: LeaseLock;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly wallClock: () => Date;
  private readonly random: () => number;
  private readonly options: LeaderElectorOptions;

  private state: State = 'new';
  private observed: ObservedLease | undefined;
  /** When (this process's clock) the lease last changed as far as this process saw. */
  private observedAt = 0;
  private lastRenewAt = 0;
  private currentLeader: string | undefined;
  private tick: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(options: LeaderElectorOptions) {
    this.options = options;
    this.lock = options.lock;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.log = options.log;
    this.clock = options.clock ?? realClock;
    this.wallClock = options.wallClock ?? (() => new Date());
    this.random = options.random ?? Math.random;
    if (!this.identity) throw new RangeError('leader election needs a non-empty identity');
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new RangeError(
        `the lease duration (${this.leaseDurationMs} ms) must be greater than `
          + `the renew deadline (${this.renewDeadlineMs} ms)`,
      );
    }
    if (!(this.renewDeadlineMs > JITTER_FACTOR * this.retryPeriodMs)) {
      throw new RangeError(
        `the renew deadline (${this.renewDeadlineMs} ms) must be greater than `
          + `${JITTER_FACTOR} × the retry period (${this.retryPeriodMs} ms)`,
      );
    }
  }

  /** Starts trying to acquire the lease in the background. Idempotent. */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'candidate';
    this.log.info({ lease: this.lock.description, identity: this.identity },
      'leader election started; trying to acquire the lease');
    this.attempt();
  }

  /** True while this process holds the lease. */
  isLeader(): boolean {
    return this.state === 'leading';
  }

  /** The holder this process last observed ('' when free), or undefined before the first read. */
  leader(): string | undefined {
    return this.currentLeader;
  }

  /**
   * Stops electing and, if this process leads, gives the lease up so a standby takes over at once.
   * Call it after the work the lease protects has stopped. Never rejects (a failed release only
   * means the standby waits for the lease to expire). Idempotent.
   */
  async release(): Promise<void> {
    const wasLeading = this.state === 'leading';
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.clearTimers();
    await this.inFlight;
    if (!wasLeading) return;
    try {
      const current = await this.lock.get();
      if (current?.record.holderIdentity !== this.identity) return;
      const now = this.wallClock();
      await this.lock.update({
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: current.record.leaseTransitions,
      }, current.resourceVersion);
      this.log.info({ lease: this.lock.description, identity: this.identity }, 'lease released');
    } catch (err) {
      this.log.warn({ lease: this.lock.description, err },
        'releasing the lease failed; a standby takes over when it expires');
    }
  }

  private attempt(): void {
    this.tick = undefined;
    if (this.state !== 'candidate' && this.state !== 'leading') return;
    const run = this.withTimeout(this.tryAcquireOrRenew()).then(
      (ok) => {
        this.afterAttempt(ok);
      },
      (err: unknown) => {
        this.log.debug({ lease: this.lock.description, err }, 'lease request failed');
        this.afterAttempt(false);
      },
    ).finally(() => {
      if (this.inFlight === run) this.inFlight = undefined;
    });
    this.inFlight = run;
  }

  private afterAttempt(ok: boolean): void {
    const state: State = this.state;
    if (state === 'candidate') {
      if (ok) {
        this.becomeLeader();
      } else {
        this.schedule(this.retryPeriodMs * (1 + this.random() * JITTER_FACTOR));
      }
      return;
    }
    if (state !== 'leading') return;
    if (ok) {
      this.lastRenewAt = this.clock.now();
      this.armWatchdog();
    } else if (this.observed && this.observed.record.holderIdentity !== this.identity &&
      this.observed.record.holderIdentity !== '') {
      this.lose(`the lease is now held by ${this.observed.record.holderIdentity}`);
      return;
    }
    this.schedule(this.retryPeriodMs);
  }

  /** A hung request must not stall the election: an attempt gives up after the renew deadline. */
  private withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = this.clock.setTimeout(() => {
        reject(new Error(`lease request took longer than ${this.renewDeadlineMs} ms`));
      }, this.renewDeadlineMs);
    });
    return Promise.race([work, timeout]).finally(() => {
      if (timer !== undefined) this.clock.clearTimeout(timer);
    });
  }

  private becomeLeader(): void {
    this.state = 'leading';
    this.lastRenewAt = this.clock.now();
    this.armWatchdog();
    this.log.info({ lease: this.lock.description, identity: this.identity }, 'became leader');
    this.schedule(this.retryPeriodMs);
    try {
      this.options.onStartedLeading();
    } catch (err) {
      this.log.error({ err }, 'onStartedLeading threw');
    }
  }

  private armWatchdog(): void {
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    const dueIn = this.lastRenewAt + this.renewDeadlineMs - this.clock.now();
    this.watchdog = this.clock.setTimeout(() => {
      this.watchdog = undefined;
      if (this.state === 'leading')
        this.lose(`no renewal succeeded within the renew deadline (${this.renewDeadlineMs} ms)`);
    }, Math.max(0, dueIn));
  }

  private lose(reason: string): void {
    this.state = 'lost';
    this.clearTimers();
    this.log.error({ lease: this.lock.description, identity: this.identity, reason }, 'leadership lost');
    this.options.onStoppedLeading(reason);
  }

  private schedule(delayMs: number): void {
    if (this.tick !== undefined) this.clock.clearTimeout(this.tick);
    this.tick = this.clock.setTimeout(() => {
      this.attempt();
    }, delayMs);
  }

  private clearTimers(): void {
    if (this.tick !== undefined) this.clock.clearTimeout(this.tick);
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    this.tick = undefined;
    this.watchdog = undefined;
  }

  /** client-go's tryAcquireOrRenew: true when this process holds the lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const wall = this.wallClock();
    const current = await this.lock.get();
    if (this.state === 'stopped') return false;
    if (current === undefined) {
      const record: LeaseRecord = {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: wall,
        renewTime: wall,
        leaseTransitions: 0,
      };
      const resourceVersion = await this.lock.create(record);
      this.observe({ record, resourceVersion }, now);
      return true;
    }
    if (current.resourceVersion !== this.observed?.resourceVersion) this.observe(current, now);
    const holder = current.record.holderIdentity;
    const validForMs = current.record.leaseDurationSeconds * 1000;
    if (holder !== '' && holder !== this.identity && this.observedAt + validForMs > now) return false;

    const record: LeaseRecord = holder === this.identity
      ? { ...current.record, leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000), renewTime: wall }
      : {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: wall,
        renewTime: wall,
        leaseTransitions: current.record.leaseTransitions + 1,
      };
    const resourceVersion = await this.lock.update(record, current.resourceVersion);
    if (holder !== this.identity) {
      this.log.info({ lease: this.lock.description, previous: holder || '(released)',
        transitions: record.leaseTransitions }, 'lease taken over');
    }
    this.observe({ record, resourceVersion }, now);
    return true;
  }

  private observe(lease: ObservedLease, now: number): void {
    this.observed = lease;
    this.observedAt = now;
    const holder = lease.record.holderIdentity;
    if (holder === this.currentLeader) return;
    this.currentLeader = holder;
    if (holder !== this.identity)
      this.log.info({ lease: this.lock.description, leader: holder || '(none)' }, 'observed a new leader');
    try {
      this.options.onNewLeader?.(holder);
    } catch (err) {
      this.log.warn({ err }, 'onNewLeader threw');
    }
  }
}

/** A {@link LeaseLock} on a `coordination.k8s.io/v1` Lease. */
export class KubeLeaseLock implements LeaseLock {
  readonly description: string;
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  private readonly name: string;

  constructor(kc: KubeConfig, namespace: string, name: string) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.namespace = namespace;
    this.name = name;
    this.description = `${namespace}/${name}`;
  }

  async get(): Promise<ObservedLease | undefined> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ namespace: this.namespace, name: this.name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const spec = lease.spec ?? {};
    return {
      resourceVersion: lease.metadata?.resourceVersion ?? '',
      record: {
        holderIdentity: spec.holderIdentity ?? '',
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
        leaseTransitions: spec.leaseTransitions ?? 0,
        ...(spec.acquireTime ? { acquireTime: new Date(spec.acquireTime) } : {}),
        ...(spec.renewTime ? { renewTime: new Date(spec.renewTime) } : {}),
      },
    };
  }

  async create(record: LeaseRecord): Promise<string> {
    const created = await this.api.createNamespacedLease({ namespace: this.namespace, body: this.body(record) });
    return created.metadata?.resourceVersion ?? '';
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<string> {
    const body = this.body(record, resourceVersion);
    const updated = await this.api.replaceNamespacedLease({ namespace: this.namespace, name: this.name, body });
    return updated.metadata?.resourceVersion ?? '';
  }

  private body(record: LeaseRecord, resourceVersion?: string): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        leaseTransitions: record.leaseTransitions,
        ...(record.acquireTime ? { acquireTime: new V1MicroTime(record.acquireTime.getTime()) } : {}),
        ...(record.renewTime ? { renewTime: new V1MicroTime(record.renewTime.getTime()) } : {}),
      },
    };
  }
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === 404;
}
