/**
 * Orchestration overhead per model step and per tool step, with a zero-latency mock model.
 *
 * Runs go one at a time (no contention) and every transition is timestamped in this process:
 * status writes as the AgentRun watch delivers them, the mock's request arrival and answer, tool
 * pod creation and termination as the pod watch delivers them, and the tool process's own start
 * and end (its execution log). The run's timeline is cut into disjoint pieces:
 *
 *   model step  = [step appears in status → request reaches the model]        (start the call)
 *               + [model answered → status shows the step Succeeded]          (journal + status)
 *   tool step   = [step appears in status → its pod is created]               (intent → pod)
 *               + [pod terminated → status shows the step Succeeded]          (read output, journal, status)
 *   not ours    = model latency (0 here), the emulated kubelet (pod created → process start,
 *                 process end → pod status), the tool process itself
 */
import { agentSpec, createRuns, readExecLog, scriptAgent, startBenchEnv, waitFinished, workTool } from './lib/fleet.ts';
import { summarize, type Summary } from './lib/common.ts';
import { ms, type Scenario } from './lib/scenario.ts';

export const overhead: Scenario = async ({ quick, log }) => {
  const runs = quick ? 2 : 10;
  const turns = quick ? 2 : 5;
  const env = await startBenchEnv({ label: 'overhead', modelLatencyMs: 0, log });
  try {
    const created = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const name = `ov-${i}`;
      const key = `[ov-${i}]`;
      scriptAgent(env.model, key, turns, 1);
      const at = await createRuns(env.kube, env.namespace, [{ name, spec: agentSpec(key, env.model.url, [workTool(env.execLog)]) }], 1);
      created.set(name, at.get(name) ?? Date.now());
      if (!await waitFinished(env.recorder, new Set([name]), 120_000)) throw new Error(`${name} did not finish in 120 s:\n${env.operator.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const exec = await readExecLog(env.execLog);
    const modelStart: number[] = [];
    const modelRecord: number[] = [];
    const modelTotal: number[] = [];
    const toolStart: number[] = [];
    const toolCollect: number[] = [];
    const toolTotal: number[] = [];
    const kubelet: number[] = [];
    const toolProcess: number[] = [];
    const runStart: number[] = [];
    const modelGaps: number[] = [];
    const runDurations: number[] = [];
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
      const modelIds = steps.filter(([, st]) => st.kind === 'Model').map(([id]) => id);
      for (const [id, st] of steps) {
        if (st.done === undefined) continue;
        if (st.kind === 'Model') {
          // The k-th model step sends a conversation with k assistant messages.
          const req = requests.find((q) => q.turnIndex === modelIds.indexOf(id));
          const answeredAt = req ? env.answered.get(req.requestId) : undefined;
          if (!req || answeredAt === undefined) continue;
          modelStart.push(req.receivedAt - st.firstSeen);
          modelRecord.push(st.done - answeredAt);
          modelTotal.push(req.receivedAt - st.firstSeen + st.done - answeredAt);
        } else {
          const pod = st.podName ? env.recorder.pods.get(st.podName) : undefined;
          const lines = exec.filter((l) => l.key === `${times.uid ?? ''}/${id}`);
          const started = lines.find((l) => l.what === 'start')?.at;
          const ended = lines.find((l) => l.what === 'done')?.at;
          if (!pod?.terminal || started === undefined || ended === undefined) continue;
          toolStart.push(pod.created - st.firstSeen);
          toolCollect.push(st.done - pod.terminal);
          toolTotal.push(pod.created - st.firstSeen + st.done - pod.terminal);
          kubelet.push(started - pod.created + pod.terminal - ended);
          toolProcess.push(ended - started);
        }
      }
    }
    const m = summarize(modelTotal);
    const t = summarize(toolTotal);
    const row = (label: string, s: Summary): [string, string] => [label, `p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)} (n=${s.n})`];
    return {
      scenario: 'overhead',
      title: 'Orchestration overhead per step (zero-latency mock model, one run at a time)',
      params: { runs, turnsPerRun: turns, toolsPerTurn: 1, modelLatencyMs: 0, workers: 8, logLevel: 'info' },
      table: [
        row('Model step overhead (start the call + journal & status after the answer)', m),
        row('… of which: step in status → request at the model', summarize(modelStart)),
        row('… of which: answer → status shows the step Succeeded', summarize(modelRecord)),
        row('Tool step overhead (intent → pod created + pod terminated → status Succeeded)', t),
        row('… of which: step in status → pod created', summarize(toolStart)),
        row('… of which: pod terminated → status shows the step Succeeded', summarize(toolCollect)),
        row('Not ours: emulated kubelet (pod created → process start, process end → pod status)', summarize(kubelet)),
        row('Not ours: the tool process (sh -c printf)', summarize(toolProcess)),
        row('Model answer → next model request (a whole tool turn in between)', summarize(modelGaps)),
        row('Run created → first step in status (finalizer, tools journal, status)', summarize(runStart)),
        row(`Whole run (${turns + 1} model + ${turns} tool steps)`, summarize(runDurations)),
      ],
      targets: [{ target: 'model-step overhead p50 ≤ 15 ms', measured: ms(m.p50), met: m.p50 <= 15 }],
      notes: [
        'Times are arrival times in the benchmark process: status writes as the watch delivers them (a few ms after the write), the mock\'s own request/answer times, tool pods as the pod watch delivers them.',
      ],
      data: { modelTotal, modelStart, modelRecord, toolTotal, toolStart, toolCollect, kubelet, toolProcess, modelGaps, runStart, runDurations },
    };
  } finally {
    await env.close();
  }
};
