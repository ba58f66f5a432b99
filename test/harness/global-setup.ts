/**
 * vitest globalSetup of the integration project: one real control plane for the whole run, with
 * one real node (kubelet + containerd; local-cluster.ts) when running as root on Linux, or none
 * with AGENTRUN_NODE=emulator / without root (each test file then starts a node emulator).
 * It never skips: if the control plane or the real node cannot start, every integration test
 * fails with the reason and the log paths.
 * Set AGENTRUN_TEST_STATE_DIR to a running cluster's state dir (from `npm run cluster:up`) to reuse it.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { readClusterInfo, installCrds, type ClusterInfo } from './control-plane.ts';
import { diffHostSnapshots, otherSlots, takeHostSnapshot } from './host-snapshot.ts';
import { startLocalCluster, stopLocalCluster } from './local-cluster.ts';
import { chooseNodeMode, readRealNodes } from './real-node.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reuse = process.env.AGENTRUN_TEST_STATE_DIR;
  if (reuse) {
    const info = await readClusterInfo(reuse);
    await installCrds(info.kubeconfig);
    project.provide('cluster', info);
    return async () => { /* not ours to stop */ };
  }
  const stateDir = await mkdtemp(join(tmpdir(), 'agentrun-test-cluster-'));
  // Real nodes change this machine (links, mounts, cgroups, sysctls, paths); teardown must undo all of it.
  const before = chooseNodeMode().mode === 'real' ? await takeHostSnapshot() : undefined;
  const info = await startLocalCluster({
    stateDir,
    unsafeNoFsync: true,
    log: (line) => { if (process.env.AGENTRUN_TEST_VERBOSE) console.log(`[local-cluster] ${line}`); },
  }).catch(async (error: unknown) => {
    await stopLocalCluster(stateDir, { keepState: true });
    throw new Error(`The local cluster did not start, so integration tests cannot run (logs in ${stateDir}/logs).\n${String(error)}`);
  });
  project.provide('cluster', info);
  const ownSlot = before ? String((await readRealNodes(stateDir))?.slot ?? '') : '';
  return async () => {
    await stopLocalCluster(stateDir);
    if (!before) return;
    // Other sessions may run real-node clusters of their own meanwhile: what is theirs is left out.
    const after = await takeHostSnapshot();
    const others = otherSlots(before, after);
    others.delete(ownSlot);
    const diff = diffHostSnapshots(before, after, { ignoreSlots: others, ownStateDir: stateDir });
    if (diff.length > 0) throw new Error(`The real nodes' teardown left this machine changed:\n  ${diff.join('\n  ')}`);
  };
}
