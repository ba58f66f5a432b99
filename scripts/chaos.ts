/**
 * `npm run chaos`: a fleet of AgentRuns under seeded faults, checked against undisturbed runs.
 *
 *   npm run chaos                      # 30 runs, 15 leader kills, 5 tool-pod deletions, 3 model outages,
 *                                      # one kube-apiserver restart and one etcd restart
 *   npm run chaos -- --small           # the CI-sized configuration (6 runs, 4 kills, 2 deletions, ...)
 *   npm run chaos -- --runs 60 --kills 20 --pod-deletions 8 --outages 4 --seed 7
 *   npm run chaos -- --node emulator   # the node emulator instead of real nodes (default without root)
 *
 * What runs (everything on 127.0.0.1, all of it real except the two stand-ins of the README):
 * our own control plane (etcd with fsync, kube-apiserver, kube-controller-manager, CRDs and the
 * approval admission policies), TWO REAL NODES as root on Linux (kubelet + containerd each, the
 * second in a group of its own so that it can be lost whole; test/harness/real-node.ts) or else
 * the node emulator, the mock Messages API, and TWO operator
 * replicas (`node src/main.ts --leader-elect`, short lease timings) supervised like a kubelet
 * would: a replica that exits, killed or not, is started again a second later.
 *
 * The fleet: each run is a ~6-turn agent with parallel tool calls and one tool that needs a human
 * approval, given by a user bound to the `agentrun-approver` ClusterRole (the admission policies
 * record `decided-by.agentrun.dev/step-N`). All tools are `idempotent: true`. Each tool appends
 * "<idempotency key> <attempt> start|done <ms>" to an execution log outside /tmp (from a
 * container: through an HTTP recorder on the node IP, which adds the time; test/harness/tool-signals.ts).
 *
 * Faults, in a seeded order with seeded gaps: SIGKILL of the current leader (the Lease holder),
 * deletion of a running tool pod, a kube-apiserver kill + restart with the same flags, an etcd
 * kill + restart with the same flags and data dir, 529 bursts of the model API; on real nodes also
 * kubelet SIGKILLs (restarted 2-4 s later: its containers keep running and are adopted) and the
 * loss of the second node (kubelet, containerd and its containers stopped for good: the node
 * lifecycle controller marks it unreachable, its pods are evicted and idempotent tools run again
 * on the first node).
 *
 * Checks, for every run against the undisturbed baseline run of its variant: same final result,
 * the same steps (kind, tool, turn) all Succeeded and journaled (AgentRunJournal present, digest
 * matches, payload equal to the baseline's), no completed tool execution repeated, and every
 * extra model call explained by a leader exit between the original call and its re-issue.
 * Writes bench/results/chaos[-small]-<time>.json and -latest.json, and (full configuration only)
 * docs/chaos.md; exits 1 if a guarantee was broken. `npm test` ends with the small configuration.
 *
 * This file is the entry point; the suite lives in scripts/chaos/ (options, workload, replicas,
 * approver, fault-injector, checks, report, main).
 */
import { log } from './chaos/log.ts';
import { main } from './chaos/main.ts';

main().then((code) => { process.exit(code); }, (error: unknown) => {
  log(`chaos failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exit(2);
});
