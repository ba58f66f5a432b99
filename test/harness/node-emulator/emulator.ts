/**
 * NodeEmulator: the stand-in kubelet (registers the Node, binds and runs pods, serves logs).
 */
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:https';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_GRACE_SECONDS, EMULATOR_TAINT, HEARTBEAT_MS, KUBELET_VERSION, LOCALHOST, NODE_LIFECYCLE_TAINTS, RETRY_MS, UNREACHABLE_TAINT } from './constants.ts';
import { closeLogEndpoint, listenForLogRequests, reply, serveContainerLogs } from './log-endpoint.ts';
import { deletePodNow, issueServingCertificate, nodeConditions, toleratesUnreachableForever, updateNode, updateNodeStatus, updatePodStatus } from './node-api.ts';
import { PodRuntime } from './pod-runtime.ts';
import type { EmulatedProcess, EmulatorLog, NodeEmulatorOptions } from './types.ts';
import { errorMessage, goArch, isConflict, isTerminal } from './util.ts';

/**
 * Emulates one kubelet: see index.ts for what runs how. Lifecycle: `start()`, then either
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
    await this.taintUnreachable();
    await this.evictPodsLikeTheTaintManager();
  }

  /**
   * Taints the node unreachable (NoExecute and NoSchedule), as the node lifecycle controller does
   * for a node that stopped reporting. The real kube-controller-manager also manages these taints:
   * until its cache has the Unknown status it may take NoExecute off again, so the taints are
   * applied until both are seen together (bounded).
   */
  private async taintUnreachable(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      await updateNode(this.core, this.nodeName, (node) => {
        const now = new Date();
        const spec = node.spec ??= {};
        spec.taints = [...(spec.taints ?? []).filter((taint) => taint.key !== UNREACHABLE_TAINT),
          { key: UNREACHABLE_TAINT, effect: 'NoExecute', timeAdded: now },
          { key: UNREACHABLE_TAINT, effect: 'NoSchedule', timeAdded: now }];
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const taints = (await this.core.readNode({ name: this.nodeName })).spec?.taints ?? [];
      const has = (effect: string) => taints.some((t) => t.key === UNREACHABLE_TAINT && t.effect === effect);
      if ((has('NoExecute') && has('NoSchedule')) || Date.now() > deadline) return;
    }
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
    const { server, port } = await listenForLogRequests(tls, ca, (request, response) => {
      const served = serveContainerLogs(request, response, (namespace, podName, container, previous) => {
        const runtime = [...this.runtimes.values()].findLast((r) => r.namespace === namespace && r.name === podName);
        return runtime
          ? runtime.logFor(container, previous)
          : { status: 404, message: `pod "${podName}" in namespace "${namespace}" is not on node "${this.nodeName}"` };
      }).catch((error: unknown) => {
        if (response.headersSent) response.destroy();
        else reply(response, 500, `node emulator: ${errorMessage(error)}\n`);
        throw error;
      });
      this.track(served, `serving ${request.url ?? ''}`);
    });
    this.server = server;
    return port;
  }

  private async closeLogServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeLogEndpoint(server);
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
