/**
 * The configuration files of a real node: containerd, CNI bridge, kubelet, serving certificate.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { binDir, type ClusterInfo } from '../control-plane.ts';
import { sh } from './processes.ts';
import { PAUSE_IMAGE, RealNodeError, type RealNodeInfo, SERVICE_RANGE } from './state.ts';

/** A node's containerd config.toml: its own root, state and socket, runc, CNI and the pause image. */
export function containerdConfig(node: RealNodeInfo): string {
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

/** Where the runc binary built by `npm run cluster:install` is. */
export function runcPath(): string {
  for (const p of ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc']) if (existsSync(p)) return p;
  throw new RealNodeError('runc not found: `apt-get install -y --no-install-recommends runc` (npm run cluster:install does it as root)');
}

/** A node's CNI bridge config: its own bridge and subnet, with routes to the node IPs only. */
export function cniConfig(node: RealNodeInfo, slot: number): string { // routes: the node IPs of every slot
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

/** A node's KubeletConfiguration: its own ports, cgroupRoot and containerd socket. */
export function kubeletConfig(node: RealNodeInfo, caCert: string): string {
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

/** Signs the kubelet's serving certificate (node IP and name) with the cluster CA. */
export async function issueServingCert(cluster: ClusterInfo, node: RealNodeInfo): Promise<void> {
  const pki = join(node.dir, 'pki');
  await mkdir(pki, { recursive: true });
  await writeFile(join(pki, 'kubelet.ext'),
    `subjectAltName=IP:${node.ip},DNS:${node.name}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  await sh('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(pki, 'kubelet.key'), '-out', join(pki, 'kubelet.csr'),
    '-subj', `/CN=system:node:${node.name}/O=system:nodes`]);
  await sh('openssl', ['x509', '-req', '-in', join(pki, 'kubelet.csr'), '-CA', cluster.caCert, '-CAkey', cluster.caKey, '-CAcreateserial',
    '-out', join(pki, 'kubelet.crt'), '-days', '30', '-extfile', join(pki, 'kubelet.ext')]);
}
