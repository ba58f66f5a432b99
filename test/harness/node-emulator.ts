/**
 * NodeEmulator: a stand-in kubelet for a real kube-apiserver on a machine without a container
 * runtime. It registers a Ready Node, binds the unscheduled pods of its namespaces to it (the
 * test control plane has no scheduler), runs their containers as LOCAL PROCESSES, reports pod
 * status the way a kubelet does, and serves container logs so `kubectl logs` works.
 *
 *   ┌─────────────────────────────────────────────────────────────────────────────────────┐
 *   │ THE CONTAINER IMAGE IS IGNORED. A container runs its `command` + `args` directly on   │
 *   │ this machine, as the user running the tests, with no isolation of any kind. A        │
 *   │ container without `command` cannot run (its image's entrypoint is unknown): it ends   │
 *   │ terminated with reason `EmulatorNeedsCommand`.                                        │
 *   └─────────────────────────────────────────────────────────────────────────────────────┘
 *
 * PATHS ARE REWRITTEN. A process cannot see the paths a container would see, so emptyDir,
 * configMap, secret, downwardAPI and projected volumes are materialised under the pod's sandbox
 * (`<sandbox>/volumes/<volumeName>`; hostPath volumes map to the host path itself), and every
 * occurrence of a container's `volumeMounts[].mountPath` and of its `terminationMessagePath`
 * (default /dev/termination-log) in its command, args, workingDir and env values is replaced by
 * the sandbox path. Only whole path components match (`/data` rewrites `/data/x`, not `/database`).
 * Paths a program computes or has built in (client libraries reading
 * /var/run/secrets/kubernetes.io/serviceaccount) are NOT rewritten. Projected service account
 * tokens come from the TokenRequest API; the kube-root-ca.crt ConfigMap falls back to the cluster
 * CA file, as the test control plane runs no root-ca-cert-publisher.
 *
 * What a container process gets:
 * - env: PATH (the emulator's), HOME=<sandbox>, HOSTNAME=<pod name>, KUBERNETES_SERVICE_HOST/PORT
 *   pointing at the real apiserver, then envFrom and env (value with $(VAR) expansion, or
 *   valueFrom secretKeyRef / configMapKeyRef / fieldRef). resourceFieldRef is not supported.
 * - cwd: workingDir (after rewriting) when it exists on this machine, else the sandbox.
 * - stdout and stderr, interleaved, in one log file per container instance, as the kubelet does.
 * - its own process group: stopping a container signals the whole group (SIGTERM, then SIGKILL
 *   after the grace period, capped at 10 s), and anything left in the group when the main
 *   process exits is killed, as a container runtime would.
 *
 * Also emulated: init containers (sequential) then containers (concurrent); restartPolicy with
 * an exponential back-off (1 s doubling to 20 s, CrashLoopBackOff meanwhile); termination
 * messages (incl. FallbackToLogsOnError); activeDeadlineSeconds (DeadlineExceeded); graceful
 * deletion finished with a grace-0 delete; a node failure with the taint manager's eviction
 * (simulateNodeFailure); the kubelet's /containerLogs endpoint (follow, tailLines, limitBytes,
 * previous) over HTTPS with a certificate from the cluster CA; it admits any client certificate
 * from that CA (the apiserver's) and authorizes nothing further. Container IDs are
 * `emulator://<pid>`.
 *
 * Also: node heartbeats (the Ready condition every 4 s, for a cluster that runs the node lifecycle
 * controller beside real nodes) and a NoSchedule taint (EMULATOR_TAINT) so that a real
 * kube-scheduler never places other pods here.
 *
 * Not emulated: images, probes (a running container is ready), resource limits, native sidecars
 * (init containers with restartPolicy: Always), persistent volumes (other volume types are an
 * empty directory), node leases, log timestamps and sinceSeconds/sinceTime,
 * exec/attach/port-forward.
 */
import * as k8s from '@kubernetes/client-node';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { arch, constants as osConstants, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

/** Structured logging hook; the emulator is silent by default. */
export type EmulatorLog = (message: string, fields?: Record<string, unknown>) => void;

/**
 * Options of a {@link NodeEmulator}. A `ClusterInfo` carries `kubeconfig`, `caCert` and `caKey`,
 * so `new NodeEmulator({ ...cluster(), nodeName, namespaces: [ns] })` is all a test needs.
 */
export interface NodeEmulatorOptions {
  /** Kubeconfig of the identity the emulated kubelet acts as (the admin one in tests). */
  readonly kubeconfig: string;
  /** The cluster CA: it signs the log server's certificate, which the apiserver verifies. */
  readonly caCert: string;
  readonly caKey: string;
  /** Name of the Node to register; a node that exists already is adopted (taints lifted, Ready). */
  readonly nodeName: string;
  /** Only pods in these namespaces are bound and run (all namespaces when omitted). Tests set it. */
  readonly namespaces?: readonly string[];
  /** Where sandboxes, logs and the certificate go; a temporary directory removed by stop() if omitted. */
  readonly workDir?: string;
  readonly log?: EmulatorLog;
}

/** A container process the emulator is running. */
export interface EmulatedProcess {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly pid: number;
}

const KUBELET_VERSION = 'v1.34.4-agentrun-emulator';
const LOCALHOST = '127.0.0.1';
const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';
const MAX_TERMINATION_MESSAGE_BYTES = 4096;
const FALLBACK_LOG_LINES = 80;
const FALLBACK_LOG_BYTES = 2048;
const DEFAULT_GRACE_SECONDS = 30;
/** Grace periods are capped so that a process ignoring SIGTERM never holds a test for 30 s. */
const MAX_GRACE_MS = 10_000;
const RESTART_BACKOFF_BASE_MS = 1_000;
const RESTART_BACKOFF_MAX_MS = 20_000;
/** Pause before retrying anything that failed: a volume source, an env source, an API write. */
const RETRY_MS = 1_000;
const MAX_CONFLICT_RETRIES = 5;
const FOLLOW_POLL_MS = 100;
/** The exit code a runtime reports for a container that could not be started. */
const START_FAILURE_EXIT_CODE = 128;
/** How often the Node's Ready condition is refreshed (kubelet's nodeStatusUpdateFrequency is 10 s). */
const HEARTBEAT_MS = 4_000;
const DEADLINE_MESSAGE = 'Pod was active on the node longer than the specified deadline';
const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';
const NODE_LIFECYCLE_TAINTS = new Set([UNREACHABLE_TAINT, 'node.kubernetes.io/not-ready']);
/**
 * On a cluster that also has real nodes and kube-scheduler (local-cluster.ts), the scheduler must
 * neither place other pods on an emulated node (this taint: the emulator binds pods itself and
 * ignores it) nor bind the emulator's pods to a real node: pods meant for an emulator there set
 * `schedulerName: EMULATOR_SCHEDULER_NAME`, which no real scheduler serves.
 */
export const EMULATOR_TAINT = { key: 'agentrun.dev/node-emulator', value: 'true', effect: 'NoSchedule' } as const;
export const EMULATOR_SCHEDULER_NAME = 'agentrun-node-emulator';
/** Pod conditions the kubelet owns; any other condition (DisruptionTarget, readiness gates) is kept as found. */
const KUBELET_POD_CONDITIONS = new Set(['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready']);

const execFileAsync = promisify(execFile);

/**
 * Emulates one kubelet: see the file header for what runs how. Lifecycle: `start()`, then either
 * `stop()` (the kubelet stops; its pods stay as they are in the API) or `simulateNodeFailure()`
 * followed by `stop()`. An emulator runs once: to bring a node back, start a new NodeEmulator
 * (with the same nodeName it adopts the Node, lifting the unreachable taints).
 */
export class NodeEmulator {
  readonly nodeName: string;
  private readonly options: NodeEmulatorOptions;
  private readonly log: EmulatorLog;
  private readonly kc: k8s.KubeConfig;
  private readonly core: k8s.CoreV1Api;
  /** Pods this node runs or ran, by uid, until their object is deleted. */
  private readonly runtimes = new Map<string, PodRuntime>();
  private readonly bindingsSent = new Set<string>();
  private readonly deletionsInProgress = new Set<string>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private informers: (k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>)[] = [];
  private server: Server | undefined;
  private workDir = '';
  private state: 'new' | 'running' | 'dead' | 'stopped' = 'new';
  private logServerPort = 0;

  constructor(options: NodeEmulatorOptions) {
    this.options = options;
    this.nodeName = options.nodeName;
    this.log = options.log ?? (() => undefined);
    this.kc = new k8s.KubeConfig();
    this.kc.loadFromFile(options.kubeconfig);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
  }

  /** Port of the HTTPS log server (the Node's kubeletEndpoint); 0 before start(). */
  get port(): number {
    return this.logServerPort;
  }

  /** Starts the log server, registers the Ready Node, then watches and runs pods. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`NodeEmulator ${this.nodeName} was already started; create a new one`);
    this.state = 'running';
    try {
      this.workDir = this.options.workDir ?? await mkdtemp(join(tmpdir(), `agentrun-node-${this.nodeName}-`));
      await mkdir(join(this.workDir, 'pods'), { recursive: true });
      const tls = await issueServingCertificate(join(this.workDir, 'pki'), this.options, this.nodeName);
      this.logServerPort = await this.startLogServer(tls);
      await this.registerNode();
      this.heartbeat();
      await this.startInformers();
      this.log('node ready', { node: this.nodeName, port: this.logServerPort });
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Stops like a kubelet that is shut down: watches, timers and the log server end, processes are
   * killed without reporting anything (their pods keep their last status in the API). Idempotent.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    await this.halt();
    if (this.options.workDir === undefined && this.workDir !== '') await rm(this.workDir, { recursive: true, force: true });
  }

  /**
   * The node dies. Its processes are SIGKILLed without any status report; the Node becomes
   * Ready=Unknown with the unreachable taints (the node lifecycle controller's part); then, as the
   * taint manager does once the pods' tolerations run out, each pod on the node gets a
   * DisruptionTarget condition and is deleted with grace period 0. Pods tolerating the
   * unreachable NoExecute taint forever stay. The emulator does nothing more afterwards.
   */
  async simulateNodeFailure(): Promise<void> {
    if (this.state !== 'running') throw new Error(`NodeEmulator ${this.nodeName} is not running`);
    this.state = 'dead';
    this.log('simulating node failure', { node: this.nodeName });
    await this.halt();
    await updateNodeStatus(this.core, this.nodeName, (node) => {
      (node.status ??= {}).conditions = nodeConditions('Unknown', new Date());
    });
    await updateNode(this.core, this.nodeName, (node) => {
      const now = new Date();
      const spec = node.spec ??= {};
      spec.taints = [...(spec.taints ?? []).filter((taint) => taint.key !== UNREACHABLE_TAINT),
        { key: UNREACHABLE_TAINT, effect: 'NoExecute', timeAdded: now },
        { key: UNREACHABLE_TAINT, effect: 'NoSchedule', timeAdded: now }];
    });
    await this.evictPodsLikeTheTaintManager();
  }

  /** Container processes running right now (for tests that check processes really end). */
  runningProcesses(): EmulatedProcess[] {
    return [...this.runtimes.values()].flatMap((runtime) => runtime.processes());
  }

  // ── Node ────────────────────────────────────────────────────────────────────────────────

  private async registerNode(): Promise<void> {
    const labels = {
      'kubernetes.io/hostname': this.nodeName,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': goArch(),
      'agentrun.dev/node-emulator': 'true',
    };
    try {
      await this.core.createNode({ body: { apiVersion: 'v1', kind: 'Node', metadata: { name: this.nodeName, labels }, spec: { taints: [EMULATOR_TAINT] } } });
    } catch (error) {
      if (!isConflict(error)) throw error;
      // The node exists, e.g. it comes back after simulateNodeFailure(): lift the taints its death left.
      await updateNode(this.core, this.nodeName, (node) => {
        const metadata = node.metadata ??= {};
        metadata.labels = Object.assign(metadata.labels ?? {}, labels);
        const spec = node.spec ??= {};
        spec.taints = [...(spec.taints ?? []).filter((taint) => !NODE_LIFECYCLE_TAINTS.has(taint.key) && taint.key !== EMULATOR_TAINT.key), EMULATOR_TAINT];
      });
    }
    await updateNodeStatus(this.core, this.nodeName, (node) => { node.status = this.readyNodeStatus(); });
  }

  /**
   * Posts the Ready condition's heartbeat every few seconds, as a kubelet does: on a cluster with
   * the node lifecycle controller (real nodes, local-cluster.ts) a silent node is marked
   * unreachable and its pods evicted after the grace period.
   */
  private heartbeat(): void {
    this.after(HEARTBEAT_MS, () => {
      this.track(updateNodeStatus(this.core, this.nodeName, (node) => {
        const now = new Date();
        for (const c of node.status?.conditions ?? []) c.lastHeartbeatTime = now;
      }), 'posting the node heartbeat', () => undefined);
      this.heartbeat();
    });
  }

  private readyNodeStatus(): k8s.V1NodeStatus {
    const resources = { cpu: '2', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    const id = randomBytes(16).toString('hex');
    return {
      capacity: resources,
      allocatable: resources,
      conditions: nodeConditions('True', new Date()),
      addresses: [{ type: 'InternalIP', address: LOCALHOST }, { type: 'Hostname', address: this.nodeName }],
      daemonEndpoints: { kubeletEndpoint: { Port: this.logServerPort } },
      nodeInfo: {
        machineID: id, systemUUID: id, bootID: randomBytes(16).toString('hex'),
        kernelVersion: release(), osImage: 'agentrun node emulator (local processes)',
        containerRuntimeVersion: 'agentrun-emulator://0.1.0', kubeletVersion: KUBELET_VERSION, kubeProxyVersion: '',
        operatingSystem: 'linux', architecture: goArch(),
      },
    };
  }

  private async evictPodsLikeTheTaintManager(): Promise<void> {
    for (const pod of await this.podsBoundHere()) {
      const { name = '', namespace = '', uid = '' } = pod.metadata ?? {};
      if (toleratesUnreachableForever(pod)) continue;
      await updatePodStatus(this.core, namespace, name, uid, (status) => {
        status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== 'DisruptionTarget'), {
          type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager',
          message: 'Taint manager: deleting due to NoExecute taint', lastTransitionTime: new Date(),
        }];
      });
      await deletePodNow(this.core, namespace, name, uid);
      this.log('taint manager deleted pod', { namespace, pod: name });
    }
  }

  private async podsBoundHere(): Promise<k8s.V1Pod[]> {
    const fieldSelector = `spec.nodeName=${this.nodeName}`;
    const namespaces = this.options.namespaces;
    if (namespaces === undefined) return (await this.core.listPodForAllNamespaces({ fieldSelector })).items;
    const lists = await Promise.all(namespaces.map((namespace) => this.core.listNamespacedPod({ namespace, fieldSelector })));
    return lists.flatMap((list) => list.items);
  }

  // ── Pod watch ───────────────────────────────────────────────────────────────────────────

  private async startInformers(): Promise<void> {
    const namespaces = this.options.namespaces;
    this.informers = namespaces === undefined
      ? [this.podInformer('/api/v1/pods', () => this.core.listPodForAllNamespaces())]
      : namespaces.map((namespace) =>
        this.podInformer(`/api/v1/namespaces/${namespace}/pods`, () => this.core.listNamespacedPod({ namespace })));
    await Promise.all(this.informers.map((informer) => informer.start()));
  }

  /**
   * Objects from the informer's initial list are typed (Date fields) while watch events are raw
   * JSON (string timestamps): only presence of timestamps is used here, see parseTime().
   */
  private podInformer(path: string, list: () => Promise<k8s.V1PodList>): k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod> {
    const informer = k8s.makeInformer<k8s.V1Pod>(this.kc, path, list);
    informer.on('add', (pod) => { this.reconcile(pod); });
    informer.on('update', (pod) => { this.reconcile(pod); });
    informer.on('delete', (pod) => { this.forget(pod); });
    // client-node informers give up on any error but 410 Gone: restart them, or the node goes deaf.
    informer.on('error', (error: unknown) => {
      if (this.state !== 'running') return;
      this.log('pod watch failed, restarting', { path, error: errorMessage(error) });
      this.after(RETRY_MS, () => { this.track(informer.start(), `restarting the pod watch ${path}`); });
    });
    return informer;
  }

  /** Brings one pod closer to what its object asks of this node. Called on every watch event. */
  private reconcile(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    if (this.state !== 'running' || uid === undefined) return;
    const boundTo = pod.spec?.nodeName;
    if (!boundTo) {
      const gated = (pod.spec?.schedulingGates ?? []).length > 0;
      if (!pod.metadata?.deletionTimestamp && !gated) this.bind(pod, uid);
      return;
    }
    if (boundTo !== this.nodeName) return;
    const runtime = this.runtimes.get(uid);
    if (pod.metadata?.deletionTimestamp) {
      this.finishDeletion(pod, uid, runtime);
    } else if (runtime) {
      runtime.update(pod);
    } else if (!isTerminal(pod)) {
      this.run(pod, uid);
    }
  }

  /** The scheduler's job, as the test control plane has none: first node to bind a pod wins. */
  private bind(pod: k8s.V1Pod, uid: string): void {
    if (this.bindingsSent.has(uid)) return;
    this.bindingsSent.add(uid);
    const { name, namespace = '' } = pod.metadata ?? {};
    const binding = this.core.createNamespacedBinding({
      namespace,
      body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace, uid }, target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName } },
    }).then(() => { this.log('bound pod', { namespace, pod: name }); }, (error: unknown) => {
      if (isConflict(error)) return; // bound elsewhere meanwhile
      this.bindingsSent.delete(uid);
      throw error;
    });
    this.track(binding, `binding pod ${namespace}/${name ?? ''}`, () => { this.reconcileLater(pod); });
  }

  private run(pod: k8s.V1Pod, uid: string): void {
    const { name = '', namespace = '' } = pod.metadata ?? {};
    const runtime = new PodRuntime(pod, join(this.workDir, 'pods', `${namespace}_${name}_${uid}`), {
      core: this.core,
      caCert: this.options.caCert,
      apiServer: new URL(this.kc.getCurrentCluster()?.server ?? 'https://127.0.0.1:443'),
      log: this.log,
      track: (task, what) => { this.track(task, what); },
    });
    this.runtimes.set(uid, runtime);
    this.log('starting pod', { namespace, pod: name });
    this.track(runtime.start(), `running pod ${namespace}/${name}`);
  }

  /** The kubelet's half of a deletion: stop what runs, report, then delete the object for good. */
  private finishDeletion(pod: k8s.V1Pod, uid: string, runtime: PodRuntime | undefined): void {
    if (this.deletionsInProgress.has(uid)) return;
    this.deletionsInProgress.add(uid);
    const { name = '', namespace = '', deletionGracePeriodSeconds } = pod.metadata ?? {};
    const grace = deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
    const deletion = runtime ? runtime.finishDeletion(grace) : deletePodNow(this.core, namespace, name, uid);
    this.track(deletion, `deleting pod ${namespace}/${name}`, () => {
      this.deletionsInProgress.delete(uid);
      this.reconcileLater(pod);
    });
  }

  /** The pod object is gone: kill whatever still runs for it and drop its sandbox and logs. */
  private forget(pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid ?? '';
    this.bindingsSent.delete(uid);
    this.deletionsInProgress.delete(uid);
    const runtime = this.runtimes.get(uid);
    if (!runtime) return;
    this.runtimes.delete(uid);
    runtime.kill();
    this.track(runtime.settled().then(() => rm(runtime.dir, { recursive: true, force: true })), `cleaning up pod ${runtime.key}`);
  }

  /** Retries a pod's reconciliation from the freshest copy the watch has, if it still exists. */
  private reconcileLater(pod: k8s.V1Pod): void {
    const { name = '', namespace } = pod.metadata ?? {};
    this.after(RETRY_MS, () => {
      for (const informer of this.informers) {
        const latest = informer.get(name, namespace);
        if (latest) { this.reconcile(latest); return; }
      }
    });
  }

  // ── Log server ──────────────────────────────────────────────────────────────────────────

  private async startLogServer(tls: { cert: Buffer; key: Buffer }): Promise<number> {
    const ca = await readFile(this.options.caCert);
    // Like a kubelet, only clients with a certificate from the cluster CA (the apiserver) get in.
    const server = createServer({ ...tls, ca, requestCert: true, rejectUnauthorized: true }, (request, response) => {
      const served = this.serveLogRequest(request, response).catch((error: unknown) => {
        if (response.headersSent) response.destroy();
        else reply(response, 500, `node emulator: ${errorMessage(error)}\n`);
        throw error;
      });
      this.track(served, `serving ${request.url ?? ''}`);
    });
    this.server = server;
    server.listen(0, LOCALHOST);
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('log server has no port');
    return address.port;
  }

  private async serveLogRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://kubelet');
    const path = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (request.method !== 'GET' || !path) {
      reply(response, 404, 'the node emulator serves only GET /containerLogs/{namespace}/{pod}/{container}\n');
      return;
    }
    const [namespace, podName, container] = path.slice(1).map((part) => decodeURIComponent(part));
    const query = parseLogQuery(url.searchParams);
    const runtime = [...this.runtimes.values()].findLast((r) => r.namespace === namespace && r.name === podName);
    const target = runtime
      ? runtime.logFor(container ?? '', query.previous)
      : { status: 404, message: `pod "${podName ?? ''}" in namespace "${namespace ?? ''}" is not on node "${this.nodeName}"` };
    if ('status' in target) {
      reply(response, target.status, `${target.message}\n`);
      return;
    }
    const closed = new AbortController();
    response.on('close', () => { closed.abort(); });
    await streamLog(response, target.file, query, target.live, closed.signal).catch((error: unknown) => {
      if (!closed.signal.aborted) throw error; // the client went away mid-stream: nothing to report
    });
  }

  private async closeLogServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server?.listening) return;
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections(); // followers would otherwise keep it open until their container exits
    await closed;
  }

  // ── Housekeeping ────────────────────────────────────────────────────────────────────────

  /** Stops everything that acts: watches, timers, processes (SIGKILL, no status), the log server. */
  private async halt(): Promise<void> {
    await Promise.all(this.informers.map((informer) => informer.stop()));
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const runtime of this.runtimes.values()) runtime.kill();
    await this.closeLogServer();
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /** Runs a background task so that halt() can wait for it; a failure is logged, then `onError` runs. */
  private track(task: Promise<unknown>, what: string, onError?: () => void): void {
    const settled: Promise<void> = task.then(() => undefined, (error: unknown) => {
      this.log(`${what} failed`, { error: errorMessage(error) });
      if (this.state === 'running') onError?.();
    }).finally(() => { this.tasks.delete(settled); });
    this.tasks.add(settled);
  }

  private after(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.state === 'running') action();
    }, ms);
    this.timers.add(timer);
  }
}

// ── One pod ─────────────────────────────────────────────────────────────────────────────────

interface RuntimeContext {
  readonly core: k8s.CoreV1Api;
  readonly caCert: string;
  readonly apiServer: URL;
  readonly log: EmulatorLog;
  readonly track: (task: Promise<unknown>, what: string) => void;
}

interface Termination {
  readonly exitCode: number;
  readonly signal?: number;
  readonly reason: string;
  readonly message?: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly containerID?: string;
}

type ContainerState =
  | { readonly kind: 'waiting'; readonly reason: string; readonly message?: string }
  | { readonly kind: 'running'; readonly startedAt: Date; readonly containerID: string }
  | ({ readonly kind: 'terminated' } & Termination);

interface RunningProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
}

/** One container of the pod across its restarts. */
interface ContainerRun {
  readonly spec: k8s.V1Container;
  readonly isInit: boolean;
  state: ContainerState;
  lastTermination?: Termination;
  restartCount: number;
  process?: RunningProcess;
}

/** Why a pod's containers were stopped before they ended by themselves. */
type StopCause = 'deleted' | 'deadline' | 'killed';

type LogTarget = { readonly file: string; readonly live: () => boolean } | { readonly status: number; readonly message: string };

/**
 * Runs one pod bound to this node and reports its status. `dir` holds `sandbox/` (cwd, HOME,
 * volumes, termination message files) and `logs/<container>/<restartCount>.log`.
 */
class PodRuntime {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly dir: string;
  private pod: k8s.V1Pod;
  private readonly ctx: RuntimeContext;
  private readonly sandbox: string;
  private readonly initRuns: ContainerRun[];
  private readonly mainRuns: ContainerRun[];
  /** Aborted when the pod must stop: cancels back-offs, retries and any container not yet started. */
  private readonly stopping = new AbortController();
  private readonly status: CoalescingWriter;
  private readonly startTime: Date;
  private readonly conditionTimes = new Map<string, { status: string; time: Date }>();
  private volumeDirs = new Map<string, string>();
  private sandboxReady = false;
  private stopCause: StopCause | undefined;
  /** run() returned: no container will start again. */
  private lifecycleOver = false;
  private lifecycle: Promise<void> = Promise.resolve();
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(pod: k8s.V1Pod, dir: string, ctx: RuntimeContext) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? '';
    this.namespace = pod.metadata?.namespace ?? '';
    this.name = pod.metadata?.name ?? '';
    this.dir = dir;
    this.ctx = ctx;
    this.sandbox = join(dir, 'sandbox');
    this.startTime = parseTime(pod.status?.startTime) ?? new Date();
    const run = (spec: k8s.V1Container, isInit: boolean): ContainerRun => ({ spec, isInit, restartCount: 0, state: this.initialState() });
    this.initRuns = (pod.spec?.initContainers ?? []).map((spec) => run(spec, true));
    this.mainRuns = (pod.spec?.containers ?? []).map((spec) => run(spec, false));
    this.status = new CoalescingWriter(() => this.writeStatus(), (error) => {
      ctx.log('pod status write failed, retrying', { pod: this.key, error: errorMessage(error) });
    }, ctx.track);
  }

  get key(): string {
    return `${this.namespace}/${this.name}`;
  }

  /** Starts the pod; the promise settles once no container will run any more. */
  start(): Promise<void> {
    this.lifecycle = this.run();
    return this.lifecycle;
  }

  /** A newer version of the pod object (only activeDeadlineSeconds can change what runs). */
  update(pod: k8s.V1Pod): void {
    const deadlineChanged = pod.spec?.activeDeadlineSeconds !== this.pod.spec?.activeDeadlineSeconds;
    this.pod = pod;
    if (deadlineChanged) this.armDeadline();
  }

  /** Graceful deletion: SIGTERM, SIGKILL after the (capped) grace, final status, grace-0 delete. */
  async finishDeletion(graceSeconds: number): Promise<void> {
    await this.stopContainers('deleted', graceSeconds);
    await this.status.flush();
    if (this.stopCause === 'killed') return; // the node died meanwhile: a dead kubelet deletes nothing
    await deletePodNow(this.ctx.core, this.namespace, this.name, this.uid);
  }

  /** SIGKILLs everything at once and reports nothing more: the pod vanished or the node stops. */
  kill(): void {
    this.stopCause = 'killed';
    this.stopping.abort();
    this.status.close();
    clearTimeout(this.deadlineTimer);
    for (const run of this.allRuns()) if (run.process) signalProcessGroup(run.process.pid, 'SIGKILL');
  }

  /** Settles once every process exited and no status write is in flight. */
  async settled(): Promise<void> {
    await Promise.allSettled([this.lifecycle, this.status.flush()]);
  }

  processes(): EmulatedProcess[] {
    return this.allRuns().flatMap((run) => run.process
      ? [{ namespace: this.namespace, pod: this.name, container: run.spec.name, pid: run.process.pid }]
      : []);
  }

  /** Which log file answers GET /containerLogs for `container`, or the error the kubelet gives. */
  logFor(container: string, previous: boolean): LogTarget {
    const run = this.allRuns().find((r) => r.spec.name === container);
    if (!run) return { status: 404, message: `container "${container}" is not in pod "${this.name}" (namespace "${this.namespace}")` };
    const instance = previous ? run.restartCount - 1 : run.restartCount;
    const file = this.logPath(container, instance);
    if (instance < 0 || !existsSync(file)) {
      return previous
        ? { status: 400, message: `previous terminated container "${container}" in pod "${this.name}" not found` }
        : { status: 400, message: `container "${container}" in pod "${this.name}" is waiting to start: ${run.state.kind === 'waiting' ? run.state.reason : 'ContainerCreating'}` };
    }
    return { file, live: () => run.restartCount === instance && run.state.kind === 'running' };
  }

  // ── Lifecycle ──

  /** What every container shows before it first starts, as with the kubelet. */
  private initialState(): ContainerState {
    const hasInit = (this.pod.spec?.initContainers ?? []).length > 0;
    return { kind: 'waiting', reason: hasInit ? 'PodInitializing' : 'ContainerCreating' };
  }

  private async run(): Promise<void> {
    this.armDeadline();
    this.status.request();
    if (await this.untilSandboxReady() && await this.runInitContainers()) {
      await Promise.all(this.mainRuns.map((run) => this.runWithRestarts(run)));
    }
    this.lifecycleOver = true;
    clearTimeout(this.deadlineTimer);
    this.status.request();
  }

  /** Materialises the volumes, retrying (pod stays ContainerCreating) while a source is missing. */
  private async untilSandboxReady(): Promise<boolean> {
    const sources = new PodSources(this.ctx, this.pod);
    while (!this.stopping.signal.aborted) {
      try {
        await mkdir(this.sandbox, { recursive: true });
        this.volumeDirs = await materializeVolumes(this.pod.spec?.volumes ?? [], join(this.sandbox, 'volumes'), sources, this.ctx.log);
        this.sandboxReady = true;
        for (const run of this.allRuns()) run.state = this.initialState();
        return true;
      } catch (error) {
        const message = `MountVolume.SetUp failed (retrying): ${errorMessage(error)}`;
        this.ctx.log('volume setup failed', { pod: this.key, error: message });
        for (const run of this.allRuns()) run.state = { kind: 'waiting', reason: 'ContainerCreating', message };
        this.status.request();
        await sleep(RETRY_MS, this.stopping.signal);
      }
    }
    return false;
  }

  private async runInitContainers(): Promise<boolean> {
    for (const run of this.initRuns) {
      const outcome = await this.runWithRestarts(run);
      if (outcome?.exitCode !== 0) return false;
    }
    return true;
  }

  /** Runs a container until it ends for good under the pod's restartPolicy; undefined if stopped first. */
  private async runWithRestarts(run: ContainerRun): Promise<Termination | undefined> {
    for (;;) {
      // A local failure (a sandbox file that cannot be written) fails the container, not the emulator.
      const outcome = await this.runOnce(run)
        .catch((error: unknown) => this.recordTermination(run, startFailure('StartError', errorMessage(error))));
      if (outcome === undefined || this.stopping.signal.aborted || !this.shouldRestart(run, outcome)) return outcome;
      const backOffMs = Math.min(RESTART_BACKOFF_BASE_MS * 2 ** run.restartCount, RESTART_BACKOFF_MAX_MS);
      run.lastTermination = outcome;
      run.state = { kind: 'waiting', reason: 'CrashLoopBackOff',
        message: `back-off ${backOffMs / 1000}s restarting failed container=${run.spec.name} pod=${this.name}_${this.namespace}(${this.uid})` };
      this.status.request();
      if (!await sleep(backOffMs, this.stopping.signal)) return outcome;
      run.restartCount++;
    }
  }

  private shouldRestart(run: ContainerRun, outcome: Termination): boolean {
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Always' && !run.isInit) return true;
    return policy !== 'Never' && outcome.exitCode !== 0;
  }

  /** One container instance, from environment resolution to its recorded termination. */
  private async runOnce(run: ContainerRun): Promise<Termination | undefined> {
    const mounts = await this.containerMounts(run.spec);
    const rewrite = pathRewriter(mounts);
    const env = await this.untilEnvironmentResolved(run, rewrite);
    if (env === undefined) return undefined;
    const logPath = this.logPath(run.spec.name, run.restartCount);
    await Promise.all([emptyFile(logPath), emptyFile(this.terminationFile(run.spec.name))]);
    const command = run.spec.command ?? [];
    if (command.length === 0) {
      return this.recordTermination(run, startFailure('EmulatorNeedsCommand',
        `the node emulator ignores images, so container "${run.spec.name}" (image ${run.spec.image ?? '?'}) needs a command to run`));
    }
    const invocation = buildInvocation(run.spec, env, rewrite, this.sandbox);
    const output = await open(logPath, 'a');
    let started: StartedProcess;
    try {
      // Checked after the last await before spawning: nothing may start once the pod is stopping.
      if (this.stopping.signal.aborted) return undefined;
      started = startProcess(invocation, output.fd);
      if (started.pid !== undefined) {
        run.process = { pid: started.pid, exited: started.exited };
        run.state = { kind: 'running', startedAt: new Date(), containerID: `emulator://${started.pid}` };
      }
    } finally {
      await output.close();
    }
    if (!run.process) {
      const exit = await started.exited;
      return this.recordTermination(run, startFailure('StartError', `failed to start ${invocation.file}: ${exit.error?.message ?? 'unknown error'}`));
    }
    this.ctx.log('container started', { pod: this.key, container: run.spec.name, pid: run.process.pid });
    this.status.request();
    return this.awaitExit(run, run.process, logPath);
  }

  private async awaitExit(run: ContainerRun, running: RunningProcess, logPath: string): Promise<Termination | undefined> {
    const startedAt = run.state.kind === 'running' ? run.state.startedAt : new Date();
    const { code, signal } = await running.exited;
    signalProcessGroup(running.pid, 'SIGKILL'); // what the main process leaves behind dies with the container
    run.process = undefined;
    // Recorded even when killed (the writer is closed then): log followers see the container end.
    const exitCode = code ?? 128 + signalNumber(signal);
    const message = await this.terminationMessage(run, exitCode, logPath);
    this.ctx.log('container exited', { pod: this.key, container: run.spec.name, exitCode });
    return this.recordTermination(run, {
      exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt: new Date(),
      containerID: `emulator://${running.pid}`,
      ...(signal ? { signal: signalNumber(signal) } : {}),
      ...(message ? { message } : {}),
    });
  }

  private recordTermination(run: ContainerRun, termination: Termination): Termination {
    run.state = { kind: 'terminated', ...termination };
    this.status.request();
    return termination;
  }

  /** The message file's content (max 4 KiB); for FallbackToLogsOnError on failure, else the log tail. */
  private async terminationMessage(run: ContainerRun, exitCode: number, logPath: string): Promise<string> {
    const written = await readHead(this.terminationFile(run.spec.name), MAX_TERMINATION_MESSAGE_BYTES);
    if (written !== '' || exitCode === 0 || run.spec.terminationMessagePolicy !== 'FallbackToLogsOnError') return written;
    return readLogTail(logPath, FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES);
  }

  /** Resolves env, retrying (container waits with CreateContainerConfigError) while a source is missing. */
  private async untilEnvironmentResolved(run: ContainerRun, rewrite: (text: string) => string): Promise<Record<string, string> | undefined> {
    const sources = new PodSources(this.ctx, this.pod);
    while (!this.stopping.signal.aborted) {
      try {
        return await containerEnvironment(run.spec, this.baseEnvironment(), sources, rewrite);
      } catch (error) {
        run.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message: errorMessage(error) };
        this.status.request();
        await sleep(RETRY_MS, this.stopping.signal);
      }
    }
    return undefined;
  }

  private baseEnvironment(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: this.sandbox,
      HOSTNAME: this.name,
      // In-cluster clients find the real apiserver (its certificate is valid for 127.0.0.1).
      KUBERNETES_SERVICE_HOST: this.ctx.apiServer.hostname,
      KUBERNETES_SERVICE_PORT: this.ctx.apiServer.port || '443',
    };
  }

  /** [container path, host path] pairs: each volume mount, and the termination message file. */
  private async containerMounts(container: k8s.V1Container): Promise<[string, string][]> {
    const pairs: [string, string][] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volumeDir = this.volumeDirs.get(mount.name);
      if (volumeDir === undefined) continue;
      const hostPath = mount.subPath ? join(volumeDir, mount.subPath) : volumeDir;
      // The kubelet creates a missing subPath as a directory.
      if (mount.subPath && !existsSync(hostPath)) await mkdir(hostPath, { recursive: true });
      pairs.push([mount.mountPath, hostPath]);
    }
    pairs.push([container.terminationMessagePath ?? DEFAULT_TERMINATION_MESSAGE_PATH, this.terminationFile(container.name)]);
    return pairs;
  }

  private logPath(container: string, instance: number): string {
    return join(this.dir, 'logs', container, `${instance}.log`);
  }

  private terminationFile(container: string): string {
    return join(this.sandbox, '.termination', container);
  }

  // ── Deadline and stopping ──

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const seconds = this.pod.spec?.activeDeadlineSeconds;
    if (typeof seconds !== 'number' || this.lifecycleOver || this.stopCause) return;
    const remainingMs = this.startTime.getTime() + seconds * 1000 - Date.now();
    this.deadlineTimer = setTimeout(() => {
      this.ctx.log('active deadline exceeded', { pod: this.key, activeDeadlineSeconds: seconds });
      this.ctx.track(this.stopContainers('deadline', this.pod.spec?.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS),
        `stopping pod ${this.key} at its deadline`);
    }, Math.max(0, remainingMs));
  }

  /** Stops all containers: SIGTERM to each process group, SIGKILL after the capped grace period. */
  private async stopContainers(cause: StopCause, graceSeconds: number): Promise<void> {
    this.stopCause ??= cause;
    this.stopping.abort();
    clearTimeout(this.deadlineTimer);
    const graceMs = Math.min(Math.max(graceSeconds, 0) * 1000, MAX_GRACE_MS);
    const running = this.allRuns().flatMap((run) => run.process ? [run.process] : []);
    await Promise.all(running.map((child) => terminateProcessGroup(child, graceMs)));
    await this.lifecycle;
  }

  private allRuns(): ContainerRun[] {
    return [...this.initRuns, ...this.mainRuns];
  }

  // ── Status ──

  private async writeStatus(): Promise<boolean> {
    // A killed pod reports nothing more, not even from a write that was already under way.
    return updatePodStatus(this.ctx.core, this.namespace, this.name, this.uid, (status) => { if (this.stopCause !== 'killed') this.report(status); });
  }

  /** Writes what a kubelet would report now over `status`, keeping the rest (qosClass, foreign conditions). */
  private report(status: k8s.V1PodStatus): void {
    const phase = this.phase();
    const deadlineExceeded = this.lifecycleOver && this.stopCause === 'deadline';
    const ips = [{ ip: LOCALHOST }];
    Object.assign(status, {
      phase,
      reason: deadlineExceeded ? 'DeadlineExceeded' : undefined,
      message: deadlineExceeded ? DEADLINE_MESSAGE : undefined,
      conditions: this.conditions(phase, status.conditions ?? []),
      hostIP: LOCALHOST, hostIPs: ips, podIP: LOCALHOST, podIPs: ips,
      startTime: this.startTime,
      initContainerStatuses: this.initRuns.length > 0 ? this.initRuns.map(containerStatus) : undefined,
      containerStatuses: this.mainRuns.map(containerStatus),
      observedGeneration: this.pod.metadata?.generation,
    } satisfies k8s.V1PodStatus);
  }

  private phase(): string {
    if (this.lifecycleOver && this.stopCause) {
      const allSucceeded = this.mainRuns.every((run) => run.state.kind === 'terminated' && run.state.exitCode === 0);
      return this.stopCause !== 'deadline' && allSucceeded ? 'Succeeded' : 'Failed';
    }
    return kubeletPhase(this.pod.spec?.restartPolicy ?? 'Always', this.initRuns, this.mainRuns);
  }

  private conditions(phase: string, current: readonly k8s.V1PodCondition[]): k8s.V1PodCondition[] {
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const notInitialized = this.initRuns.filter((run) => !succeeded(run)).map((run) => run.spec.name);
    const unready = this.mainRuns.filter((run) => run.state.kind !== 'running').map((run) => run.spec.name);
    const ready = !terminal && unready.length === 0;
    const [unreadyReason, unreadyMessage] = terminal
      ? ['PodCompleted', undefined]
      : ['ContainersNotReady', `containers with unready status: [${unready.join(' ')}]`];
    const kept = current.filter((c) => !KUBELET_POD_CONDITIONS.has(c.type));
    const scheduled = kept.some((c) => c.type === 'PodScheduled') ? [] : [this.condition('PodScheduled', true)];
    return [
      ...kept,
      ...scheduled,
      this.condition('PodReadyToStartContainers', this.sandboxReady && !terminal),
      this.condition('Initialized', notInitialized.length === 0, 'ContainersNotInitialized',
        `containers with incomplete status: [${notInitialized.join(' ')}]`),
      this.condition('ContainersReady', ready, unreadyReason, unreadyMessage),
      this.condition('Ready', ready, unreadyReason, unreadyMessage),
    ];
  }

  /** A condition whose lastTransitionTime moves only when its status does. */
  private condition(type: string, isTrue: boolean, reason?: string, message?: string): k8s.V1PodCondition {
    const status = isTrue ? 'True' : 'False';
    const previous = this.conditionTimes.get(type);
    const lastTransitionTime = previous?.status === status ? previous.time : new Date();
    this.conditionTimes.set(type, { status, time: lastTransitionTime });
    const explanation = isTrue ? {} : { ...(reason ? { reason } : {}), ...(message ? { message } : {}) };
    return { type, status, lastTransitionTime, ...explanation };
  }
}

/** The kubelet's getPhase: Pending until init containers succeed, then from the containers' states. */
function kubeletPhase(restartPolicy: string, initRuns: readonly ContainerRun[], mainRuns: readonly ContainerRun[]): string {
  if (!initRuns.every(succeeded)) {
    const initFailed = initRuns.some((run) => run.state.kind === 'terminated' && run.state.exitCode !== 0);
    return restartPolicy === 'Never' && initFailed ? 'Failed' : 'Pending';
  }
  let waiting = 0, running = 0, stopped = 0, exitedZero = 0;
  for (const run of mainRuns) {
    if (run.state.kind === 'running') running++;
    else if (run.state.kind === 'terminated') { stopped++; if (run.state.exitCode === 0) exitedZero++; }
    else if (run.lastTermination) stopped++; // waiting to restart
    else waiting++;
  }
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (restartPolicy === 'Always' || (restartPolicy === 'OnFailure' && exitedZero < stopped)) return 'Running';
  return exitedZero === stopped ? 'Succeeded' : 'Failed';
}

function succeeded(run: ContainerRun): boolean {
  return run.state.kind === 'terminated' && run.state.exitCode === 0;
}

function containerStatus(run: ContainerRun): k8s.V1ContainerStatus {
  const { state } = run;
  const running = state.kind === 'running';
  const containerID = state.kind === 'waiting' ? run.lastTermination?.containerID : state.containerID;
  return {
    name: run.spec.name,
    image: run.spec.image ?? '',
    imageID: '',
    ...(containerID ? { containerID } : {}),
    // An init container that completed counts as ready, as with the kubelet.
    ready: run.isInit ? succeeded(run) : running,
    started: running,
    restartCount: run.restartCount,
    state: apiState(state),
    lastState: run.lastTermination ? { terminated: apiTermination(run.lastTermination) } : {},
  };
}

function apiState(state: ContainerState): k8s.V1ContainerState {
  switch (state.kind) {
    case 'waiting': return { waiting: { reason: state.reason, ...(state.message ? { message: state.message } : {}) } };
    case 'running': return { running: { startedAt: state.startedAt } };
    case 'terminated': return { terminated: apiTermination(state) };
  }
}

function apiTermination(termination: Termination): k8s.V1ContainerStateTerminated {
  const { exitCode, signal, reason, message, startedAt, finishedAt, containerID } = termination;
  return { exitCode, signal, reason, message, startedAt, finishedAt, containerID };
}

function startFailure(reason: string, message: string): Termination {
  const now = new Date();
  return { exitCode: START_FAILURE_EXIT_CODE, reason, message, startedAt: now, finishedAt: now };
}

/**
 * Collapses bursts of status changes into few writes: one write in flight per pod, and at most
 * one more queued, which writes whatever the state is by then. Failed writes are retried.
 */
class CoalescingWriter {
  private readonly write: () => Promise<boolean>;
  private readonly onError: (error: unknown) => void;
  private readonly track: (task: Promise<unknown>, what: string) => void;
  private readonly closer = new AbortController();
  private pending = false;
  private draining: Promise<void> | undefined;

  /** `write` returns false when the object is gone, which closes the writer. */
  constructor(write: () => Promise<boolean>, onError: (error: unknown) => void, track: (task: Promise<unknown>, what: string) => void) {
    this.write = write;
    this.onError = onError;
    this.track = track;
  }

  request(): void {
    if (this.closer.signal.aborted) return;
    this.pending = true;
    if (this.draining) return;
    this.draining = this.drain();
    this.track(this.draining, 'pod status writer');
  }

  /** Resolves once every requested write happened (or the writer was closed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  close(): void {
    this.closer.abort();
  }

  private async drain(): Promise<void> {
    try {
      await delay(0); // changes made in the same turn go out in one write
      while (this.pending && !this.closer.signal.aborted) {
        this.pending = false;
        try {
          if (!await this.write()) this.close();
        } catch (error) {
          this.onError(error);
          this.pending = true;
          await sleep(RETRY_MS, this.closer.signal);
        }
      }
    } finally {
      // Reset in the same turn as the last `pending` check, so that no request() can be lost.
      this.draining = undefined;
    }
  }
}

// ── Environment, volumes and path rewriting ─────────────────────────────────────────────────

/** Reads what a pod's env and volumes refer to. A missing object is `undefined`, not an error. */
class PodSources {
  private readonly ctx: RuntimeContext;
  private readonly pod: k8s.V1Pod;

  constructor(ctx: RuntimeContext, pod: k8s.V1Pod) {
    this.ctx = ctx;
    this.pod = pod;
  }

  private get namespace(): string {
    return this.pod.metadata?.namespace ?? '';
  }

  async configMap(name: string): Promise<Map<string, Buffer> | undefined> {
    const configMap = await this.ctx.core.readNamespacedConfigMap({ name, namespace: this.namespace }).catch(undefinedIfNotFound);
    // The test control plane runs no root-ca-cert-publisher; serve the CA every pod's API access volume expects.
    if (!configMap && name === 'kube-root-ca.crt') return new Map([['ca.crt', await readFile(this.ctx.caCert)]]);
    if (!configMap) return undefined;
    return new Map([
      ...Object.entries(configMap.data ?? {}).map(([key, value]) => [key, Buffer.from(value)] as const),
      ...Object.entries(configMap.binaryData ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')] as const),
    ]);
  }

  async secret(name: string): Promise<Map<string, Buffer> | undefined> {
    const secret = await this.ctx.core.readNamespacedSecret({ name, namespace: this.namespace }).catch(undefinedIfNotFound);
    if (!secret) return undefined;
    return new Map(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')] as const));
  }

  /** A bound token from the TokenRequest API, as the kubelet puts in projected volumes. */
  async serviceAccountToken(source: k8s.V1ServiceAccountTokenProjection): Promise<string> {
    const { name = '', uid = '' } = this.pod.metadata ?? {};
    const request = await this.ctx.core.createNamespacedServiceAccountToken({
      name: this.pod.spec?.serviceAccountName ?? 'default',
      namespace: this.namespace,
      body: { spec: {
        audiences: source.audience ? [source.audience] : [],
        expirationSeconds: source.expirationSeconds ?? 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
      } },
    });
    return request.status?.token ?? '';
  }

  field(fieldPath: string): string {
    return podFieldValue(this.pod, fieldPath);
  }
}

/** A fieldRef's value: the fields the kubelet supports for env vars and downward API files. */
function podFieldValue(pod: k8s.V1Pod, fieldPath: string): string {
  const metadata = pod.metadata ?? {};
  const subscript = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (subscript) return (subscript[1] === 'labels' ? metadata.labels : metadata.annotations)?.[subscript[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name': return metadata.name ?? '';
    case 'metadata.namespace': return metadata.namespace ?? '';
    case 'metadata.uid': return metadata.uid ?? '';
    case 'metadata.labels': return formatDownwardMap(metadata.labels);
    case 'metadata.annotations': return formatDownwardMap(metadata.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP': case 'status.hostIPs': case 'status.podIP': case 'status.podIPs': return LOCALHOST;
    default: throw new Error(`fieldRef ${fieldPath} is not supported by the node emulator`);
  }
}

/** `key="value"` lines, sorted, as in a downward API file. */
function formatDownwardMap(map: Record<string, string> | undefined): string {
  return Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`).join('\n');
}

/** The container's environment: base, then envFrom, then env, in the kubelet's order. */
async function containerEnvironment(
  container: k8s.V1Container, base: Record<string, string>, sources: PodSources, rewrite: (text: string) => string,
): Promise<Record<string, string>> {
  const env = { ...base };
  for (const from of container.envFrom ?? []) {
    const reference = from.configMapRef ?? from.secretRef;
    if (!reference) continue;
    const kind = from.configMapRef ? 'configmap' : 'secret';
    const name = reference.name ?? '';
    const data = from.configMapRef ? await sources.configMap(name) : await sources.secret(name);
    if (!data) {
      if (reference.optional) continue;
      throw new Error(`${kind} "${name}" not found`);
    }
    for (const [key, value] of data) env[`${from.prefix ?? ''}${key}`] = rewrite(value.toString('utf8'));
  }
  for (const variable of container.env ?? []) {
    const value = variable.valueFrom
      ? await envValueFrom(variable.valueFrom, sources)
      : expandVariables(variable.value ?? '', env);
    if (value !== undefined) env[variable.name] = rewrite(value);
  }
  return env;
}

async function envValueFrom(source: k8s.V1EnvVarSource, sources: PodSources): Promise<string | undefined> {
  if (source.fieldRef) return sources.field(source.fieldRef.fieldPath);
  const keyRef = source.secretKeyRef ?? source.configMapKeyRef;
  if (!keyRef) throw new Error('only value, secretKeyRef, configMapKeyRef and fieldRef env vars are supported by the node emulator');
  const kind = source.secretKeyRef ? 'Secret' : 'ConfigMap';
  const name = keyRef.name ?? '';
  const data = source.secretKeyRef ? await sources.secret(name) : await sources.configMap(name);
  const value = data?.get(keyRef.key);
  if (value !== undefined) return value.toString('utf8');
  if (keyRef.optional) return undefined;
  throw new Error(data ? `couldn't find key ${keyRef.key} in ${kind} ${sources.field('metadata.namespace')}/${name}`
    : `${kind.toLowerCase()} "${name}" not found`);
}

/** Kubernetes' `$(VAR)` expansion: known variables are replaced, `$$` is a literal `$`. */
function expandVariables(text: string, env: Record<string, string>): string {
  return text.replace(/\$(\$|\(([A-Za-z_][A-Za-z0-9_.-]*)\))/g, (match, escapedOrReference: string, name: string | undefined) => {
    if (escapedOrReference === '$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? env[name] ?? match : match;
  });
}

/**
 * Replaces container paths by host paths in a string, whole path components only, longest
 * first, in one pass (a host path under a mount path, e.g. /tmp, is never rewritten twice).
 */
function pathRewriter(pairs: readonly (readonly [string, string])[]): (text: string) => string {
  const targets = new Map(pairs
    .map(([from, to]) => [from.length > 1 ? from.replace(/\/+$/, '') : from, to] as const)
    .filter(([from]) => from.length > 1));
  if (targets.size === 0) return (text) => text;
  const alternatives = [...targets.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(`(?<![\\w.-])(?:${alternatives.join('|')})(?![\\w.-])`, 'g');
  return (text) => text.replace(pattern, (match) => targets.get(match) ?? match);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Writes each volume under `root/<name>` and returns volume name → host directory. */
async function materializeVolumes(volumes: readonly k8s.V1Volume[], root: string, sources: PodSources, log: EmulatorLog): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const volume of volumes) {
    if (volume.hostPath) { dirs.set(volume.name, volume.hostPath.path); continue; }
    const dir = join(root, volume.name);
    await mkdir(dir, { recursive: true });
    const files = await volumeFiles(volume, sources);
    if (files === undefined) log('volume type not emulated, mounting an empty directory', { volume: volume.name });
    for (const [path, content] of files ?? []) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    dirs.set(volume.name, dir);
  }
  return dirs;
}

/** The files a volume holds (relative path → content); undefined for a type that is not emulated. */
async function volumeFiles(volume: k8s.V1Volume, sources: PodSources): Promise<Map<string, Buffer> | undefined> {
  if (volume.emptyDir) return new Map();
  if (volume.configMap) {
    const { name = '', items, optional } = volume.configMap;
    return keyedFiles(await sources.configMap(name), items, `configmap "${name}"`, optional);
  }
  if (volume.secret) {
    const { secretName = '', items, optional } = volume.secret;
    return keyedFiles(await sources.secret(secretName), items, `secret "${secretName}"`, optional);
  }
  if (volume.downwardAPI) return downwardApiFiles(volume.downwardAPI.items ?? [], sources);
  if (volume.projected) {
    const files = new Map<string, Buffer>();
    for (const source of volume.projected.sources ?? []) {
      for (const [path, content] of await projectedFiles(source, sources)) files.set(path, content);
    }
    return files;
  }
  return undefined;
}

async function projectedFiles(source: k8s.V1VolumeProjection, sources: PodSources): Promise<Map<string, Buffer>> {
  if (source.configMap) {
    const { name = '', items, optional } = source.configMap;
    return keyedFiles(await sources.configMap(name), items, `configmap "${name}"`, optional);
  }
  if (source.secret) {
    const { name = '', items, optional } = source.secret;
    return keyedFiles(await sources.secret(name), items, `secret "${name}"`, optional);
  }
  if (source.downwardAPI) return downwardApiFiles(source.downwardAPI.items ?? [], sources);
  if (source.serviceAccountToken) {
    return new Map([[source.serviceAccountToken.path, Buffer.from(await sources.serviceAccountToken(source.serviceAccountToken))]]);
  }
  return new Map();
}

/** All keys of a ConfigMap/Secret as files, or only `items` (key → path). */
function keyedFiles(data: Map<string, Buffer> | undefined, items: readonly k8s.V1KeyToPath[] | undefined,
  what: string, optional: boolean | undefined): Map<string, Buffer> {
  if (!data) {
    if (optional) return new Map();
    throw new Error(`${what} not found`);
  }
  if (!items) return data;
  const files = new Map<string, Buffer>();
  for (const { key, path } of items) {
    const value = data.get(key);
    if (value !== undefined) files.set(path, value);
    else if (!optional) throw new Error(`${what} has no key ${key}`);
  }
  return files;
}

function downwardApiFiles(items: readonly k8s.V1DownwardAPIVolumeFile[], sources: PodSources): Map<string, Buffer> {
  // resourceFieldRef items are skipped: the emulator has no resource model.
  return new Map(items.flatMap((item) => item.fieldRef ? [[item.path, Buffer.from(sources.field(item.fieldRef.fieldPath))] as const] : []));
}

// ── Processes ───────────────────────────────────────────────────────────────────────────────

interface Invocation {
  readonly file: string;
  readonly args: string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
}

interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

interface StartedProcess {
  /** Undefined when the process could not be started; `exited` then carries the error. */
  readonly pid: number | undefined;
  readonly exited: Promise<ProcessExit>;
}

/** command + args after `$(VAR)` expansion and path rewriting; cwd as documented in the header. */
function buildInvocation(container: k8s.V1Container, env: Record<string, string>, rewrite: (text: string) => string, sandbox: string): Invocation {
  const expand = (text: string) => rewrite(expandVariables(text, env));
  const [file = '', ...commandArgs] = (container.command ?? []).map(expand);
  const workingDir = container.workingDir ? rewrite(container.workingDir) : undefined;
  return {
    file,
    args: [...commandArgs, ...(container.args ?? []).map(expand)],
    cwd: workingDir !== undefined && existsSync(workingDir) ? workingDir : sandbox,
    env,
  };
}

/** Spawns in a new process group (detached), stdout and stderr both appended to `outputFd`. */
function startProcess(invocation: Invocation, outputFd: number): StartedProcess {
  try {
    const child = spawn(invocation.file, invocation.args, {
      cwd: invocation.cwd, env: invocation.env, detached: true, stdio: ['ignore', outputFd, outputFd],
    });
    // Listeners go on before anything awaits, so an instant exit is never missed.
    const exited = new Promise<ProcessExit>((resolve) => {
      child.on('exit', (code, signal) => { resolve({ code, signal }); });
      child.on('error', (error) => { if (child.pid === undefined) resolve({ code: null, signal: null, error }); });
    });
    return { pid: child.pid, exited };
  } catch (error) {
    return { pid: undefined, exited: Promise.resolve({ code: null, signal: null, error: toError(error) }) };
  }
}

/** SIGTERM to the group; SIGKILL if the main process is still there after `graceMs`. */
async function terminateProcessGroup(running: RunningProcess, graceMs: number): Promise<void> {
  signalProcessGroup(running.pid, 'SIGTERM');
  const timer = new AbortController();
  const exitedInTime = await Promise.race([running.exited.then(() => true), sleep(graceMs, timer.signal).then(() => false)]);
  timer.abort();
  if (!exitedInTime) {
    signalProcessGroup(running.pid, 'SIGKILL');
    await running.exited;
  }
}

function signalProcessGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? osConstants.signals[signal] : 0;
}

// ── Log files and the log endpoint ──────────────────────────────────────────────────────────

interface LogQuery {
  readonly follow: boolean;
  readonly previous: boolean;
  readonly tailLines?: number;
  readonly limitBytes?: number;
}

function parseLogQuery(params: URLSearchParams): LogQuery {
  const count = (name: string) => {
    const value = Number.parseInt(params.get(name) ?? '', 10);
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  };
  return { follow: params.get('follow') === 'true', previous: params.get('previous') === 'true', tailLines: count('tailLines'), limitBytes: count('limitBytes') };
}

/** Sends a log file; with follow, keeps sending what is appended while `live()` holds. */
async function streamLog(response: ServerResponse, file: string, query: LogQuery, live: () => boolean, closed: AbortSignal): Promise<void> {
  const handle = await open(file, 'r');
  try {
    let position = query.tailLines === undefined ? 0 : await tailOffset(handle, query.tailLines);
    let budget = query.limitBytes ?? Number.POSITIVE_INFINITY;
    response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    for (;;) {
      // Read liveness before the data: whatever a process wrote before it exited is then still sent.
      const more = query.follow && live();
      const sent = await copyToResponse(handle, position, budget, response, closed);
      position += sent;
      budget -= sent;
      if (!more || budget <= 0 || !await sleep(FOLLOW_POLL_MS, closed)) break;
    }
  } finally {
    await handle.close();
    response.end();
  }
}

/** Copies from `position` to the end of the file, at most `budget` bytes; returns the count. */
async function copyToResponse(handle: FileHandle, position: number, budget: number, response: ServerResponse, closed: AbortSignal): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  while (sent < budget && !closed.aborted) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, budget - sent), position + sent);
    if (bytesRead === 0) break;
    sent += bytesRead;
    if (!response.write(Buffer.from(chunk.subarray(0, bytesRead)))) await once(response, 'drain', { signal: closed });
  }
  return sent;
}

/** Offset where the last `lines` lines start (a final newline does not start another line). */
async function tailOffset(handle: FileHandle, lines: number): Promise<number> {
  const { size } = await handle.stat();
  if (lines === 0) return size;
  const chunk = Buffer.alloc(64 * 1024);
  let newlines = 0;
  for (let end = size; end > 0;) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (chunk[i] !== 0x0a || start + i === size - 1) continue;
      if (++newlines === lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

async function readLogTail(file: string, lines: number, maxBytes: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.max(await tailOffset(handle, lines), size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The first `maxBytes` of a file; '' if it does not exist. */
async function readHead(file: string, maxBytes: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const buffer = Buffer.alloc(maxBytes);
    const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

async function emptyFile(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, '');
}

function reply(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(message);
}

// ── API helpers ─────────────────────────────────────────────────────────────────────────────

/** Read, change, write back with the read resourceVersion; on a conflict start over. */
async function readModifyWrite<T>(read: () => Promise<T>, change: (object: T) => boolean, write: (object: T) => Promise<unknown>): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const object = await read();
    if (!change(object)) return false;
    try {
      await write(object);
      return true;
    } catch (error) {
      if (!isConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
    }
  }
}

/** Changes the status of the pod with this uid in place and writes it; false if that pod no longer exists. */
async function updatePodStatus(core: k8s.CoreV1Api, namespace: string, name: string, uid: string,
  change: (status: k8s.V1PodStatus) => void): Promise<boolean> {
  try {
    return await readModifyWrite(() => core.readNamespacedPod({ name, namespace }), (pod) => {
      if (pod.metadata?.uid !== uid) return false;
      change(pod.status ??= {});
      return true;
    }, (pod) => core.replaceNamespacedPodStatus({ name, namespace, body: pod }));
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

async function updateNode(core: k8s.CoreV1Api, name: string, change: (node: k8s.V1Node) => void): Promise<void> {
  await readModifyWrite(() => core.readNode({ name }), (node) => { change(node); return true; }, (node) => core.replaceNode({ name, body: node }));
}

async function updateNodeStatus(core: k8s.CoreV1Api, name: string, change: (node: k8s.V1Node) => void): Promise<void> {
  await readModifyWrite(() => core.readNode({ name }), (node) => { change(node); return true; }, (node) => core.replaceNodeStatus({ name, body: node }));
}

/** The final delete of the kubelet: grace 0, only this uid (a recreated pod of the same name is not ours). */
async function deletePodNow(core: k8s.CoreV1Api, namespace: string, name: string, uid: string): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
  } catch (error) {
    if (!isNotFound(error) && !isConflict(error)) throw error;
  }
}

/** Node conditions as the kubelet reports them (True = Ready), or as the node lifecycle controller marks a silent node (Unknown). */
function nodeConditions(ready: 'True' | 'Unknown', now: Date): k8s.V1NodeCondition[] {
  const unknown = { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' };
  const condition = (type: string, status: string, reason: string, message: string): k8s.V1NodeCondition => ({
    type, ...(ready === 'Unknown' ? unknown : { status, reason, message }), lastHeartbeatTime: now, lastTransitionTime: now,
  });
  return [
    condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
    condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
    condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
    condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
  ];
}

/** A toleration without tolerationSeconds for unreachable:NoExecute keeps the taint manager away. */
function toleratesUnreachableForever(pod: k8s.V1Pod): boolean {
  return (pod.spec?.tolerations ?? []).some((toleration) =>
    (toleration.key === UNREACHABLE_TAINT || (!toleration.key && toleration.operator === 'Exists'))
    && (!toleration.effect || toleration.effect === 'NoExecute')
    && typeof toleration.tolerationSeconds !== 'number');
}

/** Signs a serving certificate for 127.0.0.1 with the cluster CA (the apiserver verifies kubelets with it). */
async function issueServingCertificate(dir: string, ca: { caCert: string; caKey: string }, nodeName: string): Promise<{ cert: Buffer; key: Buffer }> {
  await mkdir(dir, { recursive: true });
  const [key, csr, cert, ext] = ['kubelet.key', 'kubelet.csr', 'kubelet.crt', 'kubelet.ext'].map((file) => join(dir, file)) as [string, string, string, string];
  await writeFile(ext, `subjectAltName=IP:${LOCALHOST},DNS:localhost,DNS:${nodeName}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
  await execFileAsync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', csr, '-subj', `/O=system:nodes/CN=system:node:${nodeName}`]);
  // A random serial instead of -CAcreateserial: parallel test files must not race on the CA's serial file.
  await execFileAsync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey,
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '30', '-out', cert, '-extfile', ext]);
  return { cert: await readFile(cert), key: await readFile(key) };
}

// ── Small helpers ───────────────────────────────────────────────────────────────────────────

function isTerminal(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function isNotFound(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 404;
}

function isConflict(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 409;
}

function undefinedIfNotFound(error: unknown): undefined {
  if (isNotFound(error)) return undefined;
  throw error;
}

/** Timestamps are Date objects in typed responses but strings in raw watch events. */
function parseTime(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  return typeof value === 'string' ? new Date(value) : undefined;
}

/** Resolves true after `ms`, false as soon as `signal` aborts; never rejects, leaves no timer behind. */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function goArch(): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return names[arch()] ?? arch();
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function errorMessage(error: unknown): string {
  if (error instanceof k8s.ApiException) return `HTTP ${error.code}: ${String(error.body).slice(0, 300)}`;
  return toError(error).message;
}
