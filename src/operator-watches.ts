/**
 * The AgentRun controller's informers — AgentRuns, AgentTools, ModelEndpoints and tool pods in
 * each watched namespace — and which runs each change concerns (`watchRuns`). Part of the
 * composition root (src/operator.ts): it knows the Kubernetes client, nothing about decisions.
 */
import * as k8s from '@kubernetes/client-node';
import type { AgentTool } from './api/agent-tool.ts';
import { Label, MANAGED_BY } from './api/conditions.ts';
import { GROUP, VERSION } from './api/group.ts';
import { MODEL_ENDPOINT_PLURAL, type ModelEndpoint } from './api/model-endpoint.ts';
import { Informer, objectKey, type Controller, type Logger, type Manager, type Selectors } from './controller/index.ts';
import type { RunStatusObserver } from './observability/metrics.ts';
import type { AgentRunObject, Caches } from './ports.ts';
import type { PodMemory } from './reconciler/memory/pod-memory.ts';

type Obj = k8s.KubernetesObject;

/** Lists a custom resource in a namespace, or in all of them. */
export type CustomList = (plural: string,
  ns: string | undefined) => (s: Selectors) => Promise<k8s.KubernetesListObject<Obj>>;

/** The informers the AgentRun controller reads from, once per watched namespace. */
export interface RunInformers {
  readonly runs: readonly Informer<Obj>[];
  readonly tools: readonly Informer<Obj>[];
  readonly endpoints: readonly Informer<Obj>[];
  readonly pods: readonly Informer<k8s.V1Pod>[];
  readonly customList: CustomList;
  readonly customPath: (plural: string, ns: string | undefined) => string;
}

/** What the informers need: the manager that runs them and where to report what they see. */
export interface RunInformerOptions {
  readonly manager: Manager;
  readonly kc: k8s.KubeConfig;
  readonly log: Logger;
  readonly namespaces: readonly (string | undefined)[];
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  /** Remembers tool pods, including deleted ones (the cache forgets them). */
  readonly podMemory: PodMemory;
  /** Counts runs by phase for metrics. */
  readonly statuses: RunStatusObserver;
}

/** Adds the informers to the manager (they start with it); nothing is enqueued until watchRuns. */
export function addRunInformers(o: RunInformerOptions): RunInformers {
  const { manager, kc, log, core, custom } = o;
  const customList: CustomList = (plural, ns) => async (s) =>
    (ns
      ? custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace: ns, ...s })
      : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural, ...s })) as Promise<
        k8s.KubernetesListObject<Obj>
      >;
  const customPath = (plural: string, ns: string | undefined): string =>
    `/apis/${GROUP}/${VERSION}${ns ? `/namespaces/${ns}` : ''}/${plural}`;
  const custom$ = (plural: string, ns: string | undefined, onEvent?: (type: string, obj: Obj) => void): Informer<Obj> =>
    manager.addInformer(new Informer<Obj>({
      kc,
      log,
      name: `${plural}${ns ? `/${ns}` : ''}`,
      path: customPath(plural, ns),
      list: customList(plural, ns),
      ...(onEvent ? { onEvent } : {}),
    }));
  const podSelector = `${Label.managedBy}=${MANAGED_BY},${Label.component}=tool`;
  return {
    runs: o.namespaces.map((ns) => custom$('agentruns', ns, (type, obj) => {
      if (type === 'delete') o.statuses.forget(obj.metadata?.uid);
      else o.statuses.observe(obj);
    })),
    tools: o.namespaces.map((ns) => custom$('agenttools', ns)),
    endpoints: o.namespaces.map((ns) => custom$(MODEL_ENDPOINT_PLURAL, ns)),
    pods: o.namespaces.map((ns) => manager.addInformer(new Informer<k8s.V1Pod>({
      kc,
      log,
      name: `pods${ns ? `/${ns}` : ''}`,
      path: ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods',
      labelSelector: podSelector,
      list: (s) => (ns ? core.listNamespacedPod({ namespace: ns, ...s }) : core.listPodForAllNamespaces(s)),
      // Recorded before the owner is enqueued (handlers run in order): the reconcile sees the change.
      onAdd: (pod) => {
        o.podMemory.record(pod);
      },
      onUpdate: (pod) => {
        o.podMemory.record(pod);
      },
      onDelete: (pod) => {
        o.podMemory.vanish(pod);
      },
    }))),
    customList,
    customPath,
  };
}

/** The keys of every run in a namespace (all namespaces when undefined). */
export function runsIn(informers: RunInformers, namespace: string | undefined): string[] {
  return informers.runs.flatMap((inf) => inf.list(namespace).map((run) => objectKey(run)));
}

/**
 * Makes the controller reconcile the runs each change concerns: the run itself, the owner of a
 * tool pod, and every run of the namespace when an AgentTool or ModelEndpoint appears or changes
 * (it can unblock runs waiting for it).
 */
export function watchRuns(controller: Controller, informers: RunInformers): void {
  for (const inf of informers.runs) controller.watch(inf, (run) => [objectKey(run)]);
  for (const inf of [...informers.tools, ...informers.endpoints]) {
    controller.watch(inf, (obj) => runsIn(informers, obj.metadata?.namespace));
  }
  for (const inf of informers.pods) controller.watch(inf, ownerKeys);
}

/** The caches the reconciler reads, over the informers. */
export function runCaches(informers: RunInformers, mcpServer: NonNullable<Caches['mcpServer']>): Caches {
  const find = (list: readonly Informer<Obj>[], namespace: string, name: string): Obj | undefined => {
    for (const inf of list) {
      const hit = inf.get(namespace, name);
      if (hit) return hit;
    }
    return undefined;
  };
  return {
    run: (namespace, name) => find(informers.runs, namespace, name) as AgentRunObject | undefined,
    agentTool: (namespace, name) => find(informers.tools, namespace, name) as AgentTool | undefined,
    modelEndpoint: (namespace, name) => find(informers.endpoints, namespace, name) as ModelEndpoint | undefined,
    mcpServer,
  };
}

/** The key of the AgentRun that controls `obj`, if any. */
function ownerKeys(obj: Obj): string[] {
  const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === 'AgentRun' && o.controller);
  return owner && obj.metadata?.namespace ? [`${obj.metadata.namespace}/${owner.name}`] : [];
}
