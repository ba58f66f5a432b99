/**
 * Real nodes for the local cluster: containerd 2.x + runc + the CNI bridge + a real kubelet per
 * node, built by `npm run cluster:install`. Tool pods run in real containers with the restricted
 * securityContext enforced, images come from local OCI archives (scripts/cluster/images.sh), and
 * `kubectl logs` reaches the kubelet through the apiserver. Root on Linux only.
 * This folder holds the parts; index.ts is the public API.
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
export {
  chooseNodeMode, PAUSE_IMAGE, readRealNodes, realNodeGroups, RealNodeError, type NodeMode, type RealNodeInfo,
  type RealNodesInfo,
} from './state.ts';
export { crictl, importImage } from './containerd-cli.ts';
export { restartKubelet, stopKubelet } from './kubelet.ts';
export { startRealNodes, waitNodeReady, type StartRealNodesOptions } from './node-start.ts';
export { stopRealNodes } from './node-stop.ts';
