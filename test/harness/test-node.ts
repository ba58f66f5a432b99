/**
 * What a test needs to know about the nodes of the integration cluster, whichever they are:
 *
 *   real      the cluster's real node(s) serve every namespace (global-setup.ts started them);
 *             a tool runs in a container and cannot see this machine's files, so tools record
 *             executions and wait for gates over HTTP, on the node IP (see {@link toolSignals})
 *   emulator  (AGENTRUN_NODE=emulator, or not root) each test starts a node emulator for its
 *             namespaces; tools are local processes and use files directly
 *
 * Tests write the same thing either way: `startTestNode(namespaces)`, `recordExecution(file, …)`,
 * `waitForFileSnippet(file)`; the files stay the source of truth that tests read.
 */
import { hostScratchDir, type ClusterNodes } from './control-plane.ts';
import { clients, cluster, kubectl } from './kube.ts';
import { NodeEmulator } from './node-emulator.ts';
import { crictl, readRealNodes, realNodeGroups, startRealNodes, stopRealNodes } from './real-node.ts';
import { appendLineSnippet, startToolSignalServer, waitForFileViaSnippet, type ToolSignalServer } from './tool-signals.ts';

export function clusterNodes(): ClusterNodes {
  return cluster().nodes ?? { mode: 'emulator', why: 'cluster started without nodes information', names: [], hostIP: '127.0.0.1' };
}

export const onRealNode = (): boolean => clusterNodes().mode === 'real';

/** A node for `namespaces`: a started NodeEmulator with the emulator, nothing on real nodes. */
export async function startTestNode(nodeName: string, namespaces: readonly string[]): Promise<NodeEmulator | undefined> {
  if (onRealNode()) return undefined;
  const emulator = new NodeEmulator({ ...cluster(), nodeName, namespaces });
  await emulator.start();
  return emulator;
}

let signals: Promise<ToolSignalServer> | undefined;
let signalBase = '';

/** Call once (e.g. in beforeAll) before building tool commands with the helpers below. */
export async function prepareToolSignals(): Promise<void> {
  if (!onRealNode()) return;
  signals ??= startToolSignalServer(clusterNodes().hostIP, hostScratchDir());
  signalBase = (await signals).url;
}

function requireBase(): string {
  if (!signalBase) throw new Error('call prepareToolSignals() (in beforeAll) before building tool commands on a real node');
  return signalBase;
}

/**
 * A shell snippet that appends the line `lineExpr` (a shell word, e.g. "\"$A $B\"") to `file`:
 * `echo >> file` for local processes, an HTTP POST to the test process from a container. It
 * fails the tool (exit 97) when the line could not be recorded, so a lost record is never silent.
 */
export function recordLineSnippet(file: string, lineExpr: string): string {
  if (!onRealNode()) return `echo ${lineExpr} >> ${file}`;
  return appendLineSnippet(requireBase(), file, lineExpr);
}

/** A shell snippet that waits until `file` exists on this machine. */
export function waitForFileSnippet(file: string, pollSeconds = 0.1): string {
  if (!onRealNode()) return `while [ ! -e ${file} ]; do sleep ${String(pollSeconds)}; done`;
  return waitForFileViaSnippet(requireBase(), file, pollSeconds);
}

/**
 * Pods of `namespace` with a container running right now: the emulator's processes, or on real
 * nodes the runtime's running containers (crictl ps, every node) — what a kubelet really runs,
 * not what the API says.
 */
export async function podsWithRunningContainers(emulator: NodeEmulator | undefined, namespace: string): Promise<string[]> {
  if (emulator) return emulator.runningProcesses().filter((p) => p.namespace === namespace).map((p) => p.pod);
  const pods: string[] = [];
  const groups = await realNodeGroups(cluster().stateDir);
  const nodes = (await Promise.all(groups.map((g) => readRealNodes(cluster().stateDir, g)))).flatMap((info) => info?.nodes ?? []);
  for (const node of nodes) {
    const out = await crictl(node, ['ps', '--state', 'running', '--label', `io.kubernetes.pod.namespace=${namespace}`, '-o', 'json']);
    const list = JSON.parse(out) as { containers?: { labels?: Record<string, string> }[] };
    for (const c of list.containers ?? []) pods.push(c.labels?.['io.kubernetes.pod.name'] ?? '');
  }
  return pods;
}

/**
 * A node a test may lose, serving only `namespace`'s tool pods: the namespace's node emulator
 * (lost with simulateNodeFailure), or an extra real node of its own (kubelet + containerd in a
 * group of its own; lost by stopping it all, as a machine that dies: the node lifecycle
 * controller marks it unreachable after its grace period and the taint eviction controller
 * evicts its pods). `replace()` brings up capacity elsewhere for the namespace's new pods.
 */
export interface LosableNode {
  readonly name: string;
  /** toolPodDefaults that keep the namespace's tool pods on this node (real nodes) until replace(). */
  readonly toolPodDefaults: Record<string, unknown>;
  /** The real node's group (for stopKubelet/restartKubelet); undefined for an emulator. */
  readonly group?: string;
  lose(): Promise<void>;
  /** Starts (emulator) or opens (real: labels the cluster's node) another node; returns its name. */
  replace(): Promise<string>;
  close(): Promise<void>;
}

const POOL_LABEL = 'agentrun.dev/test-pool';

export async function losableNode(namespace: string, emulator: NodeEmulator | undefined): Promise<LosableNode> {
  if (emulator) {
    let replacement: NodeEmulator | undefined;
    return {
      name: emulator.nodeName, toolPodDefaults: {},
      lose: () => emulator.simulateNodeFailure(),
      replace: async () => {
        replacement = new NodeEmulator({ ...cluster(), nodeName: `${emulator.nodeName}-b`, namespaces: [namespace] });
        await replacement.start();
        return replacement.nodeName;
      },
      close: async () => {
        await replacement?.stop();
        await clients().core.deleteNode({ name: `${emulator.nodeName}-b` }).catch(() => undefined);
      },
    };
  }
  const group = `lose-${namespace}`;
  // Tainted from registration: the label pulls this namespace's pods in, the taint keeps every
  // other pod out. Without it the scheduler put other tests' pods here, and losing the node lost
  // them (CI: "pod … was deleted because its node was lost" in a test that lost no node).
  const taints = [`${POOL_LABEL}=${namespace}:NoSchedule`];
  const nodes = await startRealNodes(cluster(), { group, namePrefix: group, count: 1, taints });
  const name = nodes.nodes[0]?.name ?? '';
  const label = (node: string, value: string | null) => kubectl(['label', 'node', node, `${POOL_LABEL}=${value ?? ''}`.replace(/=$/, '-'), '--overwrite']);
  await label(name, namespace);
  const toleration = { key: POOL_LABEL, operator: 'Equal', value: namespace, effect: 'NoSchedule' };
  const main = clusterNodes().names[0] ?? '';
  return {
    name, group, toolPodDefaults: { nodeSelector: { [POOL_LABEL]: namespace }, tolerations: [toleration] },
    lose: () => stopRealNodes(cluster().stateDir, group),
    replace: async () => { await label(main, namespace); return main; },
    close: async () => {
      await label(main, null).catch(() => undefined);
      await stopRealNodes(cluster().stateDir, group);
      await clients().core.deleteNode({ name }).catch(() => undefined);
    },
  };
}

