/**
 * The operator's memory with N runs (default 1,000 small runs: one tool turn and an answer).
 * RSS comes from /proc/<pid>/status (VmRSS); heap figures from the operator's own /metrics
 * (prom-client's nodejs_* gauges). Measured: idle; with all N runs active (each with its model
 * step started: up to --max-concurrent-model-calls calls held in flight by the mock, the rest
 * waiting for a slot); the peak while they all run; after all finished (still cached). The main
 * round runs the operator as the Helm chart does (its heap cap and model-call bounds) and reports
 * the peak against the chart's memory limit.
 */
import { chartLaunch, chartLimits } from './lib/chart-limits.ts';
import { freePort } from '../test/harness/control-plane.ts';
import { buildCompiledOperator } from './lib/build.ts';
import { sleep } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, startBenchEnv, waitFinished, workTool, type BenchEnv } from '../test/harness/fleet.ts';
import { metricSum, parseMetrics } from '../test/harness/metrics.ts';
import type { Scenario } from './lib/scenario.ts';

const MiB = 2 ** 20;

interface MemoryPoint { rssMiB: number; heapUsedMiB: number; heapTotalMiB: number; externalMiB: number }

async function memory(env: BenchEnv, port: number): Promise<MemoryPoint> {
  let heapUsed = 0;
  let heapTotal = 0;
  let external = 0;
  try {
    const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    heapUsed = metricSum(samples, 'nodejs_heap_size_used_bytes');
    heapTotal = metricSum(samples, 'nodejs_heap_size_total_bytes');
    external = metricSum(samples, 'nodejs_external_memory_bytes');
  } catch { /* metrics unavailable: RSS only */ }
  const r = (b: number) => Math.round((b / MiB) * 10) / 10;
  return { rssMiB: r(env.operator.rssBytes()), heapUsedMiB: r(heapUsed), heapTotalMiB: r(heapTotal), externalMiB: r(external) };
}

interface RssRound { finished: number; entry: string; idle: MemoryPoint; active: MemoryPoint; peakMiB: number; after: MemoryPoint }

async function rssRound(n: number, entry: string | undefined, label: string, log: (s: string) => void, nodeOptions?: string, asChart = false): Promise<RssRound> {
  const port = await freePort();
  const chart = asChart ? chartLaunch() : {};
  const inFlight = Math.min(n, asChart ? chartLimits().maxConcurrentModelCalls : n);
  const env = await startBenchEnv({ label, modelLatencyMs: 0, operator: { metricsPort: port, ...(entry ? { entry } : {}), ...(nodeOptions ? { env: { NODE_OPTIONS: nodeOptions } } : {}), ...chart }, log });
  try {
    await sleep(3_000);
    const idle = await memory(env, port);
    const key = '[rss]';
    scriptAgent(env.model, key, 1, 1);
    const release = env.model.hold(key);
    const specs = Array.from({ length: n }, (_, i) => ({ name: `rss-${i}`, spec: agentSpec(key, env.model.url, [workTool(env.execLog)]) }));
    env.operator.peakRssBytes = 0;
    await createRuns(env.kube, env.namespace, specs, 16);
    await env.model.waitForRequest(key, inFlight, { timeoutMs: 600_000 });
    // Every run has started its model step; the calls beyond the cap wait for a slot.
    await sleep(5_000);
    const active = await memory(env, port);
    const peakBeforeRelease = env.operator.peakRssBytes;
    log(`${label}: ${n} runs active with a model call in flight: ${JSON.stringify(active)}`);
    release();
    const ok = await waitFinished(env.recorder, new Set(specs.map((s) => s.name)), 420_000, (d) => { log(`${d}/${n} finished`); });
    if (!ok) log(`${label}: only ${env.recorder.finishedCount()} of ${n} runs finished in 7 min`);
    const peakMiB = Math.round((Math.max(env.operator.peakRssBytes, peakBeforeRelease) / MiB) * 10) / 10;
    await sleep(5_000);
    const after = await memory(env, port);
    log(`${label}: after ${JSON.stringify(after)}; peak ${peakMiB} MiB`);
    const launch = asChart ? ` as the chart runs it (${[chart.env?.NODE_OPTIONS ? `NODE_OPTIONS=${chart.env.NODE_OPTIONS}` : 'default heap', ...(chart.extraArgs ?? [])].join(' ')})` : nodeOptions ? ` with NODE_OPTIONS=${nodeOptions}` : ', default heap limit';
    return { finished: env.recorder.finishedCount(), entry: `${entry ? "the image's bundle (node dist/main.js)" : 'node src/main.ts (type stripping)'}${launch}`, idle, active, peakMiB, after };
  } finally {
    await env.close();
  }
}

export const rss: Scenario = async ({ quick, flags, log }) => {
  const n = Number(flags.get('rss-runs') ?? (quick ? 20 : 1000));
  // Default: the image's form (the bundle) with V8's default heap limit (sized from this
  // machine's 24 GiB: garbage is collected late), and with a heap cap like a container limit gives.
  const which = (flags.get('rss-entry') ?? 'chart').split(',');
  const cap = flags.get('rss-heap-cap') ?? '--max-old-space-size=160';
  const rounds: RssRound[] = [];
  const dist = which.some((w) => w.startsWith('dist') || w === 'chart') ? await buildCompiledOperator() : undefined;
  const limits = chartLimits();
  const limitMiB = limits.memoryLimitBytes / MiB;
  const headroomMiB = Math.round(limitMiB * 0.8);
  if (which.includes('chart')) rounds.push(await rssRound(n, dist, 'rsschart', log, undefined, true));
  if (which.includes('dist')) rounds.push(await rssRound(n, dist, 'rssdist', log));
  if (which.includes('dist-capped')) rounds.push(await rssRound(n, dist, 'rsscap', log, cap));
  if (which.includes('src')) rounds.push(await rssRound(n, undefined, 'rsssrc', log));
  const f = (m: MemoryPoint) => `${m.rssMiB} / ${m.heapUsedMiB} / ${m.heapTotalMiB} / ${m.externalMiB}`;
  const main = rounds[0];
  if (!main) throw new Error('no round ran');
  return {
    scenario: 'rss',
    title: `Operator memory with ${n} runs`,
    params: { runs: n, runShape: '2 model + 1 tool step', sampledEveryMs: 500, chartMemoryLimit: limits.memoryLimit, chartHeapLimitMiB: limits.heapLimitMiB, chartMaxConcurrentModelCalls: limits.maxConcurrentModelCalls },
    table: rounds.flatMap((r) => [
      [`${r.entry} — idle, caches synced, no runs: RSS / heap used / heap total / external, MiB`, f(r.idle)],
      [`${r.entry} — ${n} runs active, each with a model call in flight`, f(r.active)],
      [`${r.entry} — peak RSS while they ran, MiB`, String(r.peakMiB)],
      [`${r.entry} — ${r.finished === n ? `all ${n} finished` : `only ${r.finished} of ${n} finished within 7 min`} (still cached), 5 s later`, f(r.after)],
    ] as [string, string][]),
    targets: rounds.filter((r) => r.entry.includes('as the chart runs it')).map((r) => ({
      target: `peak RSS at ${n} runs ≤ 80 % of the chart's memory limit (${limits.memoryLimit}): ≤ ${headroomMiB} MiB`,
      measured: `peak ${r.peakMiB} MiB = ${Math.round((r.peakMiB / limitMiB) * 100)} % of ${limits.memoryLimit} (${r.active.rssMiB} MiB with ${n} active, ${r.after.rssMiB} MiB after, idle ${r.idle.rssMiB} MiB)`,
      met: r.finished === n && r.peakMiB <= headroomMiB,
    })),
    notes: [
      'The bundle leaves out the parts of @kubernetes/client-node the operator never calls (its generated API is ~20 MiB of source text when the whole package is loaded). With 1,000 model calls in flight a heap snapshot (node bench/profile-heap.ts --runs 1000 --active) shows ~100 MiB live before collection, ~66 MiB after (the capped round); RSS beyond that is V8 headroom, code and the open sockets: with no heap cap V8 sizes the heap from the machine (24 GiB here) and collects late.',
      'RSS from /proc/<pid>/status (sampled every 500 ms for the peak); heap figures from the operator\'s own /metrics (prom-client nodejs_* gauges). "Active" = every run has started its first model step; the mock holds the calls on the wire (as many as --max-concurrent-model-calls allows, the rest wait for a slot).',
      `The chart round runs the operator as charts/agentrun-operator does: heap cap ${limits.heapLimitMiB} MiB (NODE_OPTIONS), --max-concurrent-model-calls=${limits.maxConcurrentModelCalls}, --max-model-response-bytes=${limits.maxModelResponseBytes}; the target is 80 % of its memory limit (${limits.memoryLimit}), i.e. 20 % headroom. Other rounds: --rss-entry chart,dist,dist-capped,src.`],
    data: { rounds },
  };
};
