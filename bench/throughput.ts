/**
 * Throughput at N concurrent runs (zero-latency mock model): all N runs are created at once and
 * the clock runs from the first model request to the last answer. Two shapes:
 * - agent runs: 5 tool turns (1 tool each, `printf ok` in a pod) + the final answer = 6 model and
 *   5 tool steps per run;
 * - one-step runs: a single model call that ends the run (no pod), i.e. run admission + one model
 *   step + completion;
 * - model-only runs: 5 pause_turn answers + the final answer = 6 model steps and no pod, i.e. the
 *   orchestration of model steps alone (journal + status per step), without the emulated kubelet.
 * CPU used by the operator, kube-apiserver, etcd and this process (emulator + mock) is recorded
 * over the same window, to show what saturates on 2 cores.
 */
import { freePort } from '../test/harness/control-plane.ts';
import { CpuSplit, summarize } from '../test/harness/measure.ts';
import { adminGet } from '../test/harness/control-plane.ts';
import { pidOf } from '../test/harness/own-cluster.ts';
import { groupBy, metricSum, parseMetrics, type Sample } from '../test/harness/metrics.ts';
import { agentSpec, createRuns, scriptAgent, scriptPauses, startBenchEnv, waitFinished, workTool, type BenchEnv } from '../test/harness/fleet.ts';
import type { Scenario, Target } from './lib/scenario.ts';

interface Profile {
  reconciles: number; reconcileMeanMs: number; reconcileByOutcome: Record<string, number>; effects: Record<string, number>;
  queueDepthMax: number; queueDepthMean: number; eventLoopLagP99MsMax: number; modelCallsInFlightMax: number;
  apiserverMeanMsByVerbResource: Record<string, number>;
}

interface Round { workers: number; profile: Profile; shape: string; runs: number; modelSteps: number; toolSteps: number; windowS: number; modelStepsPerS: number; stepsPerS: number; runLatency: ReturnType<typeof summarize>; finished: number; cpu: Record<string, { cpuSeconds: number; coresUsed: number }>; peakRssMiB: number }

async function scrapeOperator(port: number): Promise<Sample[]> {
  try { return parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()); } catch { return []; }
}

/** Operator-side profile of a round: reconciles, effects, queue depth, event-loop lag; apiserver latency. */
class Profiler {
  private readonly env: BenchEnv;
  private readonly port: number;
  private timer: NodeJS.Timeout | undefined;
  private depths: number[] = [];
  private lags: number[] = [];
  private inFlight: number[] = [];
  private before: Sample[] = [];
  private apiBefore: Sample[] = [];

  constructor(env: BenchEnv, port: number) {
    this.env = env;
    this.port = port;
  }

  async start(): Promise<void> {
    this.before = await scrapeOperator(this.port);
    this.apiBefore = parseMetrics((await adminGet(this.env.cluster.info, '/metrics', 20_000)).body);
    this.timer = setInterval(() => {
      void scrapeOperator(this.port).then((s) => {
        this.depths.push(metricSum(s, 'agentrun_workqueue_depth'));
        this.lags.push(metricSum(s, 'nodejs_eventloop_lag_p99_seconds') * 1000);
        this.inFlight.push(metricSum(s, 'agentrun_model_calls_in_flight'));
      });
    }, 1_000);
  }

  async stop(): Promise<Profile> {
    clearInterval(this.timer);
    const after = await scrapeOperator(this.port);
    const apiAfter = parseMetrics((await adminGet(this.env.cluster.info, '/metrics', 20_000)).body);
    const d = (name: string, labels: Record<string, string> = {}) => metricSum(after, name, labels) - metricSum(this.before, name, labels);
    const byOutcome = (name: string) => {
      const a = groupBy(after, name, ['outcome']);
      const b = groupBy(this.before, name, ['outcome']);
      return Object.fromEntries([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
    };
    const effectsA = groupBy(after, 'agentrun_effects_total', ['type']);
    const effectsB = groupBy(this.before, 'agentrun_effects_total', ['type']);
    const reconciles = d('agentrun_reconcile_duration_seconds_count');
    const apiKey = ['verb', 'resource', 'subresource'];
    const sumA = groupBy(apiAfter, 'apiserver_request_duration_seconds_sum', apiKey);
    const sumB = groupBy(this.apiBefore, 'apiserver_request_duration_seconds_sum', apiKey);
    const cntA = groupBy(apiAfter, 'apiserver_request_duration_seconds_count', apiKey);
    const cntB = groupBy(this.apiBefore, 'apiserver_request_duration_seconds_count', apiKey);
    const apiserverMeanMsByVerbResource: Record<string, number> = {};
    for (const [k, c] of cntA) {
      const n = c - (cntB.get(k) ?? 0);
      if (n < 20 || k.startsWith('WATCH')) continue;
      apiserverMeanMsByVerbResource[`${k.trim()} (n=${n})`] = Math.round((((sumA.get(k) ?? 0) - (sumB.get(k) ?? 0)) / n) * 10000) / 10;
    }
    const mean = (xs: number[]) => (xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10 : 0);
    return {
      reconciles, reconcileMeanMs: reconciles ? Math.round((d('agentrun_reconcile_duration_seconds_sum') / reconciles) * 10000) / 10 : 0,
      reconcileByOutcome: byOutcome('agentrun_reconcile_duration_seconds_count'),
      effects: Object.fromEntries([...effectsA].map(([k, v]) => [k, v - (effectsB.get(k) ?? 0)])),
      queueDepthMax: Math.max(0, ...this.depths), queueDepthMean: mean(this.depths),
      eventLoopLagP99MsMax: Math.round(Math.max(0, ...this.lags)), modelCallsInFlightMax: Math.max(0, ...this.inFlight),
      apiserverMeanMsByVerbResource,
    };
  }
}

type Shape = 'agent' | 'onestep' | 'modelonly';

async function round(env: BenchEnv, label: string, runs: number, shape: Shape, turns: number, log: (s: string) => void, port: number, workers: number): Promise<Round> {
  const specs = Array.from({ length: runs }, (_, i) => {
    const key = `[${label}-${i}]`;
    if (shape === 'modelonly') scriptPauses(env.model, key, turns);
    else scriptAgent(env.model, key, shape === 'agent' ? turns : 0, 1);
    return { name: `${label}-${i}`, spec: agentSpec(key, env.model.url, shape === 'agent' ? [workTool(env.execLog)] : []) };
  });
  const names = new Set(specs.map((s) => s.name));
  const cpu = await new CpuSplit({
    operator: () => env.operator.pid ?? 0,
    'kube-apiserver': () => pidOf(env.cluster.info, 'kube-apiserver'),
    etcd: () => pidOf(env.cluster.info, 'etcd'),
    'benchmark process (emulator, mock, recorder)': () => process.pid,
  }).start();
  env.operator.peakRssBytes = 0;
  const profiler = new Profiler(env, port);
  await profiler.start();
  const creationStart = Date.now();
  const created = await createRuns(env.kube, env.namespace, specs, 16);
  const ok = await waitFinished(env.recorder, names, 900_000, (done) => { log(`${label}: ${done}/${runs} finished`); });
  const cpuUse = await cpu.stop();
  const profile = await profiler.stop();
  const requests = specs.flatMap((s, i) => env.model.requests(`[${label}-${i}]`)).filter((r) => r.status === 200);
  // The clock runs from the first create call to the last run seen finished (the whole makespan).
  const last = Math.max(...specs.map((s) => env.recorder.runs.get(s.name)?.finishedAt ?? 0));
  const windowS = (last - creationStart) / 1000;
  const latencies = specs.flatMap((s) => {
    const t = env.recorder.runs.get(s.name)?.finishedAt;
    const c = created.get(s.name);
    return t !== undefined && c !== undefined ? [t - c] : [];
  });
  const toolSteps = shape === 'agent' ? runs * turns : 0;
  const shapeText = { agent: `${turns + 1} model + ${turns} tool steps`, onestep: '1 model step', modelonly: `${turns + 1} model steps (pause_turn), no tools` }[shape];
  const result: Round = {
    workers, profile, shape: shapeText, runs, modelSteps: requests.length, toolSteps, windowS: Math.round(windowS * 10) / 10,
    modelStepsPerS: Math.round((requests.length / windowS) * 10) / 10, stepsPerS: Math.round(((requests.length + toolSteps) / windowS) * 10) / 10,
    runLatency: summarize(latencies), finished: env.recorder.finishedCount(names), cpu: cpuUse, peakRssMiB: Math.round(env.operator.peakRssBytes / 2 ** 20),
  };
  if (!ok) throw new Error(`${label}: only ${result.finished}/${runs} runs finished within 15 min`);
  log(`${label}: ${JSON.stringify(result)}`);
  return result;
}

export const throughput: Scenario = async ({ quick, flags, log }) => {
  const sizes = (flags.get('sizes') ?? (quick ? '5' : '100,200,500')).split(',').map(Number);
  const turns = quick ? 2 : 5;
  // The default (8) and, to test whether workers are the bottleneck, more (flag --workers-also).
  const workerCounts = [8, ...(flags.get('workers-also') ?? (quick ? '' : '32')).split(',').filter(Boolean).map(Number)];

  const rounds: Round[] = [];
  for (const n of sizes) {
    for (const workers of workerCounts) {
      // A fresh environment per round: nothing left over from the previous one.
      for (const shape of ['agent', 'modelonly', 'onestep'] as const) {
        if (workers !== 8 && n !== Math.max(...sizes)) continue;
        const port = await freePort();
        const env = await startBenchEnv({ label: `tp${n}${shape}w${workers}`, modelLatencyMs: 0, operator: { metricsPort: port, extraArgs: ['--workers', String(workers)] }, log });
        try { rounds.push(await round(env, `${shape}${n}w${workers}`, n, shape, turns, log, port, workers)); } finally { await env.close(); }
      }
    }
  }
  const at200 = (shape: string, workers = 8) => rounds.find((r) => r.runs === 200 && r.shape.startsWith(shape) && r.workers === workers);
  const agent = at200(`${turns + 1} model + `);
  const modelOnly = at200(`${turns + 1} model steps`);
  const modelOnlyMore = at200(`${turns + 1} model steps`, Math.max(...workerCounts));
  const targets: Target[] = [{
    target: '≥ 50 model steps/s at 200 concurrent runs',
    measured: modelOnly
      ? `${modelOnly.modelStepsPerS} model steps/s for model-only runs (default 8 workers)${modelOnlyMore && modelOnlyMore !== modelOnly ? `, ${modelOnlyMore.modelStepsPerS} with ${modelOnlyMore.workers} workers` : ''}; agent runs with a tool pod per turn: ${agent?.modelStepsPerS ?? '—'} model steps/s (${agent?.stepsPerS ?? '—'} steps/s with the tool steps)`
      : 'not measured',
    met: modelOnly ? modelOnly.modelStepsPerS >= 50 : 'n/a',
  }];
  const cpuText = (r: Round) => Object.entries(r.cpu).map(([k, v]) => `${k} ${v.coresUsed}`).join(', ');
  return {
    scenario: 'throughput',
    title: 'Throughput at N concurrent runs (zero-latency mock model; clock from the first create to the last run finished)',
    params: { sizes, agentShape: `${turns + 1} model + ${turns} tool steps`, operatorWorkers: 8, modelLatencyMs: 0 },
    table: rounds.flatMap((r) => [
      [`${r.runs} concurrent runs, ${r.shape}, --workers ${r.workers}: model steps/s (all steps/s)`, `${r.modelStepsPerS} (${r.stepsPerS}) over ${r.windowS} s; ${r.finished}/${r.runs} finished`],
      [`… run latency (created → finished), ms`, `p50 ${r.runLatency.p50}, p95 ${r.runLatency.p95}, max ${r.runLatency.max}`],
      [`… cores used over the window`, `${cpuText(r)}; operator peak RSS ${r.peakRssMiB} MiB`],
      [`… operator profile`, `${r.profile.reconciles} reconciles, mean ${r.profile.reconcileMeanMs} ms; workqueue depth max ${r.profile.queueDepthMax} (mean ${r.profile.queueDepthMean}); event-loop lag p99 max ${r.profile.eventLoopLagP99MsMax} ms; model calls in flight max ${r.profile.modelCallsInFlightMax}`],
      [`… apiserver mean latency, ms (verb resource subresource)`, Object.entries(r.profile.apiserverMeanMsByVerbResource).map(([k, v]) => `${k} ${v}`).join('; ')],
    ] as [string, string][]),
    targets,
    notes: ['Tool pods are run by the node emulator inside the benchmark process (one `sh` per pod): on 2 cores it competes with the operator, the apiserver and etcd.'],
    data: { rounds },
  };
};
