/**
 * `npm run cluster:up`: starts the local cluster in the background and prints how to use it: the
 * control plane, plus one real node (kubelet + containerd) as root on Linux unless
 * AGENTRUN_NODE=emulator (then pods need a node emulator, as tests and `npm run dev` start).
 * State (certificates, etcd data, logs, kubeconfig) lives in .agentrun/cluster, or AGENTRUN_STATE_DIR.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readClusterInfo, defaultStateDir } from '../../test/harness/control-plane.ts';
import { startLocalCluster, stopLocalCluster } from '../../test/harness/local-cluster.ts';

const stateDir = defaultStateDir();
if (existsSync(join(stateDir, 'cluster.json'))) {
  const info = await readClusterInfo(stateDir);
  const running = Object.values(info.pids).every((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
  if (running) {
    console.log(`The local control plane is already running at ${info.server}.\n\n  export KUBECONFIG=${info.kubeconfig}\n`);
    process.exit(0);
  }
  await stopLocalCluster(stateDir);
}
try {
  const info = await startLocalCluster({ stateDir, detached: true, log: (line) => { console.log(`[cluster:up] ${line}`); } });
  const nodes = info.nodes?.mode === 'real'
    ? `real node ${info.nodes.names.join(', ')} (kubelet + containerd; tool pods run in containers; pods reach this machine at ${info.nodes.hostIP})`
    : `no kubelet (${info.nodes?.why ?? ''}): start a node emulator for pods, as \`npm run dev\` does`;
  console.log(`
Local cluster running at ${info.server}: etcd, kube-apiserver, kube-controller-manager; ${nodes}.

  export KUBECONFIG=${info.kubeconfig}
  kubectl get crds
  npm run cluster:down      # stop it and delete its state

Logs: ${join(stateDir, 'logs')}
`);
} catch (error) {
  console.error(`[cluster:up] ${error instanceof Error ? error.message : String(error)}`);
  await stopLocalCluster(stateDir, { keepState: true });
  console.error(`[cluster:up] state kept for inspection in ${stateDir}; \`npm run cluster:down\` removes it`);
  process.exit(1);
}
