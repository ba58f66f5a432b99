/**
 * Wires the operator: informers for AgentRuns, AgentTools and tool pods feed one controller whose
 * reconcile function is the AgentRunReconciler. The only place that knows every adapter (with
 * operator-watches.ts, its informers, and operator-readiness.ts, its /readyz and gauges).
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
import type { Config } from './config.ts';
import { Controller, KubeLeaseLock, LeaderElector, Manager, type Logger } from './controller/index.ts';
import { KubeEventSink } from './adapters/kube/events.ts';
import { loadPooledKubeConfig } from './adapters/kube/kubeconfig.ts';
import { KubeJournalStore } from './adapters/kube/journal.ts';
import { KubeAccessReviewer } from './adapters/kube/access.ts';
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
import type { ManagedSettings } from './reconciler/mcp-managed-reconcile.ts';
import { KubeManagedObjects } from './adapters/kube/mcp-managed.ts';
import { MCPSDKDiscovery } from './adapters/mcp/discovery.ts';
import { AgentRunReconciler } from './reconciler/agent-run-reconciler.ts';
import { NO_TRACING, type RunTracer } from './observability/tracing/index.ts';
import { PodMemory } from './reconciler/memory/pod-memory.ts';
import { startObservabilityServer, type ObservabilityServer, type Readiness } from './observability/http-server.ts';
import { OperatorMetrics, RunStatusObserver } from './observability/metrics.ts';
import { isReconciling, readinessOf, refreshGauges } from './operator-readiness.ts';
import { addRunInformers, runCaches, runsIn, watchRuns } from './operator-watches.ts';

/** The operator as built by createOperator: its runtime parts, and start/stop. */
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

/** What the process around the operator wants to hear of (lost leadership) or supply (tracing). */
export interface OperatorHooks {
  /** Leadership was lost: the process must exit (non-zero) so it restarts with a clean memory. */
  readonly onLostLeadership?: (reason: string) => void;
  /** Exports run traces (createRunTracer); flushed on stop. */
  readonly tracer?: RunTracer;
}

/** Where Kubernetes mounts the pod's namespace. */
const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The Lease's namespace: the flag, else the pod's own namespace, else `default`. */
export function leaseNamespace(
  config: Config,
  readNamespaceFile = () => readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8'),
): string {
  if (config.leaderElectionNamespace) return config.leaderElectionNamespace;
  try {
    const ns = readNamespaceFile().trim();
    if (ns) return ns;
  } catch { /* not in a pod */ }
  return 'default';
}

/** Where the operator's pods are (for managed MCP servers' NetworkPolicy) and how it reaches those servers. */
export function managedMCPSettings(config: Config, readNamespaceFile?: () => string,
  env: NodeJS.ProcessEnv = process.env): ManagedSettings {
  const namespace = config.mcpOperatorNamespace ??
    leaseNamespace({ ...config, leaderElectionNamespace: undefined }, readNamespaceFile);
  const inPod = env.KUBERNETES_SERVICE_HOST !== undefined && config.kubeconfig === undefined;
  const address = config.mcpAddress === 'auto' ? (inPod ? 'service' : 'endpoints') : config.mcpAddress;
  return { peer: { namespace, podLabels: config.mcpOperatorPodLabels }, address };
}

/** A unique candidate identity: the pod name (or host name) plus a random suffix, like client-go. */
export function candidateIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.POD_NAME || hostname()}_${randomBytes(4).toString('hex')}`;
}

/** The operator's kubeconfig: a file, else in-cluster, else ~/.kube/config; connections pooled. */
export function loadKubeConfig(path: string | undefined): k8s.KubeConfig {
  return loadPooledKubeConfig(path);
}

/** Builds the operator from its configuration; nothing runs until start(). */
export function createOperator(
  config: Config,
  log: Logger,
  kc = loadKubeConfig(config.kubeconfig),
  hooks: OperatorHooks = {},
): Operator {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const manager = new Manager({ log, drainTimeoutMs: config.drainTimeoutMs });
  const namespaces = config.namespaces.length > 0 ? config.namespaces : [undefined];
  // One memory per run for everything this process remembers of it, forgotten in one place.
  const memory = new RunMemory();
  const podMemory = new PodMemory(memory);
  const metrics = new OperatorMetrics();
  const model = new AnthropicModelClient({
    timeoutMs: config.modelTimeoutMs,
    maxResponseBytes: config.maxModelResponseBytes,
  });
  const modelCalls = new ModelCalls(model, (outcome, ms) => {
    metrics.modelCallDuration.observe({ outcome }, ms / 1000);
  }, { maxConcurrent: config.maxConcurrentModelCalls, memory });
  const secrets = new KubeSecretReader(core);
  const mcpCalls = new MCPCalls(new MCPSessionClient(secrets), (server, outcome, ms) => {
    metrics.mcpCallDuration.observe({ server, outcome }, ms / 1000);
  }, memory);
  const elector = config.leaderElect ? leaderElector(config, kc, log, manager, modelCalls, hooks) : undefined;
  const statuses = new RunStatusObserver(metrics, log, () => isReconciling(manager, elector));
  const informers = addRunInformers({ manager, kc, log, namespaces, core, custom, podMemory, statuses });

  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const events = new KubeEventSink(core);
  const mcp = addMCPServerController({
    manager,
    kc,
    log,
    namespaces,
    customPath: informers.customPath,
    customList: informers.customList,
    listDeployments: (ns) => (s) =>
      ns ? apps.listNamespacedDeployment({ namespace: ns, ...s }) : apps.listDeploymentForAllNamespaces(s),
    status: new KubeMCPServerStatusWriter(custom),
    discovery: new MCPSDKDiscovery(secrets),
    events,
    workers: config.workers,
    managed: managedMCPSettings(config),
    managedObjects: new KubeManagedObjects({
      apps,
      core,
      net: kc.makeApiClient(k8s.NetworkingV1Api),
      discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
    }),
    // An MCPServer listing its tools can unblock runs waiting for it (events flow once controllers start).
    onChange: (namespace) => {
      for (const key of runsIn(informers, namespace)) controller.enqueue(key);
    },
    onReconcileDone: (durationMs, outcome) => {
      metrics.reconcileDuration.observe({ controller: 'mcpserver', outcome }, durationMs / 1000);
      if (outcome === 'error' || outcome === 'terminal') {
        metrics.reconcileErrors.inc({ controller: 'mcpserver', outcome });
      }
    },
  });

  const reconciler = new AgentRunReconciler({
    caches: runCaches(informers, (namespace, name) => mcp.get(namespace, name)),
    runs: new KubeRunWriter(custom),
    journal: new KubeJournalStore(custom),
    pods: new KubePodClient(core),
    events,
    secrets,
    access: new KubeAccessReviewer(kc.makeApiClient(k8s.AuthorizationV1Api)),
    requireCreatorIdentity: config.requireCreatorIdentity,
    modelCalls,
    mcpCalls,
    podMemory,
    memory,
    clock: { now: () => Date.now() },
    log,
    // A finished call enqueues its run; calls start only from reconciles, after the controller exists.
    enqueue: (key) => {
      controller.enqueue(key);
    },
    statusByteBudget: config.statusByteBudget,
    requireApproverIdentity: config.requireApproverIdentity,
    stepEvents: config.stepEvents,
    onStatusWritten: (bytes) => {
      metrics.statusBytes.observe(bytes);
    },
    onEffect: (effect) => {
      metrics.effects.inc({ type: effect.type });
    },
    // Off, the reconciler has no tracer at all: not even the calls that would do nothing.
    ...(hooks.tracer && hooks.tracer !== NO_TRACING ? { tracer: hooks.tracer } : {}),
  });
  const controller = manager.addController(new Controller({
    name: 'agentrun',
    reconcile: reconciler.reconcile,
    workers: config.workers,
    log,
    queue: { baseDelayMs: 200, maxDelayMs: 60_000 },
    onReconcileDone: (_key, durationMs, outcome) => {
      metrics.reconcileDuration.observe({ controller: 'agentrun', outcome }, durationMs / 1000);
      if (outcome === 'error' || outcome === 'terminal') {
        metrics.reconcileErrors.inc({ controller: 'agentrun', outcome });
      }
    },
  }));
  watchRuns(controller, informers);

  let stopping = false;
  const sources = { manager, elector, stopping: () => stopping };
  const readiness = (): Readiness => readinessOf(sources);
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
            port: config.metricsPort,
            log,
            readiness,
            metrics: async () => {
              const modelCallsInFlight = (): number => modelCalls.inFlight();
              refreshGauges(metrics, { ...sources, controller, modelCallsInFlight, runInformers: informers.runs });
              return { contentType: metrics.contentType, body: await metrics.expose() };
            },
          });
        } catch (err) {
          // Kubernetes' probes will notice; a developer running two operators locally keeps going.
          log.error({ err, port: config.metricsPort },
            'metrics server failed to listen; running without /metrics, /healthz and /readyz');
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
      await hooks.tracer?.shutdown().catch((err: unknown) => {
        log.warn({ err }, 'flushing traces failed');
      });
    },
  };
}

/** The leader elector: controllers start on winning the Lease; losing it ends the process. */
function leaderElector(config: Config, kc: k8s.KubeConfig, log: Logger, manager: Manager, modelCalls: ModelCalls,
  hooks: OperatorHooks): LeaderElector {
  return new LeaderElector({
    lock: new KubeLeaseLock(kc, leaseNamespace(config), config.leaderElectionId),
    identity: candidateIdentity(),
    leaseDurationMs: config.leaderElectionLeaseDurationMs,
    renewDeadlineMs: config.leaderElectionRenewDeadlineMs,
    retryPeriodMs: config.leaderElectionRetryPeriodMs,
    log,
    onStartedLeading: () => {
      manager.startControllers();
    },
    onStoppedLeading: (reason) => {
      modelCalls.abortAll();
      const exit = (r: string): void => {
        log.error({ reason: r }, 'leadership lost; exiting');
        process.exit(1);
      };
      (hooks.onLostLeadership ?? exit)(reason);
    },
  });
}

/** Re-exported for callers that build runs (tests, the dev entry point). */
export type { AgentRun };
