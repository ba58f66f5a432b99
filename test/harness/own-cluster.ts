/**
 * Our own control plane for a benchmark or a chaos run (never the shared one), Kubernetes clients
 * for it, and a helper that kills etcd or kube-apiserver and starts it again with the very same
 * flags and data dir, read from its pid file and /proc/<pid>/cmdline (nothing in test/harness is
 * extended for that).
 */
import * as k8s from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminGet, type ClusterInfo } from './control-plane.ts';
import { startLocalCluster, stopLocalCluster } from './local-cluster.ts';
import type { NodeMode } from './real-node.ts';
import { sleep } from './measure.ts';

export interface OwnCluster {
  readonly info: ClusterInfo;
  readonly kube: Kube;
  stop(): Promise<void>;
}

/**
 * Starts etcd (fsync on unless `unsafeNoFsync`), kube-apiserver and kube-controller-manager in a
 * fresh state dir; with `nodeMode: 'real'` also kube-scheduler and `realNodes` real nodes
 * (test/harness/local-cluster.ts). The default is no node: the caller starts node emulators.
 */
export async function startOwnCluster(label: string, options: { unsafeNoFsync?: boolean; log?: (s: string) => void; nodeMode?: NodeMode; realNodes?: number } = {}): Promise<OwnCluster> {
  const stateDir = await mkdtemp(join(tmpdir(), `agentrun-${label}-`));
  const info = await startLocalCluster({
    stateDir, unsafeNoFsync: options.unsafeNoFsync ?? false, log: options.log, nodeMode: options.nodeMode ?? 'emulator', realNodeCount: options.realNodes ?? 1,
  }).catch(async (error: unknown) => {
    await stopLocalCluster(stateDir, { keepState: true });
    throw new Error(`cluster did not start (logs in ${stateDir}/logs): ${String(error)}`);
  });
  return { info, kube: new Kube(info.kubeconfig), stop: () => stopLocalCluster(stateDir) };
}

/** Kubernetes clients for one kubeconfig. */
export class Kube {
  readonly kc: k8s.KubeConfig;
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly rbac: k8s.RbacAuthorizationV1Api;
  readonly coordination: k8s.CoordinationV1Api;

  readonly kubeconfig: string;

  constructor(kubeconfig: string) {
    this.kubeconfig = kubeconfig;
    this.kc = new k8s.KubeConfig();
    this.kc.loadFromFile(kubeconfig);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.custom = this.kc.makeApiClient(k8s.CustomObjectsApi);
    this.rbac = this.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    this.coordination = this.kc.makeApiClient(k8s.CoordinationV1Api);
  }

  /** A namespace with a unique name whose default ServiceAccount exists (pods need it). */
  async createNamespace(prefix: string): Promise<string> {
    return createUniqueNamespace(this.core, prefix);
  }

  async createRun(namespace: string, name: string, spec: Record<string, unknown>): Promise<AgentRunLike> {
    // On a cold apiserver a new CRD's kind can answer 503 "Resource kind ... not found" for a
    // moment after it is Established and listable: retry those, nothing else.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.custom.createNamespacedCustomObject({
          group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace,
          body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name }, spec },
        }) as AgentRunLike;
      } catch (error) {
        if ((error as { code?: number }).code !== 503 || attempt >= 50) throw error;
        await sleep(200);
      }
    }
  }

  async listRuns(namespace: string): Promise<AgentRunLike[]> {
    const list = await this.custom.listNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace }) as { items: AgentRunLike[] };
    return list.items;
  }

  async getRun(namespace: string, name: string): Promise<AgentRunLike> {
    return await this.custom.getNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace, name }) as AgentRunLike;
  }
}

/** The fields of an AgentRun the harnesses read (kept loose: the API is being edited). */
export interface StepLike {
  id: number; kind: string; turn?: number; phase: string; tool?: string; toolUseId?: string; attempt?: number;
  podName?: string; journal?: { name: string; digest: string }; outcome?: string;
  approval?: { decision: string; by?: string };
}
export interface AgentRunLike {
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string>; creationTimestamp?: string | Date };
  status?: {
    phase?: string; result?: string; message?: string; steps?: StepLike[];
    pendingApprovals?: { step: number; kind?: string; tool?: string }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** Creates `${prefix}-<random>` and waits for its default ServiceAccount (pod admission needs it). */
export async function createUniqueNamespace(core: k8s.CoreV1Api, prefix: string, labels?: Record<string, string>): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, ...(labels ? { labels } : {}) } } });
  for (let i = 0; i < 300; i++) {
    try { await core.readNamespacedServiceAccount({ name: 'default', namespace: name }); return name; } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error(`namespace ${name}: default ServiceAccount never appeared (is kube-controller-manager running?)`);
}

export const finished = (run: AgentRunLike): boolean => ['Succeeded', 'Failed', 'Cancelled'].includes(run.status?.phase ?? '');

/** Polls every `everyMs` until `fn` returns a value, or throws after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < end) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (error) { lastError = error; }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}

// ─────────────────────────────── control-plane process restarts ───────────────────────────────

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie (killed, not reaped yet) counts as gone.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface RestartRecord { component: string; killedAt: number; startedAt: number; readyAt: number; downMs: number; oldPid: number; newPid: number }

/**
 * SIGKILLs `component` (etcd or kube-apiserver) of the control plane in `stateDir`, waits
 * `downMs`, starts it again with the same executable, flags and data dir (appending to its log),
 * updates its pid file (so stopControlPlane still stops it), and waits until the apiserver's
 * /readyz answers 200 again.
 */
export async function restartComponent(cluster: ClusterInfo, component: 'etcd' | 'kube-apiserver', downMs = 1_000, extraArgs: readonly string[] = []): Promise<RestartRecord> {
  const pidFile = join(cluster.stateDir, `${component}.pid`);
  const oldPid = Number(await readFile(pidFile, 'utf8'));
  const argv = (await readFile(`/proc/${oldPid}/cmdline`)).toString('utf8').split('\0').filter((a) => a !== '');
  const [exe, ...args] = argv;
  if (!exe) throw new Error(`cannot read the command line of ${component} (pid ${oldPid})`);
  const killedAt = Date.now();
  process.kill(oldPid, 'SIGKILL');
  for (let i = 0; i < 200 && alive(oldPid); i++) await sleep(25);
  await sleep(downMs);
  const logPath = join(cluster.stateDir, 'logs', `${component}.log`);
  const startedAt = Date.now();
  let lastExit = '';
  // A process that exits at once (e.g. its port not released yet) is started again, bounded.
  for (let attempt = 1; attempt <= 5; attempt++) {
    const out = await open(logPath, 'a');
    const child = spawn(exe, [...args, ...extraArgs], { stdio: ['ignore', out.fd, out.fd] });
    await out.close();
    const newPid = child.pid ?? 0;
    await writeFile(pidFile, String(newPid));
    const ready = await until(`${component} to be back (apiserver /readyz)`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) return false;
      return (await adminGet(cluster, '/readyz')).status === 200 ? true : undefined;
    }, 120_000, 200);
    if (ready) return { component, killedAt, startedAt, readyAt: Date.now(), downMs, oldPid, newPid };
    lastExit = `exit ${String(child.exitCode)} ${String(child.signalCode)}: ${(await readFile(logPath, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-5).join(' | ')}`;
    await sleep(1_000);
  }
  throw new Error(`${component} did not come back after 5 starts; last: ${lastExit}`);
}

/** etcd's client URL, read from its command line (for etcd's own /metrics). */
export async function etcdUrl(cluster: ClusterInfo): Promise<string> {
  const pid = Number(await readFile(join(cluster.stateDir, 'etcd.pid'), 'utf8'));
  const argv = (await readFile(`/proc/${pid}/cmdline`)).toString('utf8').split('\0');
  const flag = argv.find((a) => a.startsWith('--listen-client-urls='));
  if (!flag) throw new Error('etcd has no --listen-client-urls');
  return flag.slice('--listen-client-urls='.length).split(',')[0] ?? '';
}

export function pidOf(cluster: ClusterInfo, component: string): number {
  const file = join(cluster.stateDir, `${component}.pid`);
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0;
}
