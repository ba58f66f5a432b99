/**
 * A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and kube-controller-manager
 * built from the Go module proxy by `npm run cluster:install`. Used by `npm run cluster:up`, the
 * integration tests' globalSetup, the benchmarks and the local dev stack.
 *
 * Nothing here runs containers; see node-emulator.ts for that.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdir, writeFile, readFile, rm, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'node:https';
import { promisify } from 'node:util';
import { alive, launchDaemon, pollUntil, tailLog, type Launched } from './daemons.ts';

const execFileAsync = promisify(execFile);
/** Lines of a daemon's log quoted when it fails to start. */
const LOG_TAIL_LINES = 25;

/** The repository root. */
export const repoRoot = resolve(import.meta.dirname, '..', '..');

/** Where `cluster:install` puts the binaries; `current` points at the pinned versions. */
export function binDir(): string {
  if (process.env.AGENTRUN_BIN_DIR) return process.env.AGENTRUN_BIN_DIR;
  const cache = process.env.AGENTRUN_CACHE_DIR
    ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'agentrun-operator');
  return join(cache, 'bin', 'current');
}

/** Path of a control-plane binary, failing with the command that installs it. */
export function binary(name: 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kubectl' | 'helm'): string {
  const path = join(binDir(), name);
  if (!existsSync(path)) {
    throw new ControlPlaneError(`${name} not found at ${path}: run \`npm run cluster:install\` first (builds it from the Go module proxy)`);
  }
  return path;
}

/** The control plane could not start; the message quotes the failing process's log. */
export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
}

/** Everything a client needs to reach a running control plane. */
export interface ClusterInfo {
  readonly stateDir: string;
  readonly server: string;
  /** Admin kubeconfig (group system:masters). */
  readonly kubeconfig: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly pids: Record<string, number>;
  /** Who runs pods: real nodes (kubelet + containerd) or the node emulator; see local-cluster.ts. */
  readonly nodes?: ClusterNodes;
}

/** The nodes of a local cluster, as tests and scripts need to know them. */
export interface ClusterNodes {
  readonly mode: 'real' | 'emulator';
  /** Why this mode (AGENTRUN_NODE, not root, …). */
  readonly why: string;
  /** Real nodes' names (empty with the emulator: each test starts its own). */
  readonly names: readonly string[];
  /** The address pods reach this machine's test servers on: a node IP, or 127.0.0.1 with the emulator. */
  readonly hostIP: string;
}

/** Options of {@link startControlPlane}. */
export interface StartOptions {
  /** Directory for certificates, etcd data, logs and the kubeconfig; created, and removed by stop(). */
  readonly stateDir: string;
  /** Detach the processes so they outlive this Node process (cluster:up); tests keep them attached. */
  readonly detached?: boolean;
  /** etcd without fsync: fine for tests, never for benchmarks. */
  readonly unsafeNoFsync?: boolean;
  /** Apply crds/*.yaml and wait until they are Established. */
  readonly installCrds?: boolean;
  readonly log?: (line: string) => void;
  /**
   * Prepare for real kubelets: run kube-scheduler, and the node lifecycle, taint eviction, pod GC,
   * root CA publisher, Deployment and ReplicaSet controllers (the operator installed by Helm), with
   * short grace periods (a node silent for 20 s is
   * unreachable; its pods are evicted 10 s later). The node emulator binds pods itself and does
   * not want a scheduler.
   */
  readonly realNodes?: boolean;
}

/** Reserves a free TCP port on 127.0.0.1 (the OS picks it; we release it just before use). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') { reject(new Error('no port')); return; }
      server.close(() => { resolvePort(address.port); });
    });
  });
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (error) {
    throw new ControlPlaneError(`openssl ${args.slice(0, 2).join(' ')} failed: ${String(error)}`);
  }
}

/**
 * Issues a client certificate signed by the cluster CA. The apiserver authenticates it as user
 * `commonName` in `groups` (the certificate's O fields): that is how tests act as non-admins.
 */
export async function issueClientCertificate(
  cluster: Pick<ClusterInfo, 'stateDir' | 'caCert' | 'caKey'>,
  commonName: string,
  groups: readonly string[] = [],
): Promise<{ cert: string; key: string }> {
  const dir = join(cluster.stateDir, 'pki');
  const base = join(dir, `user-${commonName.replace(/[^a-zA-Z0-9.-]/g, '_')}`);
  const subject = '/' + [...groups.map((g) => `O=${g}`), `CN=${commonName}`].join('/');
  await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subject], dir);
  await writeFile(`${base}.ext`, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  // A random serial, not -CAcreateserial: test files sign at once, and a shared serial file races.
  await openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', cluster.caCert, '-CAkey', cluster.caKey, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
    '-out', `${base}.crt`, '-days', '30', '-extfile', `${base}.ext`], dir);
  return { cert: `${base}.crt`, key: `${base}.key` };
}

/** Writes a kubeconfig for a client certificate, with a context named `agentrun-local`. */
export async function writeKubeconfig(
  path: string,
  cluster: Pick<ClusterInfo, 'server' | 'caCert'>,
  user: { name: string; cert: string; key: string },
  namespace = 'default',
): Promise<string> {
  const [ca, cert, key] = await Promise.all([readFile(cluster.caCert), readFile(user.cert), readFile(user.key)]);
  const b64 = (b: Buffer) => b.toString('base64');
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: agentrun-local
  cluster:
    server: ${cluster.server}
    certificate-authority-data: ${b64(ca)}
users:
- name: ${user.name}
  user:
    client-certificate-data: ${b64(cert)}
    client-key-data: ${b64(key)}
contexts:
- name: agentrun-local
  context: {cluster: agentrun-local, user: ${user.name}, namespace: ${namespace}}
current-context: agentrun-local
`;
  await writeFile(path, yaml, { mode: 0o600 });
  return path;
}

/** A kubeconfig for `commonName` in `groups`: a second identity for RBAC tests. */
export async function userKubeconfig(cluster: ClusterInfo, commonName: string, groups: readonly string[] = []): Promise<string> {
  const pair = await issueClientCertificate(cluster, commonName, groups);
  const path = join(cluster.stateDir, `kubeconfig-${commonName.replace(/[^a-zA-Z0-9.-]/g, '_')}`);
  return writeKubeconfig(path, cluster, { name: commonName, ...pair });
}

async function generatePki(stateDir: string): Promise<void> {
  const dir = join(stateDir, 'pki');
  await mkdir(dir, { recursive: true });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30',
    '-subj', '/CN=agentrun-local-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  // One serving certificate for the apiserver and the emulated kubelets, all on 127.0.0.1.
  await writeFile(join(dir, 'serving.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\n'
    + 'extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'serving.key', '-out', 'serving.csr', '-subj', '/CN=127.0.0.1'], dir);
  await openssl(['x509', '-req', '-in', 'serving.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'serving.crt',
    '-days', '30', '-extfile', 'serving.ext'], dir);
  await openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  await openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

async function launch(name: string, args: readonly string[], stateDir: string, detached: boolean): Promise<Launched> {
  const launched = await launchDaemon(binary(name as 'etcd'), args, join(stateDir, 'logs', `${name}.log`), detached);
  await writeFile(join(stateDir, `${name}.pid`), String(launched.child.pid));
  return launched;
}

/** GETs `path` on the apiserver with the admin client certificate (raw: /metrics, /readyz). */
export async function adminGet(cluster: Pick<ClusterInfo, 'server' | 'stateDir'>, path: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  const pki = join(cluster.stateDir, 'pki');
  const [ca, cert, key] = await Promise.all(['ca.crt', 'admin.crt', 'admin.key'].map((f) => readFile(join(pki, f))));
  return new Promise((resolveGet, reject) => {
    const req = request(new URL(path, cluster.server), { ca, cert, key, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => { resolveGet({ status: res.statusCode ?? 0, body }); });
    });
    req.on('timeout', () => { req.destroy(new Error('timeout')); });
    req.on('error', reject);
    req.end();
  });
}

async function waitUntil(what: string, deadlineMs: number, check: () => Promise<boolean>, onTimeout: () => Promise<string>): Promise<void> {
  // A process that died is final; anything else (connection refused, 403 while RBAC
  // bootstraps) just means "not yet".
  if (await pollUntil(deadlineMs, check, (error) => error instanceof ControlPlaneError)) return;
  throw new ControlPlaneError(`${what} did not become ready within ${deadlineMs / 1000}s\n${await onTimeout()}`);
}

function exited(launched: Launched): boolean {
  return launched.child.exitCode !== null || launched.child.signalCode !== null;
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager on free ports of 127.0.0.1, with
 * generated certificates, RBAC authorization, and an admin kubeconfig in `stateDir/kubeconfig`.
 */
export async function startControlPlane(options: StartOptions): Promise<ClusterInfo> {
  const { stateDir, detached = false, log = () => undefined } = options;
  for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const) binary(b);
  await mkdir(join(stateDir, 'logs'), { recursive: true });
  const pki = join(stateDir, 'pki');
  const started = Date.now();
  log('generating certificates');
  await generatePki(stateDir);
  const caCert = join(pki, 'ca.crt');
  const caKey = join(pki, 'ca.key');
  const admin = await issueClientCertificate({ stateDir, caCert, caKey }, 'admin', ['system:masters']);
  await Promise.all([
    writeFile(join(pki, 'admin.crt'), await readFile(admin.cert)),
    writeFile(join(pki, 'admin.key'), await readFile(admin.key)),
  ]);

  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  log(`starting etcd on ${etcdUrl}`);
  const etcd = await launch('etcd', [
    `--data-dir=${join(stateDir, 'etcd')}`, `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=default=http://127.0.0.1:${peerPort}`, '--log-level=warn',
    ...(options.unsafeNoFsync ? ['--unsafe-no-fsync=true'] : []),
  ], stateDir, detached);

  const server = `https://127.0.0.1:${apiPort}`;
  log(`starting kube-apiserver on ${server}`);
  const apiserver = await launch('kube-apiserver', [
    `--etcd-servers=${etcdUrl}`, `--cert-dir=${pki}`,
    `--tls-cert-file=${join(pki, 'serving.crt')}`, `--tls-private-key-file=${join(pki, 'serving.key')}`,
    `--secure-port=${apiPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
    '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
    '--authorization-mode=Node,RBAC', `--client-ca-file=${caCert}`,
    `--service-account-issuer=${server}/`, `--service-account-key-file=${join(pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
    // `kubectl logs` is proxied to the emulated kubelets; they serve certificates from our CA.
    `--kubelet-client-certificate=${join(pki, 'admin.crt')}`, `--kubelet-client-key=${join(pki, 'admin.key')}`,
    `--kubelet-certificate-authority=${caCert}`, '--kubelet-preferred-address-types=InternalIP',
    '--endpoint-reconciler-type=none', '--v=1',
    // Tool pods get these tolerations of not-ready/unreachable nodes: tests should not wait 300 s.
    '--default-not-ready-toleration-seconds=10', '--default-unreachable-toleration-seconds=10',
  ], stateDir, detached);

  await waitUntil('kube-apiserver', 90_000, async () => {
    if (exited(etcd)) throw new ControlPlaneError(`etcd exited:\n${await tailLog(etcd.logPath, LOG_TAIL_LINES)}`);
    if (exited(apiserver)) throw new ControlPlaneError(`kube-apiserver exited:\n${await tailLog(apiserver.logPath, LOG_TAIL_LINES)}`);
    return (await adminGet({ server, stateDir }, '/readyz')).status === 200;
  }, async () => `etcd log:\n${await tailLog(etcd.logPath, LOG_TAIL_LINES)}\nkube-apiserver log:\n${await tailLog(apiserver.logPath, LOG_TAIL_LINES)}`);
  log(`kube-apiserver ready after ${((Date.now() - started) / 1000).toFixed(1)}s`);

  const kubeconfig = await writeKubeconfig(join(stateDir, 'kubeconfig'), { server, caCert }, { name: 'admin', ...admin });
  // Garbage collection (ownerReferences), namespace deletion and service-account tokens need the
  // controller manager; without it owned objects and namespaces would live forever. EndpointSlices:
  // the operator reaches a managed MCP server at its Service's ready addresses (no kube-proxy here).
  log('starting kube-controller-manager');
  const kcm = await launch('kube-controller-manager', [
    `--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--secure-port=0',
    options.realNodes
      ? '--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token,node-lifecycle-controller,taint-eviction-controller,pod-garbage-collector-controller,root-ca-certificate-publisher-controller,deployment-controller,replicaset-controller,endpointslice-controller'
      : '--controllers=garbagecollector,namespace,serviceaccount,serviceaccount-token',
    ...(options.realNodes ? ['--node-monitor-period=2s', '--node-monitor-grace-period=20s', '--terminated-pod-gc-threshold=1000'] : []),
    `--root-ca-file=${caCert}`, `--service-account-private-key-file=${join(pki, 'sa.key')}`,
    '--use-service-account-credentials=false', '--concurrent-gc-syncs=5', '--v=1',
  ], stateDir, detached);

  await waitUntil('kube-controller-manager (default ServiceAccount)', 60_000, async () => {
    if (exited(kcm)) throw new ControlPlaneError(`kube-controller-manager exited:\n${await tailLog(kcm.logPath, LOG_TAIL_LINES)}`);
    return (await adminGet({ server, stateDir }, '/api/v1/namespaces/default/serviceaccounts/default')).status === 200;
  }, async () => tailLog(kcm.logPath, LOG_TAIL_LINES));

  const pids: Record<string, number> = { etcd: etcd.child.pid ?? 0, 'kube-apiserver': apiserver.child.pid ?? 0, 'kube-controller-manager': kcm.child.pid ?? 0 };
  if (options.realNodes) {
    log('starting kube-scheduler');
    const scheduler = await launch('kube-scheduler', [
      `--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--secure-port=0', '--v=1',
    ], stateDir, detached);
    pids['kube-scheduler'] = scheduler.child.pid ?? 0;
  }
  const info: ClusterInfo = { stateDir, server, kubeconfig, caCert, caKey, pids };
  await writeFile(join(stateDir, 'cluster.json'), JSON.stringify(info, null, 2));

  if (options.installCrds ?? true) {
    log('installing CRDs');
    await installCrds(kubeconfig);
  }
  log(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return info;
}

/** Runs the real kubectl (the one built with the control plane, else the one on PATH). */
export async function kubectl(kubeconfig: string, args: readonly string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  let exe = 'kubectl';
  try { exe = binary('kubectl'); } catch { /* fall back to PATH */ }
  return new Promise((resolveRun, reject) => {
    const child = execFile(exe, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(new Error(`kubectl ${args.join(' ')} failed: ${stderr || error.message}`), { stdout, stderr }));
      else resolveRun({ stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Applies every CRD (and admission policy) under crds/ and waits until the CRDs are Established. */
export async function installCrds(kubeconfig: string): Promise<void> {
  const dir = join(repoRoot, 'crds');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  for (const f of files) await kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', join(dir, f)]);
  await kubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '-l', 'app.kubernetes.io/part-of=agentrun-operator']);
  // Established, and even listable, can come a moment before a kind accepts writes (a brief 503
  // "Resource kind ... not found"): wait until a server-side dry-run create reaches validation.
  const probe = 'apiVersion: agentrun.dev/v1alpha1\nkind: AgentRun\nmetadata: {name: crd-probe, namespace: default}\nspec: {model: {name: probe}, prompt: probe}\n';
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      await kubectl(kubeconfig, ['get', 'agentruns,agenttools', '-A', '--request-timeout=5s', '-o', 'name']);
      await kubectl(kubeconfig, ['create', '--dry-run=server', '--request-timeout=5s', '-o', 'name', '-f', '-'], probe);
      return;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      // Refused by validation or admission means the kind is served: that is all we wait for.
      if (/is invalid|denied|forbidden/i.test(stderr) && !/ServiceUnavailable|not found/i.test(stderr)) return;
      if (Date.now() > end) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Stops the processes (controller manager, apiserver, etcd, in that order) and removes stateDir. */
export async function stopControlPlane(stateDir: string, options: { keepState?: boolean } = {}): Promise<void> {
  for (const name of ['kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd']) {
    const pidFile = join(stateDir, `${name}.pid`);
    if (!existsSync(pidFile)) continue;
    const pid = Number(await readFile(pidFile, 'utf8'));
    if (!pid || !alive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    const end = Date.now() + 10_000;
    while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  if (!options.keepState) await rm(stateDir, { recursive: true, force: true });
}

/** Reads a running cluster's description written by startControlPlane. */
export async function readClusterInfo(stateDir: string): Promise<ClusterInfo> {
  return JSON.parse(await readFile(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfo;
}

/** Where cluster:up keeps its state: `.agentrun/cluster` in the repo, or AGENTRUN_STATE_DIR. */
export function defaultStateDir(): string {
  return process.env.AGENTRUN_STATE_DIR ?? join(repoRoot, '.agentrun', 'cluster');
}

/**
 * A directory on this machine that test tools (run as local processes by the node emulator) can
 * write to and tests can read. Never under /tmp: tool pods mount an emptyDir at /tmp, and the
 * emulator rewrites every path below a mount to the pod's sandbox — so a repository cloned under
 * /tmp must not put these files in its own tree either.
 */
export function hostScratchDir(...parts: string[]): string {
  return join(process.env.AGENTRUN_TEST_SCRATCH ?? '/var/tmp/agentrun-tests', ...parts);
}
