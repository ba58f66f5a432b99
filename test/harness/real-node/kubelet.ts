/**
 * Stopping and restarting one real node's kubelet (its containers keep running under containerd).
 */
import type { ClusterInfo } from '../control-plane.ts';
import { alive } from '../daemons.ts';
import { startKubeletProcess, waitNodeReady } from './node-start.ts';
import { DEFAULT_GROUP, RealNodeError, readRealNodes, saveState } from './state.ts';

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
