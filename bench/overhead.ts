/**
 * Orchestration overhead per model step and per tool step, with a zero-latency mock model.
 *
 * Runs go one at a time (no contention) and every event is timestamped in this process: the
 * mock's request arrival and answer, tool pod creation and termination as the pod watch delivers
 * them, the tool process's own start and end (its execution log), and status as the AgentRun
 * watch delivers it. A turn's critical path is cut into disjoint pieces:
 *
 *   model step  = [model answered → its tool pod created]                     (journal, then start)
 *                 (the last model step: [answered → the run Succeeded in status])
 *   tool step   = [pod terminated → the next request reaches the model]       (read output, journal, call)
 *   not ours    = model latency (0 here), the kubelet (pod created → process start, process end →
 *                 pod status), the tool process itself
 *
 * Status is written beside the next side effect, off the critical path (core/execution-plan.ts);
 * when it lands is reported on its own row.
 *
 * Measured twice: on the node emulator (local processes, what isolates our own overhead), and, as
 * root on Linux, on a real node (kubelet + containerd + runc: what a user of a real cluster pays
 * per tool step; the tool records its start and end through an HTTP recorder on the node IP).
 */
import { agentSpec, createRuns, measuredSteps, readExecLog, scriptAgent, startBenchEnv, waitFinished, workTool } from '../test/harness/fleet.ts';
import { intFlag, summarize, type Summary } from '../test/harness/measure.ts';
import { ms, type Scenario } from './lib/scenario.ts';
import { chooseNodeMode, type NodeMode } from '../test/harness/real-node.ts';

interface Measured {
  modelTotal: number[]; modelStatus: number[]; toolTotal: number[];
  kubelet: number[]; toolProcess: number[]; modelGaps: number[]; runStart: number[]; runDurations: number[]; toolStep: number[];
}

export const overhead: Scenario = async ({ quick, flags, log }) => {
  // A model that answers at once puts the previous step's status write on the next step's path
  // (one worker per run); --model-latency-ms shows what a real model's latency hides.
  const latencyMs = intFlag(flags, 'model-latency-ms', 0);
  const runs = quick ? 2 : 10;
  const turns = quick ? 2 : 5;
  const emu = await measure('emulator', runs, turns, latencyMs, log);
  const real = chooseNodeMode().mode === 'real' ? await measure('real', quick ? 2 : 5, quick ? 2 : 3, latencyMs, log) : undefined;
  const m = summarize(emu.modelTotal);
  const t = summarize(emu.toolTotal);
  const row = (label: string, s: Summary): [string, string] => [label, `p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)} (n=${s.n})`];
  const realRows: [string, string][] = real ? [
    row('REAL NODE: tool step overhead of ours (pod terminated → next request at the model)', summarize(real.toolTotal)),
    row('REAL NODE: kubelet + containerd + runc (pod created → process start, process end → pod terminated in the watch)', summarize(real.kubelet)),
    row('REAL NODE: whole tool step as a user sees it (step Running in status → Succeeded), tool process ~ms', summarize(real.toolStep)),
    row('REAL NODE: model step overhead (same operator; for comparison)', summarize(real.modelTotal)),
  ] : [['REAL NODE', 'not measured: needs root on Linux (AGENTRUN_NODE=emulator or no root)']];
  return {
    scenario: 'overhead',
    title: `Orchestration overhead per step (${latencyMs === 0 ? 'zero-latency' : `${latencyMs} ms`} mock model, one run at a time)`,
    params: { runs, turnsPerRun: turns, toolsPerTurn: 1, modelLatencyMs: latencyMs, workers: 8, logLevel: 'info', realNode: real !== undefined },
    table: [
      row('Model step overhead (answer → its tool pod created; last step: answer → run Succeeded)', m),
      row('Tool step overhead (pod terminated → next request at the model)', t),
      row('Off the critical path: answer → status shows the model step Succeeded', summarize(emu.modelStatus)),
      row('Not ours: emulated kubelet (pod created → process start, process end → pod status)', summarize(emu.kubelet)),
      row('Not ours: the tool process (sh -c printf)', summarize(emu.toolProcess)),
      row('Model answer → next model request (a whole tool turn in between)', summarize(emu.modelGaps)),
      row('Run created → first step in status (finalizer, tools journal, status)', summarize(emu.runStart)),
      row(`Whole run (${turns + 1} model + ${turns} tool steps)`, summarize(emu.runDurations)),
      ...realRows,
    ],
    targets: [
      { target: 'model-step overhead p50 ≤ 10 ms', measured: ms(m.p50), met: m.p50 <= 10 },
      { target: 'tool-step overhead (excluding the kubelet) p50 ≤ 15 ms', measured: ms(t.p50), met: t.p50 <= 15 },
    ],
    notes: [
      'Times are arrival times in the benchmark process: the mock\'s own request/answer times, tool pods as the pod watch delivers them (a few ms after the write), status as the run watch delivers it.',
      'REAL NODE rows: the same operator and runs on a real kubelet v1.36.3 + containerd 2.3 + runc with the restricted securityContext (one node of our own control plane, fewer runs); the tool records its start and end through an HTTP request to this process (busybox wget), so "process start/end" include that request.',
    ],
    data: { emulator: emu, real },
  };
};

async function measure(node: NodeMode, runs: number, turns: number, latencyMs: number, log?: (s: string) => void): Promise<Measured> {
  const env = await startBenchEnv({ label: `overhead-${node}`, modelLatencyMs: latencyMs, log, node });
  try {
    const created = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const name = `ov-${i}`;
      const key = `[ov-${i}]`;
      scriptAgent(env.model, key, turns, 1);
      const at = await createRuns(env.kube, env.namespace, [{ name, spec: agentSpec(key, env.model.url, [workTool(env.execLog, 'printf ok', env.signalsUrl)]) }], 1);
      created.set(name, at.get(name) ?? Date.now());
      if (!await waitFinished(env.recorder, new Set([name]), 120_000)) throw new Error(`${name} did not finish in 120 s:\n${env.operator.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const exec = await readExecLog(env.execLog);
    const modelTotal: number[] = [];
    const modelStatus: number[] = [];
    const toolTotal: number[] = [];
    const kubelet: number[] = [];
    const toolProcess: number[] = [];
    const runStart: number[] = [];
    const modelGaps: number[] = [];
    const runDurations: number[] = [];
    const toolStep: number[] = [];
    for (let i = 0; i < runs; i++) {
      const name = `ov-${i}`;
      const times = env.recorder.runs.get(name);
      if (!times) continue;
      const requests = env.model.requests(`[ov-${i}]`);
      const steps = [...times.steps.entries()].sort((a, b) => a[0] - b[0]);
      const first = steps[0]?.[1];
      if (first) runStart.push(first.firstSeen - (created.get(name) ?? first.firstSeen));
      if (times.finishedAt !== undefined) runDurations.push(times.finishedAt - (created.get(name) ?? times.finishedAt));
      for (let r = 1; r < requests.length; r++) modelGaps.push((requests[r]?.receivedAt ?? 0) - (env.answered.get(requests[r - 1]?.requestId ?? '') ?? 0));
      for (const step of measuredSteps(env, name, `[ov-${i}]`)) {
        if (step.kind === 'Model') {
          modelTotal.push(step.nextAt - step.answeredAt);
          if (step.times.done !== undefined) modelStatus.push(step.times.done - step.answeredAt);
          continue;
        }
        const { pod } = step;
        toolTotal.push(step.nextAt - pod.terminal);
        const lines = exec.filter((l) => l.key === `${times.uid ?? ''}/${step.id}`);
        const started = lines.find((l) => l.what === 'start')?.at;
        const ended = lines.find((l) => l.what === 'done')?.at;
        if (started === undefined || ended === undefined) continue;
        kubelet.push(started - pod.created + pod.terminal - ended);
        toolProcess.push(ended - started);
        if (step.times.running !== undefined && step.times.done !== undefined) toolStep.push(step.times.done - step.times.running);
      }
    }
    return { modelTotal, modelStatus, toolTotal, kubelet, toolProcess, modelGaps, runStart, runDurations, toolStep };
  } finally {
    await env.close();
  }
}
