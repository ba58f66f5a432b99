/**
 * Wires the operator: informers for AgentRuns, AgentTools and tool pods feed one controller whose
 * reconcile function is the AgentRunReconciler. The only place that knows every adapter.
 *
 * Start-up order: the metrics/health server, then the informers (caches synced = ready), then,
 * with leader election, the controllers only once this process holds the Lease (a standby keeps
 * warm caches and takes over on the leader's release or the lease's expiry).
 */
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AgentRun } from './api/agent-run.ts';
import type { AgentTool } from './api/agent-tool.ts';
import { Label, MANAGED_BY } from './api/conditions.ts';
import { GROUP, VERSION } from './api/group.ts';
import type { Config } from './config.ts';
import { Controller, Informer, KubeLeaseLock, LeaderElector, Manager, objectKey, type Logger, type Selectors } from './controller/index.ts';
import { KubeEventSink } from './adapters/kube/events.ts';
import { loadPooledKubeConfig } from './adapters/kube/kubeconfig.ts';
import { KubeJournalStore } from './adapters/kube/journal.ts';
import { KubeAccessReviewer } from './adapters/kube/access.ts';
import { MODEL_ENDPOINT_PLURAL, type ModelEndpoint } from './api/model-endpoint.ts';
import { KubePodClient } from './adapters/kube/pods.ts';
import { KubeRunWriter } from './adapters/kube/runs.ts';
import { KubeSecretReader } from './adapters/kube/secrets.ts';
import { AnthropicModelClient } from './adapters/model/anthropic.ts';
import { MCPSessionClient } from './adapters/mcp/calls.ts';
import { KubeMCPServerStatusWriter } from './adapters/kube/mcp-servers.ts';
import { MCPCalls } from './reconciler/memory/mcp-calls.ts';
import { ModelCalls } from './reconciler/memory/model-calls.ts';
import { RunMemory } from './reconciler/memory/run-memory.ts';
import { addMCPServerController } from './reconciler/mcp-server-controller.ts';
import type { AgentRunObject, Caches } from './ports.ts';
import { AgentRunReconciler } from './reconciler/agent-run-reconciler.ts';
import { NO_TRACING, type RunTracer } from './observability/tracing/index.ts';
import { PodMemory } from './reconciler/memory/pod-memory.ts';
import { startObservabilityServer, type ObservabilityServer, type Readiness } from './observability/http-server.ts';
import { OperatorMetrics, RunStatusObserver, type ObservedRun } from './observability/metrics.ts';

export interface Operator {
  readonly manager: Manager;
  readonly controller: Controller;
  readonly modelCalls: ModelCalls;
  readonly metrics: OperatorMetrics;
  /** Present with --leader-elect. */
  readonly elector: LeaderElector | undefined;
  /**
   * Starts serving /metrics, /healthz and /readyz, syncs the caches, then starts the controllers
   * (with leader election: once the lease is acquired, possibly long after this resolves).
   */
  start(): Promise<void>;
  /** Drains the controllers, releases the lease, closes the server. */
  stop(): Promise<void>;
  readiness(): Readiness;
  /** The port /metrics is served on, once started (undefined when disabled). */
  metricsPort(): number | undefined;
}

export interface OperatorHooks {
  /** Leadership was lost: the process must exit (non-zero) so it restarts with a clean memory. */
  readonly onLostLeadership?: (reason: string) => void;
  /** Exports run traces (createRunTracer); flushed on stop. */
  readonly tracer?: RunTracer;
}

/** Where Kubernetes mounts the pod's namespace. */
const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The Lease's namespace: the flag, else the pod's own namespace, else `default`. */
export function leaseNamespace(config: Config, readNamespaceFile = () => readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8')): string {
  if (config.leaderElectionNamespace) return config.leaderElectionNamespace;
  try {
    const ns = readNamespaceFile().trim();
    if (ns) return ns;
  } catch { /* not in a pod */ }
  return 'default';
}

/** A unique candidate identity: the pod name (or host name) plus a random suffix, like client-go. */
export function candidateIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.POD_NAME || hostname()}_${randomBytes(4).toString('hex')}`;
}

type Obj = k8s.KubernetesObject;

/** The operator's kubeconfig: a file, else in-cluster, else ~/.kube/config; connections pooled. */
export function loadKubeConfig(path: string | undefined): k8s.KubeConfig {
  return loadPooledKubeConfig(path);
}

/** Builds the operator from its configuration; nothing runs until start(). */
export function createOperator(config: Config, log: Logger, kc = loadKubeConfig(config.kubeconfig), hooks: OperatorHooks = {}): Operator {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const manager = new Manager({ log, drainTimeoutMs: config.drainTimeoutMs });
  const namespaces = config.namespaces.length > 0 ? config.namespaces : [undefined];
  // One memory per run for everything this process remembers of it, forgotten in one place.
  const memory = new RunMemory();
  const podMemory = new PodMemory(memory);
  const metrics = new OperatorMetrics();
  const modelCalls = new ModelCalls(new AnthropicModelClient({ timeoutMs: config.modelTimeoutMs, maxResponseBytes: config.maxModelResponseBytes }), (outcome, ms) => {
    metrics.modelCallDuration.observe({ outcome }, ms / 1000);
  }, { maxConcurrent: config.maxConcurrentModelCalls, memory });
  const secrets = new KubeSecretReader(core);
  const mcpCalls = new MCPCalls(new MCPSessionClient(secrets), (server, outcome, ms) => {
    metrics.mcpCallDuration.observe({ server, outcome }, ms / 1000);
  }, memory);
  const electorRef: { current?: LeaderElector } = {};
  const reconciling = (): boolean => electorRef.current === undefined ? manager.hasStartedControllers() : electorRef.current.isLeader();
  const statuses = new RunStatusObserver(metrics, log, reconciling);

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
    onEvent: (type, obj) => {
      enqueue(objectKey(obj));
      if (type === 'delete') statuses.forget(obj.metadata?.uid);
      else statuses.observe(obj);
    },
  })));
  const toolInformers = namespaces.map((ns) => manager.addInformer(new Informer<Obj>({
    kc, log, name: `agenttools${ns ? `/${ns}` : ''}`, path: customPath('agenttools', ns), list: customList('agenttools', ns),
    // An AgentTool appearing can unblock runs waiting for it.
    onEvent: (_type, obj) => {
      for (const inf of runInformers) for (const run of inf.list(obj.metadata?.namespace)) enqueue(objectKey(run));
    },
  })));
  const endpointInformers = namespaces.map((ns) => manager.addInformer(new Informer<Obj>({
    kc, log, name: `modelendpoints${ns ? `/${ns}` : ''}`, path: customPath(MODEL_ENDPOINT_PLURAL, ns), list: customList(MODEL_ENDPOINT_PLURAL, ns),
    // A ModelEndpoint appearing can unblock runs waiting for it.
    onEvent: (_type, obj) => {
      for (const inf of runInformers) for (const run of inf.list(obj.metadata?.namespace)) enqueue(objectKey(run));
    },
  })));
  const mcp = addMCPServerController({
    manager, kc, log, namespaces, customPath, customList, status: new KubeMCPServerStatusWriter(custom), secrets, workers: config.workers,
    // An MCPServer listing its tools can unblock runs waiting for it.
    onChange: (namespace) => { for (const inf of runInformers) for (const run of inf.list(namespace)) enqueue(objectKey(run)); },
    onReconcileDone: (durationMs, outcome) => {
      metrics.reconcileDuration.observe({ controller: 'mcpserver', outcome }, durationMs / 1000);
      if (outcome === 'error' || outcome === 'terminal') metrics.reconcileErrors.inc({ controller: 'mcpserver', outcome });
    },
  });
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
    modelEndpoint: (namespace, name) => find(endpointInformers, namespace, name) as ModelEndpoint | undefined,
    mcpServer: (namespace, name) => mcp.get(namespace, name),
  };

  const reconciler = new AgentRunReconciler({
    caches,
    runs: new KubeRunWriter(custom),
    journal: new KubeJournalStore(custom),
    pods: new KubePodClient(core),
    events: new KubeEventSink(core),
    secrets,
    access: new KubeAccessReviewer(kc.makeApiClient(k8s.AuthorizationV1Api)),
    requireCreatorIdentity: config.requireCreatorIdentity,
    modelCalls,
    mcpCalls,
    podMemory,
    memory,
    clock: { now: () => Date.now() },
    log,
    enqueue,
    statusByteBudget: config.statusByteBudget,
    requireApproverIdentity: config.requireApproverIdentity,
    stepEvents: config.stepEvents,
    onStatusWritten: (bytes) => { metrics.statusBytes.observe(bytes); },
    onEffect: (effect) => { metrics.effects.inc({ type: effect.type }); },
    // Off, the reconciler has no tracer at all: not even the calls that would do nothing.
    ...(hooks.tracer && hooks.tracer !== NO_TRACING ? { tracer: hooks.tracer } : {}),
  });
  const controller = manager.addController(new Controller({
    name: 'agentrun', reconcile: reconciler.reconcile, workers: config.workers, log,
    queue: { baseDelayMs: 200, maxDelayMs: 60_000 },
    onReconcileDone: (_key, durationMs, outcome) => {
      metrics.reconcileDuration.observe({ controller: 'agentrun', outcome }, durationMs / 1000);
      if (outcome === 'error' || outcome === 'terminal') metrics.reconcileErrors.inc({ controller: 'agentrun', outcome });
    },
  }));
  controllerRef.current = controller;

  if (config.leaderElect) {
    electorRef.current = new LeaderElector({
      lock: new KubeLeaseLock(kc, leaseNamespace(config), config.leaderElectionId),
      identity: candidateIdentity(),
      leaseDurationMs: config.leaderElectionLeaseDurationMs,
      renewDeadlineMs: config.leaderElectionRenewDeadlineMs,
      retryPeriodMs: config.leaderElectionRetryPeriodMs,
      log,
      onStartedLeading: () => { manager.startControllers(); },
      onStoppedLeading: (reason) => {
        modelCalls.abortAll();
        (hooks.onLostLeadership ?? ((r: string) => { log.error({ reason: r }, 'leadership lost; exiting'); process.exit(1); }))(reason);
      },
    });
  }
  const elector = electorRef.current;

  let stopping = false;
  const readiness = (): Readiness => {
    if (stopping || manager.isStopping()) return { ready: false, reason: 'stopping' };
    if (!manager.hasSynced()) return { ready: false, reason: 'caches not synced yet' };
    if (!elector) return { ready: true, reason: 'ok' };
    if (elector.isLeader()) return { ready: true, reason: `ok: leader (${elector.identity})` };
    return { ready: true, reason: `ok: standby, caches synced (leader: ${elector.leader() || 'none yet'})` };
  };
  const refreshGauges = (): void => {
    metrics.queueDepth.set({ controller: 'agentrun' }, controller.queueDepth());
    metrics.modelCallsInFlight.set(modelCalls.inFlight());
    metrics.leader.set(reconciling() ? 1 : 0);
    metrics.ready.set(readiness().ready ? 1 : 0);
    const phases = new Map<string, number>();
    for (const inf of runInformers) {
      for (const run of inf.list() as ObservedRun[]) {
        const phase = run.status?.phase ?? 'Pending';
        phases.set(phase, (phases.get(phase) ?? 0) + 1);
      }
    }
    metrics.runs.reset();
    for (const [phase, n] of phases) metrics.runs.set({ phase }, n);
  };

  let server: ObservabilityServer | undefined;
  return {
    manager,
    controller,
    modelCalls,
    metrics,
    elector,
    readiness,
    metricsPort: () => server?.port,
    start: async () => {
      if (config.metricsPort > 0) {
        try {
          server = await startObservabilityServer({
            port: config.metricsPort, log, readiness,
            metrics: async () => { refreshGauges(); return { contentType: metrics.contentType, body: await metrics.expose() }; },
          });
        } catch (err) {
          // Kubernetes' probes will notice; a developer running two operators locally keeps going.
          log.error({ err, port: config.metricsPort }, 'metrics server failed to listen; running without /metrics, /healthz and /readyz');
        }
      }
      if (!(await manager.syncCaches())) return;
      statuses.markSynced();
      if (elector) elector.start();
      else manager.startControllers();
    },
    stop: async () => {
      stopping = true;
      modelCalls.abortAll();
      await manager.stop();
      mcp.reconciler.closeAll();
      await mcpCalls.close();
      // Only once no controller runs may a standby take over.
      await elector?.release();
      await server?.close();
      await hooks.tracer?.shutdown().catch((err: unknown) => { log.warn({ err }, 'flushing traces failed'); });
    },
  };
}

export type { AgentRun };
