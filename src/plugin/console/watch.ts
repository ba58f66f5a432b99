/**
 * The live runs list: list + watch of AgentRuns as the user, in every namespace they may list
 * runs in, fanned out to the browser as Server-Sent Events. A watch the apiserver ends (timeout,
 * 410 Gone) is restarted from a fresh list; the browser sees a snapshot, then changes.
 */
import { CoreV1Api, CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../api/group.ts';
import { describeError, httpStatus } from '../api-errors.ts';
import { toRun, type Kube } from '../kube.ts';
import { summarise, type RunSummary } from './data.ts';

const PLURAL = 'agentruns';
/** Namespaces probed one by one when runs cannot be listed cluster-wide (each probe is one request). */
const MAX_PROBED_NAMESPACES = 100;
/** Pause before a watch that ended is listed and started again. */
const RESTART_DELAY_MS = 500;

/** A change the browser is told about. */
export type RunChange =
  | { readonly type: 'snapshot'; readonly runs: readonly RunSummary[]; readonly scope: Scope }
  | { readonly type: 'upsert'; readonly run: RunSummary }
  | { readonly type: 'delete'; readonly namespace: string; readonly name: string };

/** Where the console looks: every namespace, or the ones the user may list runs in. */
export interface Scope {
  readonly allNamespaces: boolean;
  readonly namespaces: readonly string[];
  /** Why the scope is narrower than every namespace, in the apiserver's words. */
  readonly notes: readonly string[];
}

type Listener = (change: RunChange) => void;
interface RawList {
  items?: unknown[];
  metadata?: { resourceVersion?: string };
}

/**
 * Keeps the live list of runs the user may see (list, then watch: cluster-wide or per namespace)
 * and tells subscribers of every change.
 */
export class RunWatcher {
  private readonly runs = new Map<string, RunSummary>();
  private readonly listeners = new Set<Listener>();
  private readonly aborts = new Map<string, AbortController>();
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private stopped = false;
  private scopeValue: Scope = { allNamespaces: false, namespaces: [], notes: [] };

  private readonly kube: Kube;

  constructor(kube: Kube) {
    this.kube = kube;
    this.custom = kube.config.makeApiClient(CustomObjectsApi);
    this.core = kube.config.makeApiClient(CoreV1Api);
  }

  get scope(): Scope {
    return this.scopeValue;
  }

  /** Every run seen, in namespace/name order. */
  snapshot(): RunSummary[] {
    return [...this.runs.values()]
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Finds the scope (every namespace if the user may list runs cluster-wide, else each namespace
   * they may list runs in, else the kubeconfig's namespace) and starts its watches.
   */
  async start(): Promise<void> {
    const notes: string[] = [];
    if (await this.mayList(undefined, notes)) {
      this.scopeValue = { allNamespaces: true, namespaces: [], notes };
      await this.run(undefined);
      return;
    }
    let candidates: string[];
    try {
      candidates = (await this.core.listNamespace()).items.map((n) => n.metadata?.name ?? '').filter(Boolean);
    } catch (error) {
      notes.push(`namespaces not listable (${describeError(error)}): `
        + `showing ${this.kube.namespace} only; use -n for another`);
      candidates = [this.kube.namespace];
    }
    if (this.kube.flags.namespace !== undefined) candidates = [this.kube.flags.namespace];
    if (candidates.length > MAX_PROBED_NAMESPACES) {
      notes.push(
        `${candidates.length} namespaces: only the first ${MAX_PROBED_NAMESPACES} were checked; use -n for another`,
      );
      candidates = candidates.slice(0, MAX_PROBED_NAMESPACES);
    }
    const allowed: string[] = [];
    for (const ns of candidates) if (await this.mayList(ns, notes)) allowed.push(ns);
    this.scopeValue = { allNamespaces: false, namespaces: allowed, notes };
    await Promise.all(allowed.map((ns) => this.run(ns)));
  }

  stop(): void {
    this.stopped = true;
    for (const abort of this.aborts.values()) abort.abort();
    this.aborts.clear();
    this.listeners.clear();
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private async mayList(namespace: string | undefined, notes: string[]): Promise<boolean> {
    try {
      await this.list(namespace, 1);
      return true;
    } catch (error) {
      if (httpStatus(error) !== 403) throw error;
      if (namespace !== undefined && this.kube.flags.namespace !== undefined) notes.push(describeError(error));
      return false;
    }
  }

  private async list(namespace: string | undefined, limit?: number): Promise<RawList> {
    const base = { group: GROUP, version: VERSION, plural: PLURAL, ...(limit !== undefined ? { limit } : {}) };
    return (namespace === undefined
      ? await this.custom.listClusterCustomObject(base)
      : await this.custom.listNamespacedCustomObject({ ...base, namespace })) as RawList;
  }

  /** Lists `namespace` (undefined: all), replaces what is known of it, then watches from that list. */
  private async run(namespace: string | undefined): Promise<void> {
    if (this.stopped) return;
    const key = namespace ?? '*';
    const list = await this.list(namespace);
    const fresh = new Map<string, RunSummary>();
    for (const raw of list.items ?? []) {
      const s = parse(raw);
      if (s) fresh.set(`${s.namespace}/${s.name}`, s);
    }
    for (const k of [...this.runs.keys()]) {
      if (namespace === undefined || k.startsWith(`${namespace}/`)) this.runs.delete(k);
    }
    for (const [k, v] of fresh) this.runs.set(k, v);
    this.emit({ type: 'snapshot', runs: this.snapshot(), scope: this.scopeValue });
    const path = `/apis/${GROUP}/${VERSION}${namespace === undefined ? '' : `/namespaces/${namespace}`}/${PLURAL}`;
    const restart = (): void => {
      if (this.stopped) return;
      setTimeout(() => {
        this.run(namespace).catch(() => {
          restart();
        });
      }, RESTART_DELAY_MS).unref();
    };
    const query = { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true };
    const abort = await new Watch(this.kube.config).watch(path, query, (type: string, obj: unknown) => {
      this.onEvent(type, obj);
    }, () => {
      restart();
    });
    // stop() may have run while the watch was starting.
    if (this.isStopped()) abort.abort();
    else this.aborts.set(key, abort);
  }

  private onEvent(type: string, obj: unknown): void {
    if (type === 'BOOKMARK' || type === 'ERROR') return;
    const meta = (obj as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
    if (type === 'DELETED') {
      if (meta?.namespace === undefined || meta.name === undefined) return;
      this.runs.delete(`${meta.namespace}/${meta.name}`);
      this.emit({ type: 'delete', namespace: meta.namespace, name: meta.name });
      return;
    }
    const s = parse(obj);
    if (!s) return;
    this.runs.set(`${s.namespace}/${s.name}`, s);
    this.emit({ type: 'upsert', run: s });
  }

  private emit(change: RunChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/** A run's summary; a run this plugin cannot parse (newer operator) is left out rather than breaking the list. */
function parse(raw: unknown): RunSummary | undefined {
  try {
    return summarise(toRun(raw));
  } catch {
    return undefined;
  }
}
