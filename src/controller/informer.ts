/**
 * An informer: a list+watch cache of one resource that calls handlers on changes and keeps running
 * when its watch fails. It wraps client-node's ListWatch and fixes what a long-running operator
 * cannot live with in client-node 2.0.1:
 *
 * - ListWatch stops for good on any list or watch error other than 410 Gone and its own
 *   client-side timeout: it only emits 'error'. This informer restarts it with capped exponential
 *   backoff; the restart resumes the watch from the last resourceVersion (relisting if it is gone).
 * - ListWatch.stop() does not stop a list, a reconnect delay or a watch request that is in flight;
 *   they would open a new watch after stop(). Here the reconnect delay is cancellable and a watch
 *   opened after stop() is aborted.
 * - An exception in an event handler would abort the relist or be swallowed; here it is logged.
 */
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import type { Logger } from './logger.ts';

/** A change to a cached object. */
export type InformerEventType = 'add' | 'update' | 'delete';

/** Selectors that restrict what an informer lists and watches. */
export interface Selectors {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/**
 * The part of client-node's ListWatch that {@link Informer} drives. It exists so tests can inject
 * a fake; production code uses the default, a real ListWatch.
 */
export interface ListWatchLike<T extends KubernetesObject> {
  on(event: InformerEventType, callback: (obj: T) => void): void;
  on(event: 'error' | 'connect', callback: (err?: unknown) => void): void;
  /** Lists (unless a resourceVersion is known) and opens the watch; resolves once the watch is open. */
  start(): Promise<void>;
  stop(): Promise<void>;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
}

/** What {@link InformerOptions.createListWatch} receives. */
export interface ListWatchArgs<T extends KubernetesObject> extends Selectors {
  readonly kc: KubeConfig;
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  /** The reconnect delay to give ListWatch; it never resolves once the informer is stopped. */
  readonly delay: (ms: number) => Promise<void>;
  /** True once the informer is stopped; no watch may be opened after that. */
  readonly isStopped: () => boolean;
}

/** Options of an {@link Informer}. */
export interface InformerOptions<T extends KubernetesObject> extends Selectors {
  readonly kc: KubeConfig;
  /** The collection URL path, e.g. `/apis/agentrun.dev/v1alpha1/agentruns` or a namespaced one. */
  readonly path: string;
  /**
   * Lists the collection at `path`. It must apply the selectors it is given: ListWatch passes them
   * to the watch only, and a list without them would fill the cache with objects the watch ignores.
   */
  readonly list: (selectors: Selectors) => Promise<KubernetesListObject<T>>;
  readonly onAdd?: (obj: T) => void;
  readonly onUpdate?: (obj: T) => void;
  readonly onDelete?: (obj: T) => void;
  /** Called for every change, after the type-specific handler. */
  readonly onEvent?: (type: InformerEventType, obj: T) => void;
  readonly log: Logger;
  /** Names the informer in logs (default: `path`). */
  readonly name?: string;
  /** First delay before restarting a failed list/watch (default 1 s). */
  readonly restartBaseDelayMs?: number;
  /** Longest delay before restarting a failed list/watch (default 60 s). */
  readonly restartMaxDelayMs?: number;
  readonly clock?: Clock;
  /** Builds the underlying list+watch; the default is client-node's ListWatch. For tests. */
  readonly createListWatch?: (args: ListWatchArgs<T>) => ListWatchLike<T>;
}

/** Default of {@link InformerOptions.restartBaseDelayMs}. */
export const DEFAULT_RESTART_BASE_DELAY_MS = 1000;
/** Default of {@link InformerOptions.restartMaxDelayMs}. */
export const DEFAULT_RESTART_MAX_DELAY_MS = 60_000;

type State = 'new' | 'running' | 'stopped';

interface SyncWaiter {
  readonly resolve: () => void;
  readonly reject: (reason: Error) => void;
}

/**
 * Keeps a cache of the objects at one collection path and calls handlers when they change.
 *
 * Cached objects (from `get`, `list` and the handlers) are deep-frozen: the cache shares them with
 * every reader, so mutating one would corrupt it. Copy with `structuredClone` before changing one.
 * Freezing is one pass over each object as it enters the cache, cheaper than the JSON parse that
 * produced it; deep-cloning on every read would not be.
 *
 * Note that objects from the initial list are whatever `list` returns (client-node's typed APIs
 * deserialise timestamps to Date), while watched objects are plain JSON (timestamps are strings).
 *
 * `update` events carry only the new object; a relist after 410 Gone reports objects that vanished
 * meanwhile as `delete`.
 */
export class Informer<T extends KubernetesObject> {
  readonly name: string;
  private readonly options: InformerOptions<T>;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly upstream: ListWatchLike<T>;

  private state: State = 'new';
  private synced = false;
  private listed = false;
  /** Increments on every (re)start of the upstream ListWatch. */
  private attempt = 0;
  /** The last attempt that reported a failure. */
  private failedAttempt = 0;
  /** Consecutive failed attempts; sets the restart delay. */
  private failures = 0;
  private restartTimer: TimerHandle | undefined;
  private readonly delayTimers = new Set<TimerHandle>();
  private readonly syncWaiters = new Set<SyncWaiter>();
  /** Handlers added after construction (Controller.watch), called after the options' handlers. */
  private readonly handlers: ((type: InformerEventType, obj: T) => void)[] = [];

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.name = options.name ?? options.path;
    this.log = options.log;
    this.clock = options.clock ?? realClock;
    this.baseDelayMs = options.restartBaseDelayMs ?? DEFAULT_RESTART_BASE_DELAY_MS;
    this.maxDelayMs = options.restartMaxDelayMs ?? DEFAULT_RESTART_MAX_DELAY_MS;
    const selectors: Selectors = { labelSelector: options.labelSelector, fieldSelector: options.fieldSelector };
    this.upstream = (options.createListWatch ?? createClientNodeListWatch)({
      kc: options.kc,
      path: options.path,
      ...selectors,
      list: async () => {
        const result = await options.list(selectors);
        this.listed = true;
        return result;
      },
      delay: (ms) => this.delay(ms),
      isStopped: () => this.state === 'stopped',
    });
    for (const type of ['add', 'update', 'delete'] as const) {
      this.upstream.on(type, (obj) => {
        this.dispatch(type, obj);
      });
    }
    this.upstream.on('error', (err) => {
      this.handleFailure(err);
    });
    this.upstream.on('connect', () => {
      this.log.debug({ informer: this.name }, 'informer connecting');
    });
  }

  /** Starts listing and watching in the background; see {@link Informer.waitForSync}. Idempotent. */
  start(): void {
    if (this.state === 'stopped') throw new Error(`informer ${this.name} cannot be started after stop`);
    if (this.state === 'running') return;
    this.state = 'running';
    this.log.info({ informer: this.name }, 'informer started');
    this.runAttempt();
  }

  /**
   * Stops watching for good: cancels a pending restart or reconnect, aborts the watch and rejects
   * pending {@link Informer.waitForSync} calls. The cache stays readable. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    // The promises behind these timers are left pending: that ends ListWatch's reconnect chain.
    for (const handle of this.delayTimers) this.clock.clearTimeout(handle);
    this.delayTimers.clear();
    const stopped = new Error(`informer ${this.name} stopped before its cache synced`);
    for (const waiter of this.syncWaiters) waiter.reject(stopped);
    this.syncWaiters.clear();
    await this.upstream.stop();
    this.log.info({ informer: this.name }, 'informer stopped');
  }

  /** True once the cache holds a complete list (it stays true across restarts). */
  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Resolves once the cache holds a complete list. Rejects if the informer stops first, or with
   * `signal.reason` when `signal` aborts.
   */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.state === 'stopped') return Promise.reject(new Error(`informer ${this.name} is stopped`));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.syncWaiters.delete(waiter);
        if (signal) reject(abortReason(signal));
      };
      const waiter: SyncWaiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      this.syncWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Returns the cached object, or undefined. Use namespace '' for cluster-scoped objects. Do not mutate it. */
  get(namespace: string, name: string): T | undefined {
    return this.upstream.get(name, namespace);
  }

  /** Returns the cached objects of one namespace, or of all namespaces when omitted. Do not mutate them. */
  list(namespace?: string): readonly T[] {
    return this.upstream.list(namespace);
  }

  private runAttempt(): void {
    const attempt = ++this.attempt;
    this.upstream.start().then(
      () => {
        this.finishAttempt(attempt);
      },
      (err: unknown) => {
        this.handleFailure(err);
        this.finishAttempt(attempt);
      },
    );
  }

  private finishAttempt(attempt: number): void {
    if (attempt !== this.attempt || this.state !== 'running') return;
    // The list is applied to the cache before ListWatch opens the watch, so it is complete now.
    if (this.listed && !this.synced) {
      this.synced = true;
      this.log.info({ informer: this.name, objects: this.upstream.list().length }, 'informer synced');
      for (const waiter of this.syncWaiters) waiter.resolve();
      this.syncWaiters.clear();
    }
    if (this.failedAttempt !== attempt) this.failures = 0;
  }

  private handleFailure(err: unknown): void {
    // After stop(), errors are the abort of our own watch.
    if (this.state !== 'running') return;
    this.failedAttempt = this.attempt;
    if (this.restartTimer !== undefined) return;
    const restartInMs = Math.min(this.baseDelayMs * 2 ** this.failures, this.maxDelayMs);
    this.failures++;
    this.log.warn({ informer: this.name, err, restartInMs, failures: this.failures },
      'informer list/watch failed; restarting');
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      this.runAttempt();
    }, restartInMs);
  }

  private dispatch(type: InformerEventType, obj: T): void {
    deepFreeze(obj);
    if (this.state === 'stopped') return;
    const { onAdd, onUpdate, onDelete, onEvent } = this.options;
    const handler = type === 'add' ? onAdd : type === 'update' ? onUpdate : onDelete;
    if (handler !== undefined)
      this.runHandler(type, obj, () => {
        handler(obj);
      });
    if (onEvent !== undefined)
      this.runHandler(type, obj, () => {
        onEvent(type, obj);
      });
    for (const extra of this.handlers)
      this.runHandler(type, obj, () => {
        extra(type, obj);
      });
  }

  /**
   * Adds a handler called for every change after the options' handlers, so that whoever consumes
   * the events (a controller) can be built after the informer. Add handlers before start().
   */
  addHandler(handler: (type: InformerEventType, obj: T) => void): void {
    this.handlers.push(handler);
  }

  private runHandler(type: InformerEventType, obj: T, call: () => void): void {
    try {
      call();
    } catch (err) {
      const { namespace, name } = obj.metadata ?? {};
      this.log.error({ informer: this.name, event: type, namespace, name, err }, 'informer event handler threw');
    }
  }

  private delay(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.state === 'stopped') return;
      const handle = this.clock.setTimeout(() => {
        this.delayTimers.delete(handle);
        resolve();
      }, ms);
      this.delayTimers.add(handle);
    });
  }
}

/** A client-node Watch that will not leave a watch open once its informer is stopped. */
class StoppableWatch extends Watch {
  private readonly isStopped: () => boolean;

  constructor(kc: KubeConfig, isStopped: () => boolean) {
    super(kc);
    this.isStopped = isStopped;
  }

  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    if (this.isStopped()) {
      // Not calling `done` ends ListWatch's reconnect chain quietly.
      const refused = new AbortController();
      refused.abort();
      return refused;
    }
    const request = await super.watch(...args);
    // stop() ran while the request was connecting; ListWatch had no request to abort yet.
    if (this.isStopped()) request.abort();
    return request;
  }
}

function createClientNodeListWatch<T extends KubernetesObject>(args: ListWatchArgs<T>): ListWatchLike<T> {
  const watch = new StoppableWatch(args.kc, args.isStopped);
  return new ListWatch<T>(
    args.path,
    watch,
    args.list,
    false,
    args.labelSelector,
    args.fieldSelector,
    { delayFn: args.delay },
  );
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal.reason });
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}
