/**
 * Fairness: do ordinary runs keep their step overhead while one tenant is hostile?
 *
 * Two rounds, each on its own control plane, the operator launched as the Helm chart launches it
 * (heap cap and model-call bounds from charts/agentrun-operator/values.yaml):
 *   quiet  — N ordinary runs (2 tool turns each: 3 model + 2 tool steps), zero-latency mock;
 *   noisy  — the same N ordinary runs, started right after the hostile tenant's runs:
 *            one whose model endpoint answers 150 MB (streamed, no Content-Length), and one whose
 *            every turn asks for 32 tool calls at once, each printing 768 KiB of control
 *            characters (~4.6 MB as JSON: every journal entry is cut to fit 1,000,000 bytes).
 * Measured per ordinary step as in the overhead scenario: model step = [step in status → request
 * at the model] + [answer → status Succeeded]; tool step = [step in status → pod created] +
 * [pod terminated → status Succeeded]. Target: the noisy p95 within 2× the quiet p95.
 */
import { summarize, type Summary } from '../test/harness/measure.ts';
import { chartLaunch, chartLimits } from './lib/chart-limits.ts';
import { agentSpec, createRuns, measuredSteps, scriptAgent, startBenchEnv, waitFinished, workTool, type BenchEnv } from '../test/harness/fleet.ts';
import { ms, type Scenario } from './lib/scenario.ts';
import { text, toolUse } from '../test/harness/mock-model-server.ts';

const MiB = 2 ** 20;
const TURNS = 2;
const SPEW_PARALLEL = 32;
const SPEW_BYTES = 786_432;

interface Overheads { model: number[]; tool: number[]; finished: number; hostile: string[] }

/** Step overheads of the named runs, measured as the overhead scenario does. */
function stepOverheads(env: BenchEnv, names: readonly string[], keyOf: (name: string) => string): { model: number[]; tool: number[] } {
  const model: number[] = [];
  const tool: number[] = [];
  for (const name of names) {
    for (const step of measuredSteps(env, name, keyOf(name))) {
      if (step.kind === 'Model') model.push(step.nextAt - step.answeredAt);
      else tool.push(step.nextAt - step.pod.terminal);
    }
  }
  return { model, tool };
}

async function round(label: 'quiet' | 'noisy', ordinary: number, log: (s: string) => void): Promise<Overheads> {
  const env = await startBenchEnv({ label: `nn${label}`, modelLatencyMs: 0, operator: chartLaunch(), log });
  try {
    const hostile: string[] = [];
    if (label === 'noisy') {
      env.model.hostile('[nn-huge]', { kind: 'oversized', bytes: 150 * MiB });
      // Every turn: 32 parallel calls of a tool that prints 768 KiB of \x01 (6× that as JSON).
      env.model.script('[nn-spew]', Array.from({ length: 6 }, (_, t) => (t < 5
        ? { content: Array.from({ length: SPEW_PARALLEL }, (_, i) => toolUse('spew', { turn: t, call: i })) }
        : { content: [text('Spewed.')] })));
      const spew = { ...workTool(env.execLog, `head -c ${SPEW_BYTES} /dev/zero | tr '\\000' '\\001'`), name: 'spew' };
      await createRuns(env.kube, env.namespace, [
        { name: 'hostile-huge', spec: agentSpec('[nn-huge]', env.model.url, []) },
        { name: 'hostile-spew', spec: agentSpec('[nn-spew]', env.model.url, [spew], { limits: { maxTurns: 10, timeout: '1h', maxParallelTools: SPEW_PARALLEL, maxToolOutputBytes: SPEW_BYTES } }) },
      ], 2);
      hostile.push('hostile-huge', 'hostile-spew');
    }
    const names = Array.from({ length: ordinary }, (_, i) => `ord-${i}`);
    const keyOf = (name: string) => `[nn-${name}]`;
    for (const name of names) scriptAgent(env.model, keyOf(name), TURNS, 1);
    await createRuns(env.kube, env.namespace, names.map((name) => ({ name, spec: agentSpec(keyOf(name), env.model.url, [workTool(env.execLog)]) })), 16);
    const ok = await waitFinished(env.recorder, new Set(names), 600_000, (d) => { log(`${label}: ${d}/${ordinary} ordinary runs finished`); });
    if (!ok) log(`${label}: only ${env.recorder.finishedCount(new Set(names))} of ${ordinary} ordinary runs finished in 10 min`);
    await new Promise((r) => setTimeout(r, 500));
    const hostileOutcomes = hostile.map((h) => {
      const run = env.recorder.runs.get(h);
      return `${h}: ${run?.phase ?? 'not seen'}${run ? `, ${run.steps.size} steps recorded` : ''}`;
    });
    return { ...stepOverheads(env, names, keyOf), finished: env.recorder.finishedCount(new Set(names)), hostile: hostileOutcomes };
  } finally {
    await env.close();
  }
}

export const noisyNeighbour: Scenario = async ({ quick, flags, log }) => {
  const ordinary = Number(flags.get('noisy-runs') ?? (quick ? 5 : 50));
  const quiet = await round('quiet', ordinary, log);
  const noisy = await round('noisy', ordinary, log);
  const q = { model: summarize(quiet.model), tool: summarize(quiet.tool) };
  const n = { model: summarize(noisy.model), tool: summarize(noisy.tool) };
  const row = (label: string, s: Summary): [string, string] => [label, `p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)} (n=${s.n})`];
  const ratio = (a: Summary, b: Summary) => (b.p95 > 0 ? a.p95 / b.p95 : Number.NaN);
  const limits = chartLimits();
  return {
    scenario: 'noisy-neighbour',
    title: `Noisy neighbour: ${ordinary} ordinary runs with and without one hostile tenant`,
    params: { ordinaryRuns: ordinary, ordinaryShape: `${TURNS + 1} model + ${TURNS} tool steps`, hostile: `150 MB response; ${SPEW_PARALLEL} parallel tools × 5 turns printing ${SPEW_BYTES} bytes of control characters`, modelLatencyMs: 0, heapLimitMiB: limits.heapLimitMiB, maxConcurrentModelCalls: limits.maxConcurrentModelCalls },
    table: [
      row('quiet: ordinary model step overhead', q.model),
      row('noisy: ordinary model step overhead', n.model),
      row('quiet: ordinary tool step overhead', q.tool),
      row('noisy: ordinary tool step overhead', n.tool),
      ['ordinary runs finished (quiet / noisy)', `${quiet.finished} / ${noisy.finished} of ${ordinary}`],
      ['hostile runs when the ordinary ones were done', noisy.hostile.join('; ')],
    ],
    targets: [
      { target: 'ordinary model-step overhead p95 with the hostile tenant ≤ 2× without', measured: `${ms(n.model.p95)} vs ${ms(q.model.p95)} (${ratio(n.model, q.model).toFixed(2)}×)`, met: noisy.finished === ordinary && ratio(n.model, q.model) <= 2 },
      { target: 'ordinary tool-step overhead p95 with the hostile tenant ≤ 2× without', measured: `${ms(n.tool.p95)} vs ${ms(q.tool.p95)} (${ratio(n.tool, q.tool).toFixed(2)}×)`, met: noisy.finished === ordinary && ratio(n.tool, q.tool) <= 2 },
    ],
    notes: [
      'Both rounds start all ordinary runs at once (16 creates in flight), so the quiet figure already includes the queueing of 50 concurrent runs.',
      'The tool pods run on the node emulator as local processes on the same 2 cores as the apiserver, etcd and the operator: in the noisy round the hostile tool processes (32 × tr over 768 KiB) compete for CPU too, which a real cluster would put on other nodes.',
      'The hostile tenant is bounded by the caps: the 150 MB response is cut at --max-model-response-bytes and fails its run (ModelResponseTooLarge) at once; every 4.6 MB tool result is cut so its journal entry fits 1,000,000 bytes after JSON encoding.',
    ],
    data: { quiet, noisy },
  };
};
