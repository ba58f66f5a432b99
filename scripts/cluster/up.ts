/**
 * `npm run cluster:up`: starts the local control plane in the background and prints how to use it.
 * State (certificates, etcd data, logs, kubeconfig) lives in .agentrun/cluster, or AGENTRUN_STATE_DIR.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startControlPlane, stopControlPlane, readClusterInfo, defaultStateDir } from '../../test/support/control-plane.ts';

const stateDir = defaultStateDir();
if (existsSync(join(stateDir, 'cluster.json'))) {
  const info = await readClusterInfo(stateDir);
  const running = Object.values(info.pids).every((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
  if (running) {
    console.log(`The local control plane is already running at ${info.server}.\n\n  export KUBECONFIG=${info.kubeconfig}\n`);
    process.exit(0);
  }
  await stopControlPlane(stateDir);
}
try {
  const info = await startControlPlane({ stateDir, detached: true, log: (line) => { console.log(`[cluster:up] ${line}`); } });
  console.log(`
Local control plane running at ${info.server} (etcd, kube-apiserver, kube-controller-manager; no kubelet).

  export KUBECONFIG=${info.kubeconfig}
  kubectl get crds
  npm run cluster:down      # stop it and delete its state

Logs: ${join(stateDir, 'logs')}
`);
} catch (error) {
  console.error(`[cluster:up] ${error instanceof Error ? error.message : String(error)}`);
  await stopControlPlane(stateDir, { keepState: true });
  console.error(`[cluster:up] state kept for inspection in ${stateDir}; \`npm run cluster:down\` removes it`);
  process.exit(1);
}
