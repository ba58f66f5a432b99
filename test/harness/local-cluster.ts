/**
 * The local cluster: the control plane (control-plane.ts) and its nodes. Where a real node can run
 * (root on Linux, or AGENTRUN_NODE=real) it gets real nodes (real-node.ts: kubelet + containerd,
 * tool pods in real containers); otherwise, or with AGENTRUN_NODE=emulator, it has none and each
 * user starts a node emulator for its namespaces. In CI (CI=true) a real node that cannot start
 * fails: it is never silently replaced by the emulator.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startControlPlane, stopControlPlane, type ClusterInfo, type StartOptions } from './control-plane.ts';
import { chooseNodeMode, realNodeGroups, startRealNodes, stopRealNodes, type NodeMode } from './real-node.ts';

export interface LocalClusterOptions extends Omit<StartOptions, 'realNodes'> {
  /** Real nodes to start (default 1); ignored with the emulator. */
  readonly realNodeCount?: number;
  /** Overrides the AGENTRUN_NODE / root-on-Linux choice. */
  readonly nodeMode?: NodeMode;
}

/** Starts the control plane and, in real mode, its nodes; `cluster.json` then describes both. */
export async function startLocalCluster(options: LocalClusterOptions): Promise<ClusterInfo> {
  const choice = options.nodeMode ? { mode: options.nodeMode, why: 'chosen by the caller' } : chooseNodeMode();
  const real = choice.mode === 'real';
  const log = options.log ?? (() => undefined);
  const plane = await startControlPlane({ ...options, realNodes: real });
  if (!real) {
    const info: ClusterInfo = { ...plane, nodes: { mode: 'emulator', why: choice.why, names: [], hostIP: '127.0.0.1' } };
    await writeFile(join(options.stateDir, 'cluster.json'), JSON.stringify(info, null, 2));
    return info;
  }
  const nodes = await startRealNodes(plane, { count: options.realNodeCount ?? 1, detached: options.detached ?? false, log });
  const info: ClusterInfo = {
    ...plane, nodes: { mode: 'real', why: choice.why, names: nodes.nodes.map((n) => n.name), hostIP: nodes.hostIP },
  };
  await writeFile(join(options.stateDir, 'cluster.json'), JSON.stringify(info, null, 2));
  return info;
}

/** Stops real nodes (restoring the machine) then the control plane; removes stateDir unless kept. */
export async function stopLocalCluster(stateDir: string, options: { keepState?: boolean } = {}): Promise<void> {
  // Groups a test added (and left) first: the cluster's own group restores the machine last.
  for (const group of (await realNodeGroups(stateDir)).reverse()) await stopRealNodes(stateDir, group);
  await stopControlPlane(stateDir, options);
}
