import { EventEmitter } from 'node:events';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.ts';
import { Controller, type ControllerStopOptions } from '../../src/controller/controller.ts';
import { Informer, type InformerEventType, type ListWatchArgs, type ListWatchLike } from '../../src/controller/informer.ts';
import { objectKey, parseKey } from '../../src/controller/keys.ts';
import { silentLogger, type Logger } from '../../src/controller/logger.ts';
import { Manager, onSignals, type ManagedController, type ManagedInformer } from '../../src/controller/manager.ts';

/** Lets every queued promise callback run; no time passes. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

class FakeInformer implements ManagedInformer {
  readonly name: string;
  readonly events: string[];
  private synced = false;
  private readonly waiters: (() => void)[] = [];

  constructor(name: string, events: string[]) {
    this.name = name;
    this.events = events;
  }

  start(): void { this.events.push(`start ${this.name}`); }

  stop(): Promise<void> {
    this.events.push(`stop ${this.name}`);
    return Promise.resolve();
  }

  sync(): void {
    this.synced = true;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push(resolve);
      signal?.addEventListener('abort', () => { reject(signal.reason as Error); });
    });
  }
}

class FakeController implements ManagedController {
  readonly name: string;
  readonly events: string[];
  stopOptions: ControllerStopOptions | undefined;
  private finishStop: (() => void) | undefined;

  constructor(name: string, events: string[]) {
    this.name = name;
    this.events = events;
  }

  start(): void { this.events.push(`start ${this.name}`); }

  stop(options?: ControllerStopOptions): Promise<void> {
    this.events.push(`stop ${this.name}`);
    this.stopOptions = options;
    return new Promise<void>((resolve) => { this.finishStop = resolve; });
  }

  finishDrain(): void {
    this.events.push(`drained ${this.name}`);
    this.finishStop?.();
  }
}

function setup() {
  const events: string[] = [];
  const clock = new ManualClock();
  const manager = new Manager({ log: silentLogger, clock, syncTimeoutMs: 5000, drainTimeoutMs: 2000 });
  const runs = manager.addInformer(new FakeInformer('agentruns', events));
  const pods = manager.addInformer(new FakeInformer('pods', events));
  const controller = manager.addController(new FakeController('agentrun', events));
  return { events, clock, manager, runs, pods, controller };
}

describe('Manager', () => {
  it('starts controllers only after every informer has synced', async () => {
    const { events, manager, runs, pods } = setup();
    const started = manager.start();
    expect(events).toEqual(['start agentruns', 'start pods']);

    runs.sync();
    await settle();
    expect(events).not.toContain('start agentrun');
    pods.sync();
    await started;
    expect(events).toEqual(['start agentruns', 'start pods', 'start agentrun']);
    expect(() => manager.addInformer(new FakeInformer('late', events))).toThrow(/already started/);
  });

  it('fails to start, naming the informers, when the caches do not sync in time', async () => {
    const { events, clock, manager, runs } = setup();
    const started = manager.start();
    runs.sync();
    clock.advance(5000);
    await expect(started).rejects.toThrow(/did not sync within 5000 ms \(agentruns, pods\)/);
    expect(events).not.toContain('start agentrun');
  });

  it('stops the controllers with the drain timeout before the informers, once', async () => {
    const { events, clock, manager, runs, pods, controller } = setup();
    const started = manager.start();
    runs.sync();
    pods.sync();
    await started;
    expect(clock.pendingTimers).toBe(0);

    const stopped = manager.stop();
    expect(manager.stop()).toBe(stopped);
    await settle();
    expect(events.slice(3)).toEqual(['stop agentrun']);
    expect(controller.stopOptions).toEqual({ drainTimeoutMs: 2000 });

    controller.finishDrain();
    await stopped;
    expect(events.slice(3)).toEqual(['stop agentrun', 'drained agentrun', 'stop agentruns', 'stop pods']);
  });

  it('returns from start() without starting controllers when stopped while waiting for sync', async () => {
    const { events, clock, manager, controller } = setup();
    const started = manager.start();
    const stopped = manager.stop();
    await started;
    controller.finishDrain();
    await stopped;
    expect(events).not.toContain('start agentrun');
    expect(clock.pendingTimers).toBe(0);
  });

  it('does not start controllers when stop() comes between the last sync and start() resuming', async () => {
    const { events, manager, runs, pods, controller } = setup();
    const started = manager.start();
    runs.sync();
    pods.sync();
    const stopped = manager.stop();
    await started;
    controller.finishDrain();
    await stopped;
    expect(events).not.toContain('start agentrun');
  });

  it('wires an informer to a controller: events enqueue keys that are reconciled after sync', async () => {
    const keys: string[] = [];
    const log: Logger = pino({ level: 'silent' }); // pino satisfies the Logger interface
    const controller = new Controller({
      name: 'configmaps',
      log,
      reconcile: (key) => {
        keys.push(key);
        return Promise.resolve();
      },
    });
    let fake: ListWatchLike<KubernetesObject> | undefined;
    const informer = new Informer<KubernetesObject>({
      kc: new KubeConfig(),
      path: '/api/v1/configmaps',
      list: () => Promise.resolve({ metadata: { resourceVersion: '1' }, items: [{ metadata: { namespace: 'ns', name: 'a' } }] }),
      onEvent: (_type, obj) => { controller.enqueue(objectKey(obj)); },
      log,
      createListWatch: (args) => (fake = new ImmediateListWatch(args)),
    });
    const manager = new Manager({ log });
    manager.addInformer(informer);
    manager.addController(controller);

    await manager.start();
    expect(fake).toBeDefined();
    await manager.stop();
    expect(keys).toEqual(['ns/a']);
  });
});

/** A ListWatch stand-in that lists once and emits an add per item. */
class ImmediateListWatch implements ListWatchLike<KubernetesObject> {
  private readonly args: ListWatchArgs<KubernetesObject>;
  private readonly adds: ((obj: KubernetesObject) => void)[] = [];
  private items: KubernetesObject[] = [];

  constructor(args: ListWatchArgs<KubernetesObject>) {
    this.args = args;
  }

  on(event: InformerEventType, callback: (obj: KubernetesObject) => void): void;
  on(event: 'error' | 'connect', callback: (err?: unknown) => void): void;
  on(event: string, callback: (obj: KubernetesObject) => void): void {
    if (event === 'add') this.adds.push(callback);
  }

  async start(): Promise<void> {
    this.items = (await this.args.list()).items;
    for (const obj of this.items) for (const add of this.adds) add(obj);
  }

  stop(): Promise<void> { return Promise.resolve(); }
  get(): KubernetesObject | undefined { return undefined; }
  list(): readonly KubernetesObject[] { return this.items; }
}

describe('onSignals', () => {
  function signalSetup(stopResult: Promise<void>) {
    const signals = new EventEmitter();
    const exits: number[] = [];
    let stops = 0;
    const dispose = onSignals({ stop: () => { stops++; return stopResult; } }, silentLogger, {
      signals,
      exit: (code) => { exits.push(code); },
    });
    return { signals, exits, stops: () => stops, dispose };
  }

  it('stops the manager once on SIGTERM and exits 0 when it has stopped', async () => {
    let finish: () => void = () => undefined;
    const { signals, exits, stops } = signalSetup(new Promise<void>((resolve) => { finish = resolve; }));
    signals.emit('SIGTERM', 'SIGTERM');
    await settle();
    expect(stops()).toBe(1);
    expect(exits).toEqual([]);
    finish();
    await settle();
    expect(exits).toEqual([0]);
  });

  it('exits 1 at once on a second signal, and 1 when stop fails', async () => {
    const { signals, exits, stops } = signalSetup(new Promise<void>(() => undefined));
    signals.emit('SIGINT', 'SIGINT');
    signals.emit('SIGTERM', 'SIGTERM');
    expect(stops()).toBe(1);
    expect(exits).toEqual([1]);

    const failing = signalSetup(Promise.reject(new Error('drain failed')));
    failing.signals.emit('SIGTERM', 'SIGTERM');
    await settle();
    expect(failing.exits).toEqual([1]);
  });

  it('removes its handlers when disposed', () => {
    const { signals, dispose } = signalSetup(Promise.resolve());
    expect(signals.listenerCount('SIGTERM')).toBe(1);
    dispose();
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });
});

describe('objectKey / parseKey', () => {
  it('round-trip namespaced and cluster-scoped keys', () => {
    expect(objectKey({ metadata: { namespace: 'ns', name: 'a' } })).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'node-1' } })).toBe('node-1');
    expect(parseKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(parseKey('node-1')).toEqual({ namespace: '', name: 'node-1' });
    expect(() => objectKey({ kind: 'Pod', metadata: {} })).toThrow(/Pod without metadata.name/);
  });
});
