/**
 * Command-line options of `npm run chaos` (full and --small configurations).
 */
import { chooseNodeMode, type NodeMode } from '../../test/harness/real-node.ts';
import { intFlag, parseFlags } from '../../test/harness/measure.ts';

/** The configuration of a chaos run. */
export interface Options {
  runs: number; kills: number; podDeletions: number; outages: number; apiserverRestarts: number; etcdRestarts: number;
  node: NodeMode; kubeletRestarts: number; nodeLosses: number;
  seed: number; modelLatencyMs: number; leaseSeconds: number; renewSeconds: number; retrySeconds: number;
  gapMinMs: number; gapMaxMs: number; deadlineMs: number; small: boolean; writeDocs: boolean; unsafeNoFsync: boolean;
}

/** Parses the command line (defaults: the full configuration; --small: the CI one). */
export function options(argv: readonly string[]): Options {
  const flags = parseFlags(argv);
  const small = flags.get('small') === 'true';
  const d = small
    ? { runs: 6, kills: 4, podDeletions: 2, outages: 1, deadline: 150, kubeletRestarts: 1, nodeLosses: 0 }
    : { runs: 30, kills: 15, podDeletions: 5, outages: 3, deadline: 900, kubeletRestarts: 3, nodeLosses: 1 };
  const asked = flags.get('node');
  const node: NodeMode = asked === 'real' || asked === 'emulator' ? asked : chooseNodeMode().mode;
  const real = node === 'real';
  return {
    small,
    node,
    // Faults of a real kubelet; the emulator has none to restart or lose.
    kubeletRestarts: real ? intFlag(flags, 'kubelet-restarts', d.kubeletRestarts) : 0,
    nodeLosses: real ? Math.min(1, intFlag(flags, 'node-losses', d.nodeLosses)) : 0,
    runs: intFlag(flags, 'runs', d.runs),
    kills: intFlag(flags, 'kills', d.kills),
    podDeletions: intFlag(flags, 'pod-deletions', d.podDeletions),
    outages: intFlag(flags, 'outages', d.outages),
    apiserverRestarts: intFlag(flags, 'apiserver-restarts', 1),
    etcdRestarts: intFlag(flags, 'etcd-restarts', 1),
    seed: intFlag(flags, 'seed', 20261129),
    modelLatencyMs: intFlag(flags, 'model-latency-ms', 300),
    leaseSeconds: intFlag(flags, 'lease-seconds', 5),
    renewSeconds: intFlag(flags, 'renew-seconds', 4),
    retrySeconds: intFlag(flags, 'retry-seconds', 1),
    gapMinMs: intFlag(flags, 'gap-min-ms', 1_000),
    gapMaxMs: intFlag(flags, 'gap-max-ms', 3_000),
    deadlineMs: intFlag(flags, 'deadline-seconds', d.deadline) * 1000,
    // The small (CI) configuration proves the guarantees on every change; docs/chaos.md reports the full one.
    writeDocs: !small && flags.get('no-docs') !== 'true',
    unsafeNoFsync: flags.get('unsafe-no-fsync') === 'true',
  };
}
