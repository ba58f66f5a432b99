/**
 * The chaos run: cluster, nodes, replicas, baselines, the fleet under faults, checks and the result files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostScratchDir, kubectl, userKubeconfig, type ClusterInfo } from '../../test/harness/control-plane.ts';
import { startMockModelServer } from '../../test/harness/mock-model-server.ts';
import { NodeEmulator } from '../../test/harness/node-emulator.ts';
import { startRealNodes, stopRealNodes } from '../../test/harness/real-node.ts';
import { startToolSignalServer } from '../../test/harness/tool-signals.ts';
import { ForeignCpuSampler, machineInfo, mulberry32, repoRoot, sleep, srcFingerprint, writeResult } from '../../test/harness/measure.ts';
import { finished, startOwnCluster, until, type AgentRunLike } from '../../test/harness/own-cluster.ts';
import { createModelEndpoint } from '../../test/harness/fleet.ts';
import { renderChaosMarkdown } from '../chaos-report.ts';
import { Approver } from './approver.ts';
import { type RunCheck, checkRun, execLines, journalOf, openIntervals } from './checks.ts';
import { FaultInjector, JournalWatch, LOSABLE_GROUP } from './fault-injector.ts';
import { log } from './log.ts';
import { type Options, options } from './options.ts';
import { Replicas } from './replicas.ts';
import { brokenGuarantees, fleetSummary } from './report.ts';
import { type Recorder, VARIANTS, fileRecorder, httpRecorder, runSpec, scriptFor } from './workload.ts';

/**
 * The nodes of the chaos namespace: a node emulator, or on real nodes the cluster's own node plus
 * a second one in a group of its own (the one a node-loss fault stops). Returns how tools record.
 */
async function startNodes(o: Options, info: ClusterInfo, namespace: string, execLog: string, cleanup: (() => Promise<unknown>)[]): Promise<Recorder> {
  if (o.node === 'emulator') {
    const emulator = new NodeEmulator({ ...info, nodeName: 'chaos-node', namespaces: [namespace] });
    await emulator.start();
    cleanup.unshift(() => emulator.stop());
    return fileRecorder(execLog);
  }
  const second = await startRealNodes(info, { group: LOSABLE_GROUP, namePrefix: 'chaos-node-b', count: 1, log });
  // Just before the cluster's own teardown (the last cleanup step), which restores the machine.
  cleanup.splice(cleanup.length - 1, 0, () => stopRealNodes(info.stateDir, LOSABLE_GROUP));
  const signals = await startToolSignalServer(info.nodes?.hostIP ?? second.hostIP, hostScratchDir());
  cleanup.unshift(() => signals.close());
  log(`real nodes ${[...(info.nodes?.names ?? []), ...second.nodes.map((n) => n.name)].join(', ')} Ready; tools record through ${signals.url}`);
  return httpRecorder(signals.url, execLog);
}

/** Runs the chaos suite; resolves to the exit code (0 when every guarantee held). */
export async function main(): Promise<number> {
  const o = options(process.argv.slice(2));
  const started = Date.now();
  const random = mulberry32(o.seed);
  const faultRandom = mulberry32(o.seed ^ 0x5eed);
  log(`seed ${o.seed}: ${o.runs} runs, ${o.kills} leader kills, ${o.podDeletions} pod deletions, ${o.apiserverRestarts} apiserver + ${o.etcdRestarts} etcd restarts, ${o.outages} model outages, ${o.kubeletRestarts} kubelet restarts, ${o.nodeLosses} node losses; ${o.node === 'real' ? 'two real nodes' : 'the node emulator'}`);
  const machine = machineInfo();
  const src = await srcFingerprint();
  const cpu = new ForeignCpuSampler().start();
  const cluster = await startOwnCluster('chaos', { unsafeNoFsync: o.unsafeNoFsync, log, nodeMode: o.node });
  const cleanup: (() => Promise<unknown>)[] = [() => cluster.stop()];
  try {
    const kube = cluster.kube;
    const namespace = await kube.createNamespace('chaos');
    const approverKubeconfig = await userKubeconfig(cluster.info, 'chaos-approver', ['chaos-approvers']);
    await kubectl(cluster.info.kubeconfig, ['create', 'rolebinding', 'approvers', '-n', namespace, '--clusterrole=agentrun-approver', '--group=chaos-approvers']);
    const answered = new Map<string, number>();
    const model = await startMockModelServer({ latencyMs: o.modelLatencyMs, onResponse: (r) => { answered.set(r.requestId, Date.now()); } });
    await createModelEndpoint(kube, namespace, model.url);
    cleanup.unshift(() => model.close());
    // Outside /tmp (and so outside a checkout under /tmp): tool pods mount their own /tmp.
    const dir = hostScratchDir('chaos', new Date().toISOString().replace(/[:.]/g, '-'));
    await mkdir(dir, { recursive: true });
    const execLog = join(dir, 'exec.log');
    await writeFile(execLog, '');
    const record = await startNodes(o, cluster.info, namespace, execLog, cleanup);
    const journalWatch = new JournalWatch();
    await journalWatch.start(kube, namespace);
    cleanup.unshift(() => journalWatch.stop());

    const replicas = new Replicas(kube, namespace, cluster.info.kubeconfig, o);
    await replicas.start();
    cleanup.unshift(() => replicas.stop());
    await until('a leader', () => replicas.leader(), 60_000);
    const approver = new Approver(kube, approverKubeconfig, namespace, random);
    approver.start();
    cleanup.unshift(() => { approver.stop(); return Promise.resolve(); });

    // 1. Undisturbed baseline: one run per variant.
    log('baseline: one undisturbed run per variant');
    const baselineStart = Date.now();
    for (let v = 0; v < VARIANTS.length; v++) {
      scriptFor(model, `[chaos-base-v${v}]`, v);
      await kube.createRun(namespace, `base-v${v}`, runSpec(`[chaos-base-v${v}]`, model.url, record));
    }
    await until('the baseline runs to finish', async () => {
      const runs = await Promise.all(VARIANTS.map((_, v) => kube.getRun(namespace, `base-v${v}`)));
      return runs.every(finished) ? runs : undefined;
    }, 180_000, 500);
    const baselineMs = Date.now() - baselineStart;
    log(`baseline done in ${baselineMs} ms`);

    // 2. The fleet, created over the expected fault window, while faults are injected.
    const injector = new FaultInjector(o, cluster, namespace, replicas, model, faultRandom, execLog);
    const plan = injector.plan();
    // Measured on the 2-core machine: a kill costs the lease duration plus ~5 s (gap, takeover,
    // first write); an apiserver restart ~15 s (the leader loses its lease too); etcd ~8 s.
    const expectedWindowMs = o.kills * (o.leaseSeconds * 1000 + 5_000) + o.apiserverRestarts * 15_000 + o.etcdRestarts * 8_000
      + (o.podDeletions + o.outages) * 3_000 + o.kubeletRestarts * 6_000 + o.nodeLosses * 35_000;
    const staggerMs = Math.max(500, Math.min(10_000, Math.floor((expectedWindowMs * 0.75) / Math.max(1, o.runs))));
    log(`creating the ${o.runs} fleet runs ${staggerMs} ms apart over the expected fault window of ~${Math.round(expectedWindowMs / 1000)} s`);
    const fleetStart = Date.now();
    const deadline = fleetStart + o.deadlineMs;
    const creating = (async () => {
      for (let i = 0; i < o.runs; i++) {
        const v = i % VARIANTS.length;
        const key = `[chaos-r${String(i).padStart(3, '0')}]`;
        scriptFor(model, key, v);
        await until(`run r${i} to be created`, async () => kube.createRun(namespace, `r${String(i).padStart(3, '0')}`, runSpec(key, model.url, record)).then(() => true), 120_000, 500);
        await sleep(staggerMs);
      }
    })();
    const faults = injector.run(plan, deadline);
    await Promise.all([creating, faults]);
    log(`all faults injected after ${Math.round((Date.now() - fleetStart) / 1000)} s; waiting for the fleet to finish`);
    const fleetNames = Array.from({ length: o.runs }, (_, i) => `r${String(i).padStart(3, '0')}`);
    let lastRuns: AgentRunLike[] = [];
    const allDone = await until('every run to finish', async () => {
      lastRuns = (await kube.listRuns(namespace)).filter((r) => fleetNames.includes(r.metadata.name ?? ''));
      return lastRuns.length === o.runs && lastRuns.every(finished) ? true : undefined;
    }, Math.max(30_000, deadline - Date.now()), 1_000).catch(() => false);
    const fleetMs = Date.now() - fleetStart;
    await sleep(1_500); // let the last exec-log lines land

    // 3. Checks.
    const journal = await journalOf(kube, namespace);
    const exec = await execLines(execLog);
    const baselines = await Promise.all(VARIANTS.map(async (_, v) => {
      const run = await kube.getRun(namespace, `base-v${v}`);
      const texts = new Map<string, string>();
      for (const s of run.status?.steps ?? []) if (s.journal) texts.set(s.journal.name, journal.get(s.journal.name)?.text ?? '');
      return { run, key: `[chaos-base-v${v}]`, journal: texts };
    }));
    const baselineProblems = baselines.filter((b) => b.run.status?.phase !== 'Succeeded').map((b) => `baseline ${b.run.metadata.name ?? ''} ended ${String(b.run.status?.phase)}`);
    const runsNow = await kube.listRuns(namespace);
    // Pods whose output may have gone with them: those of the lost node, and those the pod-deletion
    // faults deleted (on a real node the kill can land after the tool ended, and the log goes with the pod).
    const loss = injector.records.find((r) => r.kind === 'node-loss' && !r.skipped);
    const deleted = injector.records.filter((r) => r.kind === 'pod-deletion' && r.pod !== undefined).map((r) => r.pod ?? '');
    const nodeLoss = { at: loss?.at ?? 0, pods: new Set([...(loss?.lostPods ?? []), ...deleted]) };
    const checks: RunCheck[] = fleetNames.map((name, i) => {
      const run = runsNow.find((r) => r.metadata.name === name);
      const v = i % VARIANTS.length;
      const key = `[chaos-r${String(i).padStart(3, '0')}]`;
      const base = baselines[v];
      if (!run || !base) return { name, variant: v, phase: 'Missing', resultMatches: false, stepsMatch: false, lostSteps: 0, journalMismatches: 0, modelCalls: 0, extraModelCalls: 0, unexplainedExtraCalls: 0, callsInterruptedByLeaderExits: 0, extraCallsBeyondInterruptions: 0, outageRejections: 0, toolStarts: 0, completedToolReruns: 0, interruptedToolReruns: 0, rerunsAfterUnreportedCompletion: 0, podLostSteps: 0, problems: ['run missing'] };
      return checkRun(run, v, key, base, journal, model.requests(key), exec, replicas.exits, openIntervals(run, model.requests(key), answered, journalWatch.firstSeen), nodeLoss);
    });

    // Model calls open (sent, not yet journaled) per run: kills that landed inside one cost it.
    const intervals = fleetNames.map((name, i) => openIntervals(runsNow.find((r) => r.metadata.name === name), model.requests(`[chaos-r${String(i).padStart(3, '0')}]`), answered, journalWatch.firstSeen));
    const summary = fleetSummary(o, checks, intervals, replicas.exits, injector.records,
      { baselineMs, fleetMs, totalMs: Date.now() - started });
    // Why a run did not finish: its message, and the state of the pods of its running tool steps.
    const unfinished = await Promise.all(runsNow.filter((r) => fleetNames.includes(r.metadata.name ?? '') && !finished(r)).map(async (r) => {
      const pods = await Promise.all((r.status?.steps ?? []).filter((s) => s.kind === 'Tool' && s.phase === 'Running' && s.podName).map(async (s) => {
        const pod = await kube.core.readNamespacedPod({ namespace, name: s.podName ?? '' }).catch(() => undefined);
        return `${s.podName ?? ''}: ${pod ? `${pod.status?.phase ?? '?'} on ${pod.spec?.nodeName ?? 'no node (never bound)'}, created ${String(pod.metadata?.creationTimestamp)}` : 'gone'}`;
      }));
      return `${r.metadata.name ?? ''} (${r.status?.phase ?? '?'}: ${r.status?.message ?? ''}; ${pods.join('; ')})`;
    }));
    const broken = brokenGuarantees(o, summary, checks, injector.records, baselineProblems, allDone ? undefined : unfinished);

    const result = {
      kind: 'chaos', command: `npm run chaos -- ${process.argv.slice(2).join(' ')}`.trim(), machine, src, options: o,
      ok: broken.length === 0, broken, summary,
      faults: injector.records.map((r) => ({ ...r, atOffsetMs: r.at - fleetStart })),
      replicaExits: replicas.exits.map((e) => ({ ...e, atOffsetMs: e.at - fleetStart })),
      runs: checks,
      modelRequests: fleetNames.map((name, i) => ({
        run: name,
        openIntervalsOffsetMs: (intervals[i] ?? []).map(([from, to]) => [from - fleetStart, to - fleetStart]),
        calls: model.requests(`[chaos-r${String(i).padStart(3, '0')}]`).map((r) => ({
          turn: r.turnIndex, status: r.status, atOffsetMs: r.receivedAt - fleetStart, answeredOffsetMs: (answered.get(r.requestId) ?? Number.NaN) - fleetStart,
        })),
      })),
      cpu: cpu.stop(),
      execLog,
    };
    const path = await writeResult(o.small ? 'chaos-small' : 'chaos', result);
    // The committed copy of the raw result is the -latest one (timestamped files are not committed).
    if (o.writeDocs) await writeFile(join(repoRoot, 'docs', 'chaos.md'), renderChaosMarkdown(result, join(repoRoot, 'bench', 'results', 'chaos-latest.json')));
    log(`results: ${path}`);
    log(JSON.stringify(summary));
    if (broken.length > 0) {
      log(`GUARANTEES BROKEN:\n  - ${broken.join('\n  - ')}`);
      for (const c of checks.filter((x) => x.problems.length > 0).slice(0, 10)) log(`${c.name}: ${c.problems.slice(0, 5).join(' | ')}`);
      for (const op of replicas.all) log(`--- ${op.name} tail ---\n${op.tail(15)}`);
    } else log(`all guarantees held (${Math.round(summary.totalMs / 1000)} s)`);
    return broken.length === 0 ? 0 : 1;
  } finally {
    for (const step of cleanup) await step().catch((error: unknown) => { log(`cleanup: ${String(error)}`); });
    cpu.stop();
  }
}
