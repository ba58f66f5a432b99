/**
 * Which node mode the cluster uses, what a real node is, and the state file that records them.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostSnapshot } from '../host-snapshot.ts';

/** How the local cluster runs pods: real containers, or the node emulator's local processes. */
export type NodeMode = 'real' | 'emulator';

/** A real node could not be started, found or stopped; the message says what to do. */
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
  /** `key=value:Effect` taints the kubelet registers the Node with (kept across kubelet restarts). */
  readonly taints?: readonly string[];
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
/** The group of the cluster's own nodes (other groups are started and lost by tests). */
export const DEFAULT_GROUP = 'default';
/** How many clusters with real nodes this machine can hold at once (network slots). */
export const MAX_SLOTS = 60;
/** The OCI archives imported into every node's containerd. */
export const IMAGE_ARCHIVES = ['pause.tar', 'busybox-1.37.tar', 'busybox-1.36.tar', 'curl-8.11.1.tar'];
/**
 * Imported only into the cluster's own nodes (DEFAULT_GROUP): the MCP servers' image
 * (scripts/cluster/mcp-image.sh) is ~180 MB unpacked, ~6 s per node, and the nodes tests start
 * for themselves are tainted for their own pods, never a managed MCP server's.
 */
export const DEFAULT_GROUP_IMAGE_ARCHIVES = ['mcp-servers-2026.8.31.tar'];
/** The sandbox image containerd and the kubelet use. */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';
/** control-plane.ts's --service-cluster-ip-range; 10.0.0.1:443 is the `kubernetes` Service. */
export const SERVICE_RANGE = '10.0.0.0/24';
/** The ClusterIP of the `kubernetes` Service (first address of the service range). */
export const KUBERNETES_SERVICE_IP = '10.0.0.1';

/** The state file of one group of real nodes. */
export function stateFile(stateDir: string, group: string): string {
  return join(stateDir, group === DEFAULT_GROUP ? STATE_FILE : `real-nodes-${group}.json`);
}

/** Writes the state of a group of real nodes (read by readRealNodes and stopRealNodes). */
export async function saveState(stateDir: string, info: RealNodesInfo): Promise<void> {
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
