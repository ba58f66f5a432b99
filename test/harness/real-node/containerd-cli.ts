/**
 * The CLIs of a real node's containerd: ctr and crictl against its socket, image imports.
 */
import { nodeBinary, sh } from './processes.ts';
import type { RealNodeInfo } from './state.ts';

/** ctr against one node's containerd, in the kubelet's `k8s.io` namespace. */
export async function ctr(node: RealNodeInfo, args: readonly string[]): Promise<string> {
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
