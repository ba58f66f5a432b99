import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/controller/clock.ts';
import {
  Informer,
  type InformerEventType,
  type InformerOptions,
  type ListWatchArgs,
  type ListWatchLike,
} from '../../src/controller/informer.ts';
import type { Logger } from '../../src/controller/logger.ts';

const PENDING = Symbol('pending');

/** The value of a promise if it has already settled, else PENDING (no waiting involved). */
function peek<T>(promise: Promise<T>): Promise<T | typeof PENDING> {
  return Promise.race([promise, Promise.resolve(PENDING)]);
}

/** Lets every queued promise callback run; no time passes. */
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

interface LogLine {
  readonly level: keyof Logger;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

function recordingLogger() {
  const lines = new Channel<LogLine>();
  const record = (level: keyof Logger) => (fields: object, msg: string) => {
    lines.push({ level, fields: fields as Record<string, unknown>, msg });
  };
  const log: Logger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
  return { log, lines, messages: (msg: string) => lines.items.filter((l) => l.msg === msg) };
}

function configMap(name: string, resourceVersion = '1'): KubernetesObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: 'ns', name, resourceVersion } };
}

function listOf(items: KubernetesObject[], resourceVersion = '10'): KubernetesListObject<KubernetesObject> {
  return { metadata: { resourceVersion }, items };
}

/** What one start() of the fake does, mirroring what client-node's ListWatch does in each case. */
type StartBehaviour = 'list' | 'list-fails' | 'watch-fails' | 'rejects';

/** A stand-in for client-node's ListWatch, driven by the test. */
class FakeListWatch implements ListWatchLike<KubernetesObject> {
  readonly args: ListWatchArgs<KubernetesObject>;
  readonly behaviours: StartBehaviour[] = [];
  starts = 0;
  stops = 0;
  private readonly cache = new Map<string, KubernetesObject>();
  private readonly callbacks = new Map<string, ((arg: unknown) => void)[]>();

  constructor(args: ListWatchArgs<KubernetesObject>) {
    this.args = args;
  }

  on(event: InformerEventType, callback: (obj: KubernetesObject) => void): void;
  on(event: 'error' | 'connect', callback: (err?: unknown) => void): void;
  on(event: string, callback: (arg: KubernetesObject) => void): void {
    this.callbacks.set(event, [...(this.callbacks.get(event) ?? []), callback as (arg: unknown) => void]);
  }

  emit(event: InformerEventType | 'error' | 'connect', arg?: unknown): void {
    for (const callback of this.callbacks.get(event) ?? []) callback(arg);
  }

  /** Applies a watch event to the cache and emits it, like ListWatch does. */
  watchEvent(type: InformerEventType, obj: KubernetesObject): void {
    const key = obj.metadata?.name ?? '';
    if (type === 'delete') this.cache.delete(key);
    else this.cache.set(key, obj);
    this.emit(type, obj);
  }

  async start(): Promise<void> {
    this.starts++;
    this.emit('connect');
    const behaviour = this.behaviours.shift() ?? 'list';
    if (behaviour === 'rejects') throw new Error('exec credential plugin failed');
    if (behaviour === 'list-fails') {
      this.emit('error', new Error('list: 503 Service Unavailable'));
      return;
    }
    const list = await this.args.list();
    for (const obj of list.items) this.watchEvent(this.cache.has(obj.metadata?.name ?? '') ? 'update' : 'add', obj);
    if (behaviour === 'watch-fails') this.emit('error', Object.assign(new Error('Forbidden'), { statusCode: 403 }));
  }

  stop(): Promise<void> {
    this.stops++;
    return Promise.resolve();
  }

  get(name: string, namespace?: string): KubernetesObject | undefined {
    const obj = this.cache.get(name);
    return obj?.metadata?.namespace === namespace ? obj : undefined;
  }

  list(): readonly KubernetesObject[] {
    return [...this.cache.values()];
  }
}

function setup(overrides: Partial<InformerOptions<KubernetesObject>> = {}) {
  const clock = new ManualClock();
  const { log, lines, messages } = recordingLogger();
  const events: [InformerEventType, KubernetesObject][] = [];
  let fake: FakeListWatch | undefined;
  const listCalls: unknown[] = [];
  const informer = new Informer<KubernetesObject>({
    kc: new KubeConfig(),
    path: '/api/v1/namespaces/ns/configmaps',
    labelSelector: 'app=demo',
    list: (selectors) => {
      listCalls.push(selectors);
      return Promise.resolve(listOf([configMap('a'), configMap('b')]));
    },
    onEvent: (type, obj) => { events.push([type, obj]); },
    log,
    clock,
    restartBaseDelayMs: 1000,
    restartMaxDelayMs: 4000,
    createListWatch: (args) => (fake = new FakeListWatch(args)),
    ...overrides,
  });
  if (fake === undefined) throw new Error('factory not called');
  return { clock, informer, fake, events, listCalls, lines, messages };
}

describe('Informer', () => {
  it('lists with its selectors, syncs, and serves deep-frozen objects from its cache', async () => {
    const { informer, events, listCalls } = setup();
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await informer.waitForSync();

    expect(informer.hasSynced()).toBe(true);
    expect(listCalls).toEqual([{ labelSelector: 'app=demo', fieldSelector: undefined }]);
    expect(events.map(([type, obj]) => [type, obj.metadata?.name])).toEqual([['add', 'a'], ['add', 'b']]);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(['a', 'b']);
    const cached = informer.get('ns', 'a');
    expect(cached?.metadata?.name).toBe('a');
    expect(informer.get('other', 'a')).toBeUndefined();
    expect(Object.isFrozen(cached)).toBe(true);
    expect(() => { (cached?.metadata as { name: string }).name = 'changed'; }).toThrow(TypeError);
  });

  it('calls the type-specific handler and onEvent, and logs a handler that throws without losing events', async () => {
    const seen: string[] = [];
    const { informer, fake, messages } = setup({
      onAdd: (obj) => {
        if (obj.metadata?.name === 'a') throw new Error('handler bug');
        seen.push(`add ${obj.metadata?.name ?? ''}`);
      },
      onUpdate: (obj) => { seen.push(`update ${obj.metadata?.name ?? ''}`); },
      onDelete: (obj) => { seen.push(`delete ${obj.metadata?.name ?? ''}`); },
      onEvent: (type, obj) => { seen.push(`event ${type} ${obj.metadata?.name ?? ''}`); },
    });
    informer.start();
    await informer.waitForSync();
    fake.watchEvent('update', configMap('b', '2'));
    fake.watchEvent('delete', configMap('b', '3'));

    expect(seen).toEqual([
      'event add a', 'add b', 'event add b', 'update b', 'event update b', 'delete b', 'event delete b',
    ]);
    expect(messages('informer event handler threw')[0]?.fields).toMatchObject({ event: 'add', namespace: 'ns', name: 'a' });
  });

  it('restarts after a watch error with exponential backoff up to the cap, and resets it after a healthy start', async () => {
    const { clock, informer, fake, messages } = setup();
    informer.start();
    await informer.waitForSync();
    expect(fake.starts).toBe(1);

    fake.behaviours.push('watch-fails', 'watch-fails', 'watch-fails');
    fake.emit('error', new Error('watch closed: 500'));
    for (const delay of [1000, 2000, 4000, 4000]) {
      const starts = fake.starts;
      clock.advance(delay - 1);
      await settle();
      expect(fake.starts, `restarted before ${delay} ms`).toBe(starts);
      clock.advance(1);
      await settle();
      expect(fake.starts).toBe(starts + 1);
    }
    expect(messages('informer list/watch failed; restarting').map((l) => l.fields.restartInMs))
      .toEqual([1000, 2000, 4000, 4000]);

    // The last restart was healthy, so the next failure starts over at the base delay.
    fake.emit('error', new Error('watch closed again'));
    expect(messages('informer list/watch failed; restarting').at(-1)?.fields.restartInMs).toBe(1000);
    expect(informer.hasSynced()).toBe(true);
  });

  it('syncs only once a list succeeds, restarting after a failed list and a rejected start', async () => {
    const { clock, informer, fake } = setup();
    fake.behaviours.push('list-fails', 'rejects');
    informer.start();
    const synced = informer.waitForSync();
    await settle();
    expect(informer.hasSynced()).toBe(false);

    clock.advance(1000);
    await settle();
    expect(fake.starts).toBe(2);
    expect(await peek(synced)).toBe(PENDING);

    clock.advance(2000);
    await synced;
    expect(fake.starts).toBe(3);
    expect(informer.list()).toHaveLength(2);
  });

  it('stop() cancels a pending restart and ignores errors afterwards', async () => {
    const { clock, informer, fake, messages } = setup();
    informer.start();
    await informer.waitForSync();
    fake.emit('error', new Error('watch failed'));
    expect(clock.pendingTimers).toBe(1);

    await informer.stop();
    expect(fake.stops).toBe(1);
    expect(clock.pendingTimers).toBe(0);
    fake.emit('error', new Error('AbortError from our own abort'));
    clock.advance(3600_000);
    await settle();
    expect(fake.starts).toBe(1);
    expect(messages('informer list/watch failed; restarting')).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
    expect(() => { informer.start(); }).toThrow(/cannot be started after stop/);
  });

  it('stop() cancels a reconnect delay of the underlying ListWatch, which then never resumes', async () => {
    const { clock, informer, fake } = setup();
    informer.start();
    await informer.waitForSync();
    const reconnect = fake.args.delay(1000);
    expect(clock.pendingTimers).toBe(1);

    await informer.stop();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(1000);
    expect(await peek(reconnect)).toBe(PENDING);
    expect(fake.args.isStopped()).toBe(true);

    const afterStop = fake.args.delay(5);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(5);
    expect(await peek(afterStop)).toBe(PENDING);
  });

  it('stops delivering events after stop()', async () => {
    const { informer, fake, events } = setup();
    informer.start();
    await informer.waitForSync();
    await informer.stop();
    fake.watchEvent('add', configMap('late'));
    expect(events.map(([, obj]) => obj.metadata?.name)).toEqual(['a', 'b']);
  });

  it('waitForSync() rejects when the informer stops first or the signal aborts', async () => {
    const first = setup();
    first.fake.behaviours.push('list-fails');
    first.informer.start();
    const waiting = first.informer.waitForSync();
    await first.informer.stop();
    await expect(waiting).rejects.toThrow(/stopped before its cache synced/);
    await expect(first.informer.waitForSync()).rejects.toThrow(/is stopped/);

    const second = setup();
    second.fake.behaviours.push('list-fails');
    second.informer.start();
    const abort = new AbortController();
    const aborted = second.informer.waitForSync(abort.signal);
    abort.abort(new Error('sync timeout'));
    await expect(aborted).rejects.toThrow('sync timeout');
    await second.informer.stop();
  });
});

/** A minimal apiserver that hands each watch request to the test. */
async function fakeApiserver() {
  const watches = new Channel<{ req: IncomingMessage; res: ServerResponse; closed: Promise<void> }>();
  const server = createServer((req, res) => {
    const closed = new Promise<void>((resolve) => res.on('close', resolve));
    watches.push({ req, res, closed });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'nobody' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'nobody' }],
    currentContext: 'fake',
  });
  const close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => { resolve(); });
  });
  return { kc, watches, close };
}

function watchLine(type: string, obj: KubernetesObject): string {
  return `${JSON.stringify({ type, object: obj })}\n`;
}

describe('Informer over client-node ListWatch (fake apiserver)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function realSetup() {
    const apiserver = await fakeApiserver();
    const clock = new ManualClock();
    const { log, lines, messages } = recordingLogger();
    const adds = new Channel<KubernetesObject>();
    let lists = 0;
    const informer = new Informer<KubernetesObject>({
      kc: apiserver.kc,
      path: '/api/v1/namespaces/ns/configmaps',
      labelSelector: 'app=demo',
      list: () => {
        lists++;
        return Promise.resolve(listOf([configMap('a')], '10'));
      },
      onAdd: (obj) => { adds.push(obj); },
      log,
      clock,
      restartBaseDelayMs: 1000,
    });
    cleanups.push(async () => {
      await informer.stop();
      await apiserver.close();
    });
    return { ...apiserver, clock, informer, lines, messages, adds, lists: () => lists };
  }

  it('restarts after the watch fails, resuming from the last resourceVersion, and stop() closes the watch', async () => {
    const { clock, informer, watches, lines, messages, adds, lists } = await realSetup();
    informer.start();
    expect((await adds.next()).metadata?.name).toBe('a');

    const first = await watches.next();
    const url = new URL(first.req.url ?? '', 'http://x');
    expect(url.searchParams.get('watch')).toBe('true');
    expect(url.searchParams.get('resourceVersion')).toBe('10');
    expect(url.searchParams.get('labelSelector')).toBe('app=demo');
    first.res.writeHead(500).end();
    while ((await lines.next()).msg !== 'informer list/watch failed; restarting') { /* wait for the failure */ }
    await informer.waitForSync();

    clock.advance(1000);
    const second = await watches.next();
    expect(new URL(second.req.url ?? '', 'http://x').searchParams.get('resourceVersion')).toBe('10');
    expect(lists()).toBe(1);
    second.res.writeHead(200, { 'content-type': 'application/json' });
    second.res.write(watchLine('ADDED', configMap('b', '11')));
    expect((await adds.next()).metadata?.name).toBe('b');
    expect(informer.get('ns', 'b')?.metadata?.resourceVersion).toBe('11');

    await informer.stop();
    await second.closed;
    await settle();
    expect(watches.items).toHaveLength(2);
    expect(messages('informer list/watch failed; restarting')).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('aborts a watch that was still connecting when stop() was called', async () => {
    const { clock, informer, watches, messages } = await realSetup();
    informer.start();
    const first = await watches.next();
    await informer.stop();

    first.res.writeHead(200, { 'content-type': 'application/json' });
    first.res.flushHeaders();
    await first.closed;
    await settle();
    expect(watches.items).toHaveLength(1);
    expect(messages('informer list/watch failed; restarting')).toHaveLength(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('stop() during the reconnect delay after a server-side close opens no new watch', async () => {
    const { clock, informer, watches, lines } = await realSetup();
    informer.start();
    const connects = async () => { while ((await lines.next()).msg !== 'informer connecting') { /* skip */ } };
    await connects();

    // ListWatch reconnects at once after the first normal close, then waits 1 s after the next.
    const first = await watches.next();
    first.res.writeHead(200).end();
    await connects();
    const second = await watches.next();
    second.res.writeHead(200).end();
    await connects();
    expect(clock.pendingTimers).toBe(1);

    await informer.stop();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(60_000);
    await settle();
    expect(watches.items).toHaveLength(2);
  });
});
