/**
 * Real nodes for the local cluster: containerd 2.x + runc + the CNI bridge + a real kubelet per
 * node, built by `npm run cluster:install`. Tool pods run in real containers with the restricted
 * securityContext enforced, images come from local OCI archives (scripts/cluster/images.sh), and
 * `kubectl logs` reaches the kubelet through the apiserver. Root on Linux only.
 *
 * Everything a node touches on this machine is recorded and put back by {@link stopRealNodes}:
 *
 *   network   one link `agentrun<slot>` (a bridge without ports) holds the node IPs 10.234.<slot>.<n>/32 (never the
 *             machine's uplink); each node's pods get a bridge `arbr<slot>n<n>` and the subnet
 *             10.235.<4·slot+n>.0/24 with NO default route and no masquerade: a pod reaches its
 *             bridge's subnet and the node IPs (where tests serve HTTP), nothing else
 *   processes containerd, its shims and the kubelet, stopped by pid (never by name)
 *   cgroups   each kubelet's cgroupRoot `/agentrun-<slot>-n<n>` in every v1 hierarchy
 *   mounts    kubelet's bind mount of its root dir, pod volumes, overlay and netns mounts, all
 *             under the cluster state dir
 *   sysctls   kubelet sets vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, …; the
 *             bridge plugin sets net.ipv4.ip_forward: all restored to the values read before
 *   paths     /run/containerd (shim sockets), /var/lib/cni (CNI cache), /var/lib/kubelet and
 *             /var/log/containers (hard-coded in kubelet): removed when they did not exist before
 *   iptables  chains kubelet creates (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY): removed
 *
 * The state (slot, nodes, pids, the host snapshot taken before) is in `<stateDir>/real-nodes.json`,
 * so `npm run cluster:down` in another process can tear a detached cluster down.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { binDir, issueClientCertificate, writeKubeconfig, type ClusterInfo } from './control-plane.ts';
import {
  cgroupHierarchies, mountPoints, removeNewIptablesChains, takeHostSnapshot, writeSysctl, HARD_CODED_PATHS, type HostSnapshot,
} from './host-snapshot.ts';

const execFileAsync = promisify(execFile);

/** How the local cluster runs pods: real containers, or the node emulator's local processes. */
export type NodeMode = 'real' | 'emulator';

export class RealNodeError extends Error {
  override name = 'RealNodeError';
}

/**
 * `AGENTRUN_NODE=real|emulator` when set; otherwise a real node as root on Linux, the emulator
 * elsewhere. `why` says how the choice was made (for banners and failure messages).
 */
export function chooseNodeMode(env: NodeJS.ProcessEnv = process.env): { mode: NodeMode; why: string } {
  const asked = env.AGENTRUN_NODE;
  if (asked === 'real' || asked === 'emulator') return { mode: asked, why: `AGENTRUN_NODE=${asked}` };
  if (asked !== undefined && asked !== '') throw new RealNodeError(`AGENTRUN_NODE=${asked}: expected "real" or "emulator"`);
  if (process.platform !== 'linux') return { mode: 'emulator', why: `${process.platform} is not Linux (a real node needs Linux as root)` };
  if (process.getuid?.() !== 0) return { mode: 'emulator', why: 'not root (a real node needs root: cgroups, mounts, namespaces)' };
  return { mode: 'real', why: 'root on Linux' };
}

/** One real node as the tests see it. */
export interface RealNodeInfo {
  readonly name: string;
  readonly index: number;
  readonly ip: string;
  readonly podSubnet: string;
  readonly bridge: string;
  readonly dir: string;
  /** containerd.log and kubelet.log; outside `dir`, so they survive teardown. */
  readonly logDir: string;
  readonly containerdSocket: string;
  readonly cgroupRoot: string;
  readonly kubeletPort: number;
  pids: { containerd: number; kubelet: number };
}

/** Everything needed to reach, disturb and tear down the real nodes of one cluster. */
export interface RealNodesInfo {
  /** Nodes started together share a group; a test may add a group of its own (e.g. a node to lose). */
  readonly group: string;
  readonly slot: number;
  readonly link: string;
  /** Where pods reach the test process: the first node's IP. */
  readonly hostIP: string;
  readonly nodes: RealNodeInfo[];
  readonly before: HostSnapshot;
  readonly detached: boolean;
}

const STATE_FILE = 'real-nodes.json';
const DEFAULT_GROUP = 'default';
const MAX_SLOTS = 60;
const IMAGE_ARCHIVES = ['pause.tar', 'busybox-1.37.tar', 'busybox-1.36.tar', 'curl-8.11.1.tar'];
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';
/** control-plane.ts's --service-cluster-ip-range; 10.0.0.1:443 is the `kubernetes` Service. */
const SERVICE_RANGE = '10.0.0.0/24';
const KUBERNETES_SERVICE_IP = '10.0.0.1';

function nodeBinary(name: string): string {
  const path = join(binDir(), name);
  if (!existsSync(path)) {
    throw new RealNodeError(`${name} not found at ${path}: run \`npm run cluster:install\` (it builds the real node too)`);
  }
  return path;
}

async function sh(cmd: string, args: readonly string[]): Promise<string> {
  try {
    return (await execFileAsync(cmd, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new RealNodeError(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`);
  }
}

function stateFile(stateDir: string, group: string): string {
  return join(stateDir, group === DEFAULT_GROUP ? STATE_FILE : `real-nodes-${group}.json`);
}

async function saveState(stateDir: string, info: RealNodesInfo): Promise<void> {
  await writeFile(stateFile(stateDir, info.group), JSON.stringify(info, null, 2));
}

/** The real nodes of group `group` (default: the cluster's own) in the cluster at `stateDir`. */
export async function readRealNodes(stateDir: string, group = DEFAULT_GROUP): Promise<RealNodesInfo | undefined> {
  const file = stateFile(stateDir, group);
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as RealNodesInfo;
}

/** Every group of real nodes started in the cluster at `stateDir` (the cluster's own first). */
export async function realNodeGroups(stateDir: string): Promise<string[]> {
  if (!existsSync(stateDir)) return [];
  const files = await readdir(stateDir);
  const extra = files.map((f) => /^real-nodes-(.+)\.json$/.exec(f)?.[1]).filter((g): g is string => g !== undefined).sort();
  return [...(files.includes(STATE_FILE) ? [DEFAULT_GROUP] : []), ...extra];
}

/**
 * Claims a free slot by creating its link (creation fails when the link exists). The link only
 * holds the node IPs: a bridge with no ports (the `dummy` driver is not in every kernel; a bridge is).
 */
async function claimSlot(): Promise<{ slot: number; link: string }> {
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const link = `agentrun${slot}`;
    try {
      await execFileAsync('ip', ['link', 'add', link, 'type', 'bridge']);
    } catch {
      continue;
    }
    await sh('ip', ['link', 'set', link, 'up']);
    return { slot, link };
  }
  throw new RealNodeError(`no free network slot: links agentrun0…agentrun${MAX_SLOTS - 1} all exist (stale clusters? \`ip link del agentrunN\`)`);
}

interface Launched { readonly child: ChildProcess; readonly logPath: string }

async function launch(exe: string, args: readonly string[], logPath: string, detached: boolean, env?: NodeJS.ProcessEnv): Promise<Launched> {
  const out = await open(logPath, 'a');
  const child = spawn(exe, args, { stdio: ['ignore', out.fd, out.fd], detached, env: env ?? process.env });
  await out.close();
  if (detached) child.unref();
  return { child, logPath };
}

async function tail(path: string, lines = 30): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function alive(pid: number): boolean {
  if (!pid) return false;
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, graceMs === 0 ? 'SIGKILL' : 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    const killEnd = Date.now() + 5_000;
    while (alive(pid) && Date.now() < killEnd) await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitFor(what: string, deadlineMs: number, check: () => Promise<boolean>, onTimeout: () => Promise<string>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const ok = await check().catch((error: unknown) => { if (error instanceof RealNodeError) throw error; return false; });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new RealNodeError(`${what} did not happen within ${deadlineMs / 1000}s\n${await onTimeout()}`);
}

function containerdConfig(node: RealNodeInfo): string {
  const d = node.dir;
  return `version = 3
root = "${d}/containerd/root"
state = "${d}/containerd/state"
# opt would create /opt/containerd and NRI /var/run/nri: neither is needed here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${node.containerdSocket}"

[ttrpc]
  address = "${node.containerdSocket}.ttrpc"

[debug]
  level = "warn"

[metrics]
  address = ""

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  # The VM has no CAP_SYS_RESOURCE: runc cannot raise oom_score_adj, so it must not try.
  restrict_oom_score_adj = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "${runcPath()}"
        Root = "${d}/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["${join(binDir(), 'cni')}"]
    conf_dir = "${d}/cni/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

function runcPath(): string {
  for (const p of ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc']) if (existsSync(p)) return p;
  throw new RealNodeError('runc not found: `apt-get install -y --no-install-recommends runc` (npm run cluster:install does it as root)');
}

function cniConfig(node: RealNodeInfo, slot: number): string { // routes: the node IPs of every slot
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: `agentrun-${slot}-n${node.index}`,
    plugins: [{
      type: 'bridge', bridge: node.bridge, isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: {
        type: 'host-local', dataDir: join(node.dir, 'cni', 'ipam'),
        ranges: [[{ subnet: node.podSubnet }]],
        // No default route: pods reach their subnet and the node IPs, and nothing beyond the machine.
        // The node IPs of every slot, and the Service range (only 10.0.0.1, the apiserver, answers).
        routes: [{ dst: '10.234.0.0/16' }, { dst: SERVICE_RANGE }],
      },
    }],
  }, null, 2);
}

function kubeletConfig(node: RealNodeInfo, caCert: string): string {
  const d = node.dir;
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# These machines mount cgroup v1: kubelet >= 1.35 refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: ${node.cgroupRoot}
containerRuntimeEndpoint: unix://${node.containerdSocket}
address: ${node.ip}
port: ${node.kubeletPort}
readOnlyPort: 0
healthzPort: 0
tlsCertFile: ${d}/pki/kubelet.crt
tlsPrivateKeyFile: ${d}/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: ${caCert}}
authorization:
  mode: AlwaysAllow
podLogsDir: ${d}/pod-logs
volumePluginDir: ${d}/volume-plugins
failSwapOn: false
# Fast enough for tests (activeDeadlineSeconds follows syncFrequency), cheap enough for 2 cores.
syncFrequency: 3s
fileCheckFrequency: 20s
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 10s
nodeLeaseDurationSeconds: 10
# The kubelet rotates a container's log past containerLogMaxSize (default 10Mi) and serves only the
# current file: a tool that prints 10 MB would lose the head the operator reads. Tests print that much.
containerLogMaxSize: 64Mi
imageMinimumGCAge: 24h
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
serializeImagePulls: false
makeIPTablesUtilChains: false
localStorageCapacityIsolation: true
resolvConf: ""
maxPods: 110
shutdownGracePeriod: 0s
`;
}

async function issueServingCert(cluster: ClusterInfo, node: RealNodeInfo): Promise<void> {
  const pki = join(node.dir, 'pki');
  await mkdir(pki, { recursive: true });
  await writeFile(join(pki, 'kubelet.ext'),
    `subjectAltName=IP:${node.ip},DNS:${node.name}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  await sh('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(pki, 'kubelet.key'), '-out', join(pki, 'kubelet.csr'),
    '-subj', `/CN=system:node:${node.name}/O=system:nodes`]);
  await sh('openssl', ['x509', '-req', '-in', join(pki, 'kubelet.csr'), '-CA', cluster.caCert, '-CAkey', cluster.caKey, '-CAcreateserial',
    '-out', join(pki, 'kubelet.crt'), '-days', '30', '-extfile', join(pki, 'kubelet.ext')]);
}

async function ctr(node: RealNodeInfo, args: readonly string[]): Promise<string> {
  return sh(nodeBinary('ctr'), ['--address', node.containerdSocket, '-n', 'k8s.io', ...args]);
}

/** crictl against one node's containerd. */
export async function crictl(node: Pick<RealNodeInfo, 'containerdSocket'>, args: readonly string[]): Promise<string> {
  return sh(nodeBinary('crictl'), ['--runtime-endpoint', `unix://${node.containerdSocket}`, '--image-endpoint', `unix://${node.containerdSocket}`,
    '--timeout', '20s', ...args]);
}

/** Imports an OCI archive (e.g. the operator image built by buildah) into a node's containerd. */
export async function importImage(node: RealNodeInfo, archive: string): Promise<void> {
  await ctr(node, ['images', 'import', '--platform', 'linux/amd64', archive]);
}

async function startContainerd(node: RealNodeInfo, detached: boolean): Promise<void> {
  const d = node.dir;
  for (const sub of ['containerd', 'cni/net.d', 'cni/ipam', 'runc', 'pod-logs', 'volume-plugins', 'kubelet']) {
    await mkdir(join(d, sub), { recursive: true });
  }
  await writeFile(join(d, 'containerd.toml'), containerdConfig(node));
  const launched = await launch(nodeBinary('containerd'), ['--config', join(d, 'containerd.toml')], join(node.logDir, 'containerd.log'), detached);
  node.pids.containerd = launched.child.pid ?? 0;
  await waitFor(`containerd of ${node.name}`, 30_000, async () => {
    if (!alive(node.pids.containerd)) throw new RealNodeError(`containerd of ${node.name} exited:\n${await tail(launched.logPath)}`);
    return ctr(node, ['version']).then(() => true, () => false);
  }, () => tail(launched.logPath));
  const images = join(binDir(), 'images');
  for (const archive of IMAGE_ARCHIVES) {
    const path = join(images, archive);
    if (!existsSync(path)) throw new RealNodeError(`image archive ${path} is missing: run \`npm run cluster:install\``);
    await importImage(node, path);
  }
}

async function startKubeletProcess(node: RealNodeInfo, detached: boolean): Promise<void> {
  const d = node.dir;
  const launched = await launch(nodeBinary('kubelet'), [
    `--config=${join(d, 'kubelet.yaml')}`, `--kubeconfig=${join(d, 'kubeconfig')}`,
    `--hostname-override=${node.name}`, `--node-ip=${node.ip}`, `--root-dir=${join(d, 'kubelet')}`,
    `--node-labels=agentrun.dev/real-node=true`, '--v=1',
  ], join(node.logDir, 'kubelet.log'), detached);
  node.pids.kubelet = launched.child.pid ?? 0;
}

/** Waits until the Node reports Ready=True. */
export async function waitNodeReady(kubeconfig: string, node: Pick<RealNodeInfo, 'name' | 'logDir' | 'pids'>, timeoutMs = 90_000): Promise<void> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const log = join(node.logDir, 'kubelet.log');
  await waitFor(`node ${node.name} to become Ready`, timeoutMs, async () => {
    if (!alive(node.pids.kubelet)) throw new RealNodeError(`kubelet of ${node.name} exited:\n${await tail(log)}`);
    const n = await core.readNode({ name: node.name });
    return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  }, async () => `kubelet log (${log}):\n${await tail(log)}`);
}

/** Options of {@link startRealNodes}. */
export interface StartRealNodesOptions {
  readonly count?: number;
  /** Node names; default `<prefix>-0`, `<prefix>-1`, … with prefix `node`. */
  readonly namePrefix?: string;
  readonly detached?: boolean;
  readonly log?: (line: string) => void;
  /** A group of nodes with its own state file, network slot and teardown (default: the cluster's own). */
  readonly group?: string;
}

/**
 * Starts `count` real nodes (containerd + kubelet each) for a running control plane and waits
 * until they are Ready. On failure everything already started is torn down and the error names
 * the log files.
 */
export async function startRealNodes(cluster: ClusterInfo, options: StartRealNodesOptions = {}): Promise<RealNodesInfo> {
  const { count = 1, namePrefix = 'node', detached = false, log = () => undefined, group = DEFAULT_GROUP } = options;
  if (process.getuid?.() !== 0 || process.platform !== 'linux') {
    throw new RealNodeError('a real node needs root on Linux');
  }
  for (const b of ['containerd', 'containerd-shim-runc-v2', 'ctr', 'kubelet', 'crictl']) nodeBinary(b);
  runcPath();
  const started = Date.now();
  const before = await takeHostSnapshot();
  const { slot, link } = await claimSlot();
  const nodes: RealNodeInfo[] = [];
  for (let index = 0; index < count; index++) {
    nodes.push({
      name: `${namePrefix}-${index}`, index, ip: `10.234.${slot}.${index + 1}`,
      podSubnet: `10.235.${slot * 4 + index}.0/24`, bridge: `arbr${slot}n${index}`,
      dir: join(cluster.stateDir, 'nodes', `s${slot}n${index}`), logDir: join(cluster.stateDir, 'logs', `${namePrefix}-${index}`),
      containerdSocket: join(cluster.stateDir, 'nodes', `s${slot}n${index}`, 'containerd.sock'),
      cgroupRoot: `/agentrun-${slot}-n${index}`, kubeletPort: 0, pids: { containerd: 0, kubelet: 0 },
    });
  }
  const info: RealNodesInfo = { group, slot, link, hostIP: nodes[0]?.ip ?? '', nodes, before, detached };
  await saveState(cluster.stateDir, info);
  try {
    for (const node of nodes) {
      await sh('ip', ['addr', 'add', `${node.ip}/32`, 'dev', link]);
      await startNode(cluster, node, slot, detached);
      await saveState(cluster.stateDir, info);
      log(`node ${node.name}: containerd pid ${node.pids.containerd}, kubelet pid ${node.pids.kubelet}, IP ${node.ip}`);
    }
    for (const node of nodes) await waitNodeReady(cluster.kubeconfig, node);
    log(`${count} real node(s) Ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return info;
  } catch (error) {
    const logs = nodes.map((n) => n.logDir).join(', ');
    await stopRealNodes(cluster.stateDir, group).catch(() => undefined);
    throw new RealNodeError(`real node did not start (logs in ${logs}): ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function startNode(cluster: ClusterInfo, node: RealNodeInfo, slot: number, detached: boolean): Promise<void> {
  const d = node.dir;
  await mkdir(node.logDir, { recursive: true });
  await routeKubernetesService(cluster, node, slot);
  await startContainerd(node, detached);
  await writeFile(join(d, 'cni', 'net.d', '10-agentrun.conflist'), cniConfig(node, slot));
  await issueServingCert(cluster, node);
  const client = await issueClientCertificate(cluster, `system:node:${node.name}`, ['system:nodes']);
  await writeKubeconfig(join(d, 'kubeconfig'), cluster, { name: node.name, ...client });
  (node as { kubeletPort: number }).kubeletPort = await freeNodePort(node.ip);
  await writeFile(join(d, 'kubelet.yaml'), kubeletConfig(node, cluster.caCert));
  // kubelet refuses a cgroupRoot that does not exist in every hierarchy.
  for (const hierarchy of await cgroupHierarchies()) {
    if (hierarchy.endsWith('/unified')) continue;
    await mkdir(join(hierarchy, node.cgroupRoot), { recursive: true });
  }
  await startKubeletProcess(node, detached);
}

/**
 * There is no kube-proxy: pods that talk to the apiserver (the operator installed by Helm) reach
 * the `kubernetes` Service 10.0.0.1:443 through one DNAT rule to the apiserver on 127.0.0.1, in a
 * chain of this slot. The node's bridge is created here (the CNI bridge plugin adopts it) so that
 * it can have route_localnet, which lets the kernel deliver that DNAT to loopback; the setting
 * goes away with the bridge.
 */
async function routeKubernetesService(cluster: ClusterInfo, node: RealNodeInfo, slot: number): Promise<void> {
  const apiPort = new URL(cluster.server).port;
  await sh('ip', ['link', 'add', node.bridge, 'type', 'bridge']);
  await sh('ip', ['link', 'set', node.bridge, 'up']);
  await writeFile(`/proc/sys/net/ipv4/conf/${node.bridge}/route_localnet`, '1');
  const chain = `AGENTRUN-S${slot}`;
  if (node.index === 0) {
    await sh('iptables', ['-t', 'nat', '-N', chain]);
    await sh('iptables', ['-t', 'nat', '-I', 'PREROUTING', '-j', chain]);
  }
  await sh('iptables', ['-t', 'nat', '-A', chain, '-i', node.bridge, '-d', `${KUBERNETES_SERVICE_IP}/32`, '-p', 'tcp', '--dport', '443',
    '-j', 'DNAT', '--to-destination', `127.0.0.1:${apiPort}`]);
}

async function freeNodePort(ip: string): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, ip, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') { reject(new Error('no port')); return; }
      server.close(() => { resolvePort(address.port); });
    });
  });
}

/** SIGKILLs (or SIGTERMs) a node's kubelet; its containers keep running under containerd. */
export async function stopKubelet(stateDir: string, nodeName: string, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL', group = DEFAULT_GROUP): Promise<void> {
  const info = await readRealNodes(stateDir, group);
  const node = info?.nodes.find((n) => n.name === nodeName);
  if (!info || !node) throw new RealNodeError(`no real node ${nodeName} in ${stateDir}`);
  const pid = node.pids.kubelet;
  if (alive(pid)) process.kill(pid, signal);
  const end = Date.now() + 10_000;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

/** Starts a node's kubelet again (after {@link stopKubelet}) and waits until the node is Ready. */
export async function restartKubelet(cluster: ClusterInfo, nodeName: string, group = DEFAULT_GROUP): Promise<void> {
  const info = await readRealNodes(cluster.stateDir, group);
  const node = info?.nodes.find((n) => n.name === nodeName);
  if (!info || !node) throw new RealNodeError(`no real node ${nodeName} in ${cluster.stateDir}`);
  if (alive(node.pids.kubelet)) throw new RealNodeError(`kubelet of ${nodeName} is still running (pid ${node.pids.kubelet})`);
  await startKubeletProcess(node, info.detached);
  await saveState(cluster.stateDir, info);
  await waitNodeReady(cluster.kubeconfig, node);
}

/** Processes whose command line mentions `needle` (the shims of one containerd name its socket). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(join('/proc', entry, 'cmdline'), 'utf8')).split('\0').join(' ');
      if (cmdline.includes(needle)) out.push(Number(entry));
    } catch { /* gone */ }
  }
  return out;
}

/**
 * Processes still in a node's cgroups once its runtime is gone: containers whose shim died first,
 * or `runc init` of containers created but never started. All were started by this node.
 */
async function cgroupProcesses(cgroupRoot: string): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (dir: string): Promise<void> => {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  for (const hierarchy of await cgroupHierarchies()) await walk(join(hierarchy, cgroupRoot));
  return [...pids];
}

async function removeCgroupTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(path, e.name));
  for (let i = 0; i < 20; i++) {
    try { await rmdir(path); return; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
}

async function otherClusterLinks(): Promise<string[]> {
  const out = await sh('ip', ['-o', 'link', 'show']).catch(() => '');
  return out.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => /^agentrun\d+$/.test(n));
}

/**
 * Stops every real node of the cluster in `stateDir` and puts the machine back as it was: pods
 * removed through the CRI, kubelet, containerd and leftover shims stopped by pid, mounts under the
 * state dir unmounted, cgroups, bridges and the dummy link deleted, sysctls restored, hard-coded
 * paths and iptables chains that did not exist before removed. Idempotent.
 */
export async function stopRealNodes(stateDir: string, group = DEFAULT_GROUP): Promise<void> {
  const info = await readRealNodes(stateDir, group);
  if (!info) return;
  const nodeDirs = info.nodes.map((n) => n.dir);
  for (const node of info.nodes) await stopPid(node.pids.kubelet);
  for (const node of info.nodes) {
    if (alive(node.pids.containerd)) {
      await crictl(node, ['rmp', '--all', '--force']).catch(() => undefined);
    }
    await stopPid(node.pids.containerd);
    // The shims outlive containerd by design; each names its containerd's socket.
    for (const pid of await pidsMentioning(node.containerdSocket)) await stopPid(pid, 2_000);
  }
  // Deepest mount first: pod volumes, netns and overlay mounts, then kubelet's bind mount of its root.
  const ours = (await mountPoints()).filter((m) => nodeDirs.some((d) => m === d || m.startsWith(`${d}/`)));
  for (const mount of ours.sort((a, b) => b.length - a.length)) {
    await execFileAsync('umount', ['-l', mount]).catch(() => undefined);
  }
  for (const node of info.nodes) {
    for (const pid of await cgroupProcesses(node.cgroupRoot)) await stopPid(pid, 0);
    for (const hierarchy of await cgroupHierarchies()) await removeCgroupTree(join(hierarchy, node.cgroupRoot));
    await execFileAsync('ip', ['link', 'del', node.bridge]).catch(() => undefined);
  }
  await execFileAsync('iptables', ['-t', 'nat', '-D', 'PREROUTING', '-j', `AGENTRUN-S${info.slot}`]).catch(() => undefined);
  await execFileAsync('iptables', ['-t', 'nat', '-F', `AGENTRUN-S${info.slot}`]).catch(() => undefined);
  await execFileAsync('iptables', ['-t', 'nat', '-X', `AGENTRUN-S${info.slot}`]).catch(() => undefined);
  await execFileAsync('ip', ['link', 'del', info.link]).catch(() => undefined);
  // Another cluster's real nodes still use the machine-wide sysctls and paths: the last one restores them.
  if ((await otherClusterLinks()).length > 0) {
    for (const d of nodeDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    await rm(stateFile(stateDir, group), { force: true });
    return;
  }
  for (const [name, value] of Object.entries(info.before.sysctls)) await writeSysctl(name, value).catch(() => undefined);
  for (const path of HARD_CODED_PATHS) {
    if (!info.before.paths.includes(path) && existsSync(path)) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
  await removeNewIptablesChains(info.before);
  for (const d of nodeDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
  await rm(stateFile(stateDir, group), { force: true });
}
