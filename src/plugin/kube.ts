/**
 * The cluster as the plugin sees it: the current kubeconfig context (or the one given with
 * --kubeconfig / --context), its namespace unless -n says otherwise, and the few API calls the
 * commands make. Every request is made as the kubeconfig's user: the apiserver authorises it.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
} from '@kubernetes/client-node';
import { JOURNAL_PLURAL, type AgentRunJournalObject } from '../api/agent-run-journal.ts';
import { agentRun, type AgentRun } from '../api/agent-run.ts';
import { GROUP, VERSION } from '../api/group.ts';
import type { GlobalFlags } from './args.ts';
import { httpStatus } from './api-errors.ts';
import { PluginError } from './errors.ts';

const PLURAL = 'agentruns';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** An AgentRun as read from the cluster: parsed, with its name and namespace known. */
export type Run = AgentRun & { metadata: { name: string; namespace: string } };

/** The plugin's view of the cluster: runs, journals, pods and Events in a namespace, as the kubeconfig's user. */
export class Kube {
  /** The namespace commands work in: -n, else the context's, else default. */
  readonly namespace: string;
  /** The apiserver's URL, for messages. */
  readonly server: string;
  readonly flags: GlobalFlags;
  /** The loaded kubeconfig, for watches (the console); requests still go out as its user. */
  readonly config: KubeConfig;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  private constructor(kc: KubeConfig, flags: GlobalFlags) {
    this.flags = flags;
    this.config = kc;
    const context = kc.getContextObject(kc.getCurrentContext());
    this.namespace = flags.namespace ?? (context?.namespace || 'default');
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new PluginError(`the kubeconfig context "${kc.getCurrentContext()}" names no cluster`);
    this.server = cluster.server;
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Loads the kubeconfig as kubectl does: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster. */
  static load(flags: GlobalFlags): Kube {
    const kc = new KubeConfig();
    try {
      if (flags.kubeconfig !== undefined) kc.loadFromFile(flags.kubeconfig);
      else kc.loadFromDefault();
    } catch (error) {
      const where = flags.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config';
      throw new PluginError(
        `cannot load the kubeconfig ${where}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (flags.context !== undefined) {
      if (!kc.getContexts().some((c) => c.name === flags.context)) {
        const contexts = kc.getContexts().map((c) => c.name).join(', ') || 'none';
        throw new PluginError(`context "${flags.context}" does not exist in the kubeconfig (contexts: ${contexts})`);
      }
      kc.setCurrentContext(flags.context);
    }
    return new Kube(kc, flags);
  }

  /** The same user and cluster, working in `namespace` (the console decides on runs of any namespace). */
  inNamespace(namespace: string): Kube {
    return namespace === this.namespace ? this : new Kube(this.config, { ...this.flags, namespace });
  }

  /** One run; a missing run is an error that says where it was looked for. */
  async getRun(name: string, namespace = this.namespace): Promise<Run> {
    let raw: unknown;
    try {
      raw = await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace,
        name });
    } catch (error) {
      if (httpStatus(error) === 404) throw new PluginError(`agentrun "${name}" not found in namespace "${namespace}"`);
      throw error;
    }
    return toRun(raw);
  }

  /** The runs of a namespace, or of every namespace. */
  async listRuns(namespace: string | undefined): Promise<Run[]> {
    const list = (namespace === undefined
      ? await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
      : await this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL,
        namespace })) as { items?: unknown[] };
    return (list.items ?? []).map(toRun);
  }

  /**
   * Sets annotations on a run with a JSON merge patch, guarded by the resourceVersion the caller
   * decided on (a 409 means the run changed since). The admission policies see this request.
   */
  async annotateRun(run: Run, annotations: Record<string, string>): Promise<Run> {
    const patched: unknown = await this.custom.patchNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: run.metadata.namespace,
      name: run.metadata.name,
      body: { metadata: { resourceVersion: run.metadata.resourceVersion, annotations } },
    }, mergePatch);
    return toRun(patched);
  }

  /** A journal object, or undefined when it does not exist. */
  async journal(namespace: string, name: string): Promise<AgentRunJournalObject | undefined> {
    try {
      return await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: JOURNAL_PLURAL,
        namespace, name }) as AgentRunJournalObject;
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      throw error;
    }
  }

  /** A container's log through the apiserver's pod log API, or undefined when the pod is gone. */
  async podLog(namespace: string, pod: string, container: string): Promise<string | undefined> {
    try {
      return await this.core.readNamespacedPodLog({ namespace, name: pod, container });
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      throw error;
    }
  }

  /** Events about one run (this incarnation of its name), oldest first. */
  async runEvents(run: Run): Promise<CoreV1Event[]> {
    const selector = [
      'involvedObject.kind=AgentRun',
      `involvedObject.name=${run.metadata.name}`,
      ...(run.metadata.uid ? [`involvedObject.uid=${run.metadata.uid}`] : []),
    ].join(',');
    const list = await this.core.listNamespacedEvent({ namespace: run.metadata.namespace, fieldSelector: selector });
    // Timestamps have second precision: the resourceVersion orders events within a second.
    const rv = (e: CoreV1Event): number => Number(e.metadata.resourceVersion ?? 0) || 0;
    return [...list.items].sort((a, b) => eventTime(a) - eventTime(b) || rv(a) - rv(b));
  }
}

/** When an event last happened, in ms. */
export function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}

/** Parses an AgentRun read from the apiserver (get, list or watch); a run it cannot understand is a PluginError. */
export function toRun(raw: unknown): Run {
  const parsed = agentRun.safeParse(raw);
  const meta = (raw as { metadata?: { name?: string; namespace?: string } } | null)?.metadata;
  const label = `${meta?.namespace ?? '?'}/${meta?.name ?? '?'}`;
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const why = issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid';
    throw new PluginError(`agentrun ${label} does not look like an agentrun.dev/${VERSION} AgentRun this plugin `
      + `understands (${why}); is the plugin older than the operator?`);
  }
  const { name, namespace } = parsed.data.metadata;
  if (name === undefined || namespace === undefined)
    throw new PluginError(`agentrun ${label} has no name or namespace`);
  return { ...parsed.data, metadata: { ...parsed.data.metadata, name, namespace } };
}
