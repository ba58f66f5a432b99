/**
 * A manager: starts informers, waits for their caches, then starts controllers; stops them in the
 * reverse order. Plus {@link onSignals} to stop it on SIGTERM/SIGINT.
 */
import { realClock, type Clock } from './clock.ts';
import type { ControllerStopOptions } from './controller.ts';
import type { Logger } from './logger.ts';

/** What a {@link Manager} needs from an informer; `Informer` has it. */
export interface ManagedInformer {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
  waitForSync(signal?: AbortSignal): Promise<void>;
}

/** What a {@link Manager} needs from a controller; `Controller` has it. */
export interface ManagedController {
  readonly name: string;
  start(): void;
  stop(options?: ControllerStopOptions): Promise<void>;
}

/** Options of a {@link Manager}. */
export interface ManagerOptions {
  readonly log: Logger;
  /** How long start() waits for every informer to sync before it fails (default 2 minutes). */
  readonly syncTimeoutMs?: number;
  /** Passed to each controller's stop() (default 30 s). */
  readonly drainTimeoutMs?: number;
  readonly clock?: Clock;
}

/** Default of {@link ManagerOptions.syncTimeoutMs}. */
export const DEFAULT_SYNC_TIMEOUT_MS = 120_000;

/**
 * Owns informers and controllers and runs them in order: controllers start only once every cache is
 * synced (so they never act on a partial view), and stop before the informers that feed them.
 */
export class Manager {
  private readonly log: Logger;
  private readonly syncTimeoutMs: number;
  private readonly drainTimeoutMs: number | undefined;
  private readonly clock: Clock;
  private readonly informers: ManagedInformer[] = [];
  private readonly controllers: ManagedController[] = [];
  /** Aborts the wait for sync when stop() is called during start(). */
  private readonly startup = new AbortController();
  private started = false;
  private synced = false;
  private controllersStarted = false;
  private stopping: Promise<void> | undefined;

  constructor(options: ManagerOptions) {
    this.log = options.log;
    this.syncTimeoutMs = options.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
    this.drainTimeoutMs = options.drainTimeoutMs;
    this.clock = options.clock ?? realClock;
  }

  /** Registers an informer (before start) and returns it. */
  addInformer<I extends ManagedInformer>(informer: I): I {
    this.assertNotStarted();
    this.informers.push(informer);
    return informer;
  }

  /** Registers a controller (before start) and returns it. */
  addController<C extends ManagedController>(controller: C): C {
    this.assertNotStarted();
    this.controllers.push(controller);
    return controller;
  }

  /**
   * Starts the informers, waits until all have synced, then starts the controllers. Rejects if the
   * caches do not sync within `syncTimeoutMs`; returns early, without starting controllers, if
   * stop() is called meanwhile.
   */
  async start(): Promise<void> {
    if (!(await this.syncCaches())) return;
    this.startControllers();
  }

  /**
   * The first half of {@link Manager.start}: starts the informers and waits until all have synced.
   * Resolves true when synced, false if stop() was called meanwhile; rejects if the caches do not
   * sync within `syncTimeoutMs`. With leader election, a standby runs only this half, so it is
   * ready to take over with warm caches.
   */
  async syncCaches(): Promise<boolean> {
    this.assertNotStarted();
    this.started = true;
    for (const informer of this.informers) informer.start();
    const timer = this.clock.setTimeout(() => {
      const waiting = this.informers.map((i) => i.name).join(', ');
      this.startup.abort(new Error(`informers did not sync within ${this.syncTimeoutMs} ms (${waiting})`));
    }, this.syncTimeoutMs);
    try {
      await Promise.all(this.informers.map((informer) => informer.waitForSync(this.startup.signal)));
    } catch (err) {
      if (this.stopping !== undefined) return false;
      throw err;
    } finally {
      this.clock.clearTimeout(timer);
    }
    if (this.stopping !== undefined) return false;
    this.synced = true;
    return true;
  }

  /**
   * The second half of {@link Manager.start}: starts the controllers. Only after
   * {@link Manager.syncCaches} resolved true; does nothing once stop() was called. Idempotent.
   */
  startControllers(): void {
    if (!this.synced) throw new Error('startControllers() before the caches synced');
    if (this.stopping !== undefined || this.controllersStarted) return;
    this.controllersStarted = true;
    this.log.info({ informers: this.informers.length }, 'caches synced; starting controllers');
    for (const controller of this.controllers) controller.start();
  }

  /** True once every informer's cache has synced (and stays true). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** True once the controllers were started. */
  hasStartedControllers(): boolean {
    return this.controllersStarted;
  }

  /** True once stop() was called. */
  isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Stops the controllers (draining in-flight work), then the informers. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    this.startup.abort(new Error('manager stopping'));
    const drain: ControllerStopOptions = this.drainTimeoutMs === undefined
      ? {}
      : { drainTimeoutMs: this.drainTimeoutMs };
    await Promise.all(this.controllers.map((controller) => controller.stop(drain)));
    await Promise.all(this.informers.map((informer) => informer.stop()));
    this.log.info({}, 'manager stopped');
  }

  private assertNotStarted(): void {
    if (this.started) throw new Error('manager already started');
  }
}

/** Something that emits process signals; `process` by default. */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
}

/** Options of {@link onSignals}; injectable for tests. */
export interface OnSignalsOptions {
  readonly signals?: SignalSource;
  readonly exit?: (code: number) => void;
}

/**
 * Stops the manager on the first SIGTERM or SIGINT and exits with 0 when it has stopped (1 if stop
 * failed). A second signal exits with 1 at once, for an operator who does not want to wait for the
 * drain. Returns a function that removes the handlers.
 */
export function onSignals(manager: Pick<Manager, 'stop'>, log: Logger, options: OnSignalsOptions = {}): () => void {
  const source = options.signals ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting without waiting for the drain');
      exit(1);
      return;
    }
    stopping = true;
    log.info({ signal }, 'signal received; stopping');
    manager.stop().then(
      () => {
        exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        exit(1);
      },
    );
  };
  source.on('SIGTERM', handler);
  source.on('SIGINT', handler);
  return () => {
    source.off('SIGTERM', handler);
    source.off('SIGINT', handler);
  };
}
