/**
 * vitest globalSetup of the integration project: one real control plane for the whole run.
 * It never skips: if the control plane cannot start, every integration test fails with the reason.
 * Set AGENTRUN_TEST_STATE_DIR to a running cluster's state dir (from `npm run cluster:up`) to reuse it.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { readClusterInfo, startControlPlane, stopControlPlane, installCrds, type ClusterInfo } from './control-plane.ts';

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
  const info = await startControlPlane({
    stateDir,
    unsafeNoFsync: true,
    log: (line) => { if (process.env.AGENTRUN_TEST_VERBOSE) console.log(`[control-plane] ${line}`); },
  }).catch(async (error: unknown) => {
    await stopControlPlane(stateDir, { keepState: true });
    throw new Error(`The local control plane did not start, so integration tests cannot run (logs in ${stateDir}/logs).\n${String(error)}`);
  });
  project.provide('cluster', info);
  return async () => { await stopControlPlane(stateDir); };
}
