/**
 * Wires the operator: informers for AgentRuns, AgentTools and tool pods feed one controller whose
 * reconcile function is the AgentRunReconciler. The only place that knows every adapter.
 */
import * as k8s from '@kubernetes/client-node';
import type { AgentRun } from './api/agent-run.ts';
import type { AgentTool } from './api/agent-tool.ts';
import { Label, MANAGED_BY } from './api/conditions.ts';
import { GROUP, VERSION } from './api/group.ts';
import type { Config } from './config.ts';
import { Controller, Informer, Manager, objectKey, type Logger, type Selectors } from './controller/index.ts';
import { KubeEventSink } from './adapters/kube/events.ts';
import { KubeJournalStore } from './adapters/kube/journal.ts';
import { KubePodClient } from './adapters/kube/pods.ts';
import { KubeRunWriter } from './adapters/kube/runs.ts';
import { KubeSecretReader } from './adapters/kube/secrets.ts';
import { AnthropicModelClient } from './adapters/model/anthropic.ts';
import { ModelCalls } from './adapters/model/calls.ts';
import type { AgentRunObject, Caches } from './ports.ts';
import { AgentRunReconciler } from './reconciler/agent-run-reconciler.ts';
import { PodMemory } from './reconciler/pod-memory.ts';

export interface Operator {
  readonly manager: Manager;
  readonly controller: Controller;
  readonly modelCalls: ModelCalls;
  start(): Promise<void>;
  stop(): Promise<void>;
}

type Obj = k8s.KubernetesObject;

export function loadKubeConfig(path: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** Builds the operator from its configuration; nothing runs until start(). */
export function createOperator(config: Config, log: Logger, kc = loadKubeConfig(config.kubeconfig)): Operator {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const manager = new Manager({ log, drainTimeoutMs: config.drainTimeoutMs });
  const namespaces = config.namespaces.length > 0 ? config.namespaces : [undefined];
  const podMemory = new PodMemory();
  const modelCalls = new ModelCalls(new AnthropicModelClient({ timeoutMs: config.modelTimeoutMs }));

  // The controller needs the caches the informers fill, and the informers enqueue into it.
  const controllerRef: { current?: Controller } = {};
  const enqueue = (key: string): void => { controllerRef.current?.enqueue(key); };
  const enqueueOwner = (obj: Obj): void => {
    const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === 'AgentRun' && o.controller);
    if (owner && obj.metadata?.namespace) enqueue(`${obj.metadata.namespace}/${owner.name}`);
  };

  const customList = (plural: string, ns: string | undefined) => async (s: Selectors) => (ns
    ? custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace: ns, ...s })
    : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural, ...s })) as Promise<k8s.KubernetesListObject<Obj>>;
  const customPath = (plural: string, ns: string | undefined) => `/apis/${GROUP}/${VERSION}${ns ? `/namespaces/${ns}` : ''}/${plural}`;

  const runInformers = namespaces.map((ns) => manager.addInformer(new Informer<Obj>({
    kc, log, name: `agentruns${ns ? `/${ns}` : ''}`, path: customPath('agentruns', ns), list: customList('agentruns', ns),
    onEvent: (_type, obj) => { enqueue(objectKey(obj)); },
  })));
  const toolInformers = namespaces.map((ns) => manager.addInformer(new Informer<Obj>({
    kc, log, name: `agenttools${ns ? `/${ns}` : ''}`, path: customPath('agenttools', ns), list: customList('agenttools', ns),
    // An AgentTool appearing can unblock runs waiting for it.
    onEvent: (_type, obj) => {
      for (const inf of runInformers) for (const run of inf.list(obj.metadata?.namespace)) enqueue(objectKey(run));
    },
  })));
  const podSelector = `${Label.managedBy}=${MANAGED_BY},${Label.component}=tool`;
  namespaces.forEach((ns) => manager.addInformer(new Informer<k8s.V1Pod>({
    kc, log, name: `pods${ns ? `/${ns}` : ''}`, path: ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods', labelSelector: podSelector,
    list: (s) => (ns ? core.listNamespacedPod({ namespace: ns, ...s }) : core.listPodForAllNamespaces(s)),
    onAdd: (pod) => { podMemory.record(pod); enqueueOwner(pod); },
    onUpdate: (pod) => { podMemory.record(pod); enqueueOwner(pod); },
    onDelete: (pod) => { podMemory.vanish(pod); enqueueOwner(pod); },
  })));

  const find = (informers: readonly Informer<Obj>[], namespace: string, name: string): Obj | undefined => {
    for (const inf of informers) {
      const hit = inf.get(namespace, name);
      if (hit) return hit;
    }
    return undefined;
  };
  const caches: Caches = {
    run: (namespace, name) => find(runInformers, namespace, name) as AgentRunObject | undefined,
    agentTool: (namespace, name) => find(toolInformers, namespace, name) as AgentTool | undefined,
    podsOf: () => [],
  };

  const reconciler = new AgentRunReconciler({
    caches,
    runs: new KubeRunWriter(custom),
    journal: new KubeJournalStore(core),
    pods: new KubePodClient(core),
    events: new KubeEventSink(core),
    secrets: new KubeSecretReader(core),
    modelCalls,
    podMemory,
    clock: { now: () => Date.now() },
    log,
    enqueue,
    statusByteBudget: config.statusByteBudget,
  });
  const controller = manager.addController(new Controller({
    name: 'agentrun', reconcile: reconciler.reconcile, workers: config.workers, log,
    queue: { baseDelayMs: 200, maxDelayMs: 60_000 },
  }));
  controllerRef.current = controller;

  return {
    manager,
    controller,
    modelCalls,
    start: () => manager.start(),
    stop: async () => { modelCalls.abortAll(); await manager.stop(); },
  };
}

export type { AgentRun };
