/**
 * Starting real nodes: containerd, kubelet, images, the route to the kubernetes Service.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { binDir, issueClientCertificate, writeKubeconfig, type ClusterInfo } from '../control-plane.ts';
import { cgroupHierarchies, takeHostSnapshot } from '../host-snapshot.ts';
import { cniConfig, containerdConfig, issueServingCert, kubeletConfig, runcPath } from './node-config.ts';
import { ctr, importImage } from './containerd-cli.ts';
import { stopRealNodes } from './node-stop.ts';
import { alive, launchDaemon, tailLog } from '../daemons.ts';
import { claimSlot, LOG_TAIL_LINES, nodeBinary, sh, waitFor } from './processes.ts';
import { DEFAULT_GROUP, DEFAULT_GROUP_IMAGE_ARCHIVES, IMAGE_ARCHIVES, KUBERNETES_SERVICE_IP, RealNodeError, type RealNodeInfo, type RealNodesInfo, saveState } from './state.ts';

async function startContainerd(node: RealNodeInfo, detached: boolean, group: string): Promise<void> {
  const d = node.dir;
  for (const sub of ['containerd', 'cni/net.d', 'cni/ipam', 'runc', 'pod-logs', 'volume-plugins', 'kubelet']) {
    await mkdir(join(d, sub), { recursive: true });
  }
  await writeFile(join(d, 'containerd.toml'), containerdConfig(node));
  const launched = await launchDaemon(nodeBinary('containerd'), ['--config', join(d, 'containerd.toml')], join(node.logDir, 'containerd.log'), detached);
  node.pids.containerd = launched.child.pid ?? 0;
  await waitFor(`containerd of ${node.name}`, 30_000, async () => {
    if (!alive(node.pids.containerd)) throw new RealNodeError(`containerd of ${node.name} exited:\n${await tailLog(launched.logPath, LOG_TAIL_LINES)}`);
    return ctr(node, ['version']).then(() => true, () => false);
  }, () => tailLog(launched.logPath, LOG_TAIL_LINES));
  const images = join(binDir(), 'images');
  for (const archive of group === DEFAULT_GROUP ? [...IMAGE_ARCHIVES, ...DEFAULT_GROUP_IMAGE_ARCHIVES] : IMAGE_ARCHIVES) {
    const path = join(images, archive);
    if (!existsSync(path)) throw new RealNodeError(`image archive ${path} is missing: run \`npm run cluster:install\``);
    await importImage(node, path);
  }
}

/** Starts a node's kubelet and records its pid in `node.pids`. */
export async function startKubeletProcess(node: RealNodeInfo, detached: boolean): Promise<void> {
  const d = node.dir;
  const launched = await launchDaemon(nodeBinary('kubelet'), [
    `--config=${join(d, 'kubelet.yaml')}`, `--kubeconfig=${join(d, 'kubeconfig')}`,
    `--hostname-override=${node.name}`, `--node-ip=${node.ip}`, `--root-dir=${join(d, 'kubelet')}`,
    `--node-labels=agentrun.dev/real-node=true`, '--v=1',
    ...(node.taints?.length ? [`--register-with-taints=${node.taints.join(',')}`] : []),
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
    if (!alive(node.pids.kubelet)) throw new RealNodeError(`kubelet of ${node.name} exited:\n${await tailLog(log, LOG_TAIL_LINES)}`);
    const n = await core.readNode({ name: node.name });
    return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  }, async () => `kubelet log (${log}):\n${await tailLog(log, LOG_TAIL_LINES)}`);
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
  /**
   * `key=value:Effect` taints set at registration, so no pod is scheduled before they hold: a
   * node a test will lose must take only the pods that tolerate it.
   */
  readonly taints?: readonly string[];
}

/**
 * Starts `count` real nodes (containerd + kubelet each) for a running control plane and waits
 * until they are Ready. On failure everything already started is torn down and the error names
 * the log files.
 */
export async function startRealNodes(cluster: ClusterInfo, options: StartRealNodesOptions = {}): Promise<RealNodesInfo> {
  const { count = 1, namePrefix = 'node', detached = false, log = () => undefined, group = DEFAULT_GROUP, taints } = options;
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
      cgroupRoot: `/agentrun-${slot}-n${index}`, kubeletPort: 0, ...(taints?.length ? { taints } : {}),
      pids: { containerd: 0, kubelet: 0 },
    });
  }
  const info: RealNodesInfo = { group, slot, link, hostIP: nodes[0]?.ip ?? '', nodes, before, detached };
  await saveState(cluster.stateDir, info);
  try {
    for (const node of nodes) {
      await sh('ip', ['addr', 'add', `${node.ip}/32`, 'dev', link]);
      await startNode(cluster, node, slot, detached, group);
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

async function startNode(cluster: ClusterInfo, node: RealNodeInfo, slot: number, detached: boolean, group: string): Promise<void> {
  const d = node.dir;
  await mkdir(node.logDir, { recursive: true });
  await routeKubernetesService(cluster, node, slot);
  await startContainerd(node, detached, group);
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
