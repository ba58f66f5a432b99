/**
 * A controller: worker loops that take keys from a {@link WorkQueue} and reconcile them, with
 * requeue rules modelled on controller-runtime.
 */
import { realClock, type Clock } from './clock.ts';
import { RequeueError, TerminalError } from './errors.ts';
import type { InformerEventType } from './informer.ts';
import type { Logger } from './logger.ts';
import { WorkQueue, type WorkQueueOptions } from './workqueue.ts';

/**
 * What a reconcile asks for when it succeeds: nothing (the key waits for the next change), or
 * another pass after `requeueAfterMs` (for polling external state or deadlines).
 */
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- lets `async () => {}` be a reconciler
export type ReconcileResult = { readonly requeueAfterMs?: number } | void;

/**
 * Brings the object named by `key` to its desired state. It must be idempotent, since a key can be
 * reconciled again at any time, and should stop promptly when `signal` aborts (controller stopping).
 */
export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult>;

/**
 * How a reconcile ended: `success` (no requeue), `requeue` (requeueAfterMs or a {@link RequeueError}),
 * `error` (any other error; retried with backoff) or `terminal` (a {@link TerminalError}; not retried).
 */
export type ReconcileOutcome = 'success' | 'requeue' | 'error' | 'terminal';

/** Options of a {@link Controller}. */
export interface ControllerOptions {
  /** Names the controller in logs. */
  readonly name: string;
  readonly reconcile: Reconciler;
  /** How many keys are reconciled concurrently (default 1). One key is never reconciled twice at once. */
  readonly workers?: number;
  /** Backoff of failed keys; see {@link WorkQueueOptions}. */
  readonly queue?: Omit<WorkQueueOptions, 'clock'>;
  readonly log: Logger;
  /** Used for the queue's timers, the drain timeout and reconcile durations. */
  readonly clock?: Clock;
  /** Called after each reconcile, e.g. to record metrics. Exceptions are logged and ignored. */
  readonly onReconcileDone?: (key: string, durationMs: number, outcome: ReconcileOutcome) => void;
}

/** Options of {@link Controller.stop}. */
export interface ControllerStopOptions {
  /** How long in-flight reconciles may run before their signal aborts (default 30 s). */
  readonly drainTimeoutMs?: number;
}

/** Default of {@link ControllerStopOptions.drainTimeoutMs}. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/**
 * Runs `workers` loops that take keys from its queue and call `reconcile`. After a reconcile:
 *
 * - success: the key's backoff is reset, and it is requeued after `requeueAfterMs` if given;
 * - {@link TerminalError}: the backoff is reset and the key is not requeued;
 * - {@link RequeueError} (and ConflictError): requeued after its `retryAfterMs`, backoff untouched;
 * - any other error: requeued with the key's exponential backoff.
 *
 * Keys may be enqueued before {@link Controller.start}; they wait for the workers. A stopped
 * controller cannot be started again.
 */
export class Controller {
  readonly name: string;
  private readonly reconcile: Reconciler;
  private readonly workerCount: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly onReconcileDone: ControllerOptions['onReconcileDone'];
  private readonly queue: WorkQueue;
  /** Aborted when a stop's drain timeout expires; passed to every reconcile. */
  private readonly abort = new AbortController();
  private workers: Promise<void>[] | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconcile = options.reconcile;
    this.workerCount = options.workers ?? 1;
    if (!(Number.isInteger(this.workerCount) && this.workerCount >= 1)) {
      throw new RangeError(`workers must be a positive integer, got ${this.workerCount}`);
    }
    this.log = options.log;
    this.clock = options.clock ?? realClock;
    this.onReconcileDone = options.onReconcileDone;
    this.queue = new WorkQueue({ ...options.queue, clock: this.clock });
  }

  /**
   * Enqueues the keys `toKeys` maps each of the informer's changes to (the object's own key, its
   * owner's, or every object that depends on it). Call before the informer starts.
   */
  watch<T>(
    informer: { addHandler(handler: (type: InformerEventType, obj: T) => void): void },
    toKeys: (obj: T, type: InformerEventType) => Iterable<string>,
  ): void {
    informer.addHandler((type, obj) => {
      for (const key of toKeys(obj, type)) this.enqueue(key);
    });
  }

  /** Queues a key for reconciliation (de-duplicated with keys already queued). */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  /** Queues a key after `delayMs`; an earlier pending time for the same key wins. */
  enqueueAfter(key: string, delayMs: number): void {
    this.queue.addAfter(key, delayMs);
  }

  /** The number of keys waiting for a worker. */
  queueDepth(): number {
    return this.queue.length;
  }

  /** Starts the worker loops; throws if the controller was already started or stopped. */
  start(): void {
    if (this.workers !== undefined || this.stopping !== undefined) {
      throw new Error(`controller ${this.name} was already started or stopped`);
    }
    this.log.info({ controller: this.name, workers: this.workerCount }, 'controller started');
    this.workers = Array.from({ length: this.workerCount }, () => this.runWorker());
  }

  /**
   * Stops gracefully: no new keys are taken (queued ones are dropped), in-flight reconciles may
   * finish, and after `drainTimeoutMs` their signal is aborted. Resolves when every worker has
   * exited, so a reconcile that ignores its signal delays it. Idempotent.
   */
  stop(options: ControllerStopOptions = {}): Promise<void> {
    this.stopping ??= this.drain(options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    return this.stopping;
  }

  private async drain(drainTimeoutMs: number): Promise<void> {
    this.queue.shutDown();
    this.log.info({ controller: this.name, drainTimeoutMs }, 'controller stopping');
    const timer = this.clock.setTimeout(() => {
      this.log.warn({ controller: this.name, drainTimeoutMs }, 'drain timeout expired; aborting in-flight reconciles');
      this.abort.abort();
    }, drainTimeoutMs);
    try {
      await Promise.all(this.workers ?? []);
    } finally {
      this.clock.clearTimeout(timer);
    }
    this.log.info({ controller: this.name }, 'controller stopped');
  }

  private async runWorker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const started = this.clock.now();
    const fields = { controller: this.name, key };
    let outcome: ReconcileOutcome;
    try {
      const requeueAfterMs = requeueDelay(await this.reconcile(key, this.abort.signal));
      this.queue.forget(key);
      if (requeueAfterMs === undefined) {
        outcome = 'success';
        this.log.debug({ ...fields, durationMs: this.clock.now() - started }, 'reconcile succeeded');
      } else {
        this.queue.addAfter(key, requeueAfterMs);
        outcome = 'requeue';
        const durationMs = this.clock.now() - started;
        this.log.debug({ ...fields, durationMs, requeueAfterMs }, 'reconcile succeeded; requeueing');
      }
    } catch (err) {
      outcome = this.handleFailure(key, err);
    }
    this.report(key, this.clock.now() - started, outcome);
  }

  private handleFailure(key: string, err: unknown): ReconcileOutcome {
    const fields = { controller: this.name, key, err };
    if (this.abort.signal.aborted) {
      this.log.warn(fields, 'reconcile aborted by controller stop');
      return 'error';
    }
    if (err instanceof TerminalError) {
      this.queue.forget(key);
      this.log.error(fields, 'reconcile failed permanently; not requeueing');
      return 'terminal';
    }
    if (err instanceof RequeueError && Number.isFinite(err.retryAfterMs)) {
      this.queue.addAfter(key, err.retryAfterMs);
      this.log.info({ ...fields, retryAfterMs: err.retryAfterMs }, 'reconcile asked to be retried');
      return 'requeue';
    }
    const retryInMs = this.queue.addRateLimited(key);
    const failures = this.queue.numRequeues(key);
    this.log.error({ ...fields, retryInMs, failures }, 'reconcile failed; retrying with backoff');
    return 'error';
  }

  private report(key: string, durationMs: number, outcome: ReconcileOutcome): void {
    if (this.onReconcileDone === undefined) return;
    try {
      this.onReconcileDone(key, durationMs, outcome);
    } catch (err) {
      this.log.warn({ controller: this.name, key, err }, 'onReconcileDone hook threw');
    }
  }
}

function requeueDelay(result: ReconcileResult): number | undefined {
  return typeof result === 'object' ? result.requeueAfterMs : undefined;
}
