import { defineConfig } from 'vitest/config';
import { chooseNodeMode } from './test/harness/real-node.ts';

// Tests of what only a real kubelet and container runtime do; without a real node (AGENTRUN_NODE=emulator,
// or not root on Linux) they are left out, and the README says so. Everything else runs on either.
const REAL_NODE_ONLY = ['test/integration/real-node.test.ts', 'test/integration/operator-pod.test.ts'];
const realNode = chooseNodeMode().mode === 'real';

export default defineConfig({
  test: {
    // The JSON report lets CI print a plain "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.agentrun/vitest-report.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/replay/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: realNode ? [] : REAL_NODE_ONLY,
          environment: 'node',
          // One real control plane for the whole run; each test file works in its own namespace.
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // 2 cores: the apiserver and etcd need CPU too.
          maxWorkers: 2,
        },
      },
    ],
  },
});
