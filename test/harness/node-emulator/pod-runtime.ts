/**
 * PodRuntime: runs one pod bound to the emulated node and reports its status like a kubelet.
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { CoalescingWriter } from './coalescing-writer.ts';
import { DEADLINE_MESSAGE, DEFAULT_GRACE_SECONDS, DEFAULT_TERMINATION_MESSAGE_PATH, FALLBACK_LOG_BYTES, FALLBACK_LOG_LINES, LOCALHOST, MAX_GRACE_MS, MAX_TERMINATION_MESSAGE_BYTES, RESTART_BACKOFF_BASE_MS, RESTART_BACKOFF_MAX_MS, RETRY_MS } from './constants.ts';
import { containerStatus, kubeletPhase, startFailure } from './container-status.ts';
import { PodConditions } from './pod-conditions.ts';
import { emptyFile, readHead, readLogTail } from './log-endpoint.ts';
import { deletePodNow, updatePodStatus } from './node-api.ts';
import { PodSources, containerEnvironment, pathRewriter } from './pod-environment.ts';
import { type StartedProcess, buildInvocation, signalNumber, signalProcessGroup, startProcess, terminateProcessGroup } from './processes.ts';
import type { ContainerRun, ContainerState, EmulatedProcess, LogTarget, RunningProcess, RuntimeContext, StopCause, Termination } from './types.ts';
import { errorMessage, parseTime, sleep } from './util.ts';
import { materializeVolumes } from './volumes.ts';

/**
 * Runs one pod bound to this node and reports its status. `dir` holds `sandbox/` (cwd, HOME,
 * volumes, termination message files) and `logs/<container>/<restartCount>.log`.
 */
export class PodRuntime {
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
  private readonly podConditions = new PodConditions();
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
      conditions: this.podConditions.build(phase, status.conditions ?? [], this.initRuns, this.mainRuns, this.sandboxReady),
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
}
