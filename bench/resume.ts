/**
 * Resume time after a restart with N active runs (default 500). Each run has a model call in
 * flight (held by the mock); the operator is SIGKILLed, the held calls are released (their client
 * is gone: 499), and a new operator process is started. Measured from the new process's spawn:
 * caches synced ("operator started"), each run's call re-issued (the mock sees it), each run
 * finished (one model step: the re-issued answer ends it).
 */
import { percentile, sleep } from '../test/harness/measure.ts';
import { agentSpec, createRuns, startBenchEnv, waitFinished } from '../test/harness/fleet.ts';
import { text } from '../test/harness/mock-model-server.ts';
import type { Scenario } from './lib/scenario.ts';

export const resume: Scenario = async ({ quick, flags, log }) => {
  const n = Number(flags.get('resume-runs') ?? (quick ? 20 : 500));
  const env = await startBenchEnv({ label: 'resume', modelLatencyMs: 0, log });
  try {
    const keys = Array.from({ length: n }, (_, i) => `[resume-${i}]`);
    const releases = keys.map((key) => {
      env.model.script(key, [{ content: [text('Resumed and done.')] }]);
      return env.model.hold(key);
    });
    const specs = keys.map((key, i) => ({ name: `resume-${i}`, spec: agentSpec(key, env.model.url, []) }));
    await createRuns(env.kube, env.namespace, specs, 16);
    const allArrived = async (count: number, timeoutMs: number) => {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (keys.every((k) => env.model.requests(k).length >= count)) return true;
        await sleep(50);
      }
      return false;
    };
    if (!await allArrived(1, 600_000)) throw new Error('not every run started its model call within 10 min');
    await sleep(1_000);
    const killedAt = await env.operator.kill();
    for (const release of releases) release();
    await sleep(500);
    const spawnAt = Date.now();
    await env.operator.start();
    const readyMs = env.operator.startedAt - spawnAt;
    const ok = await waitFinished(env.recorder, new Set(specs.map((s) => s.name)), 600_000);
    const reissued = keys.map((k) => (env.model.requests(k)[1]?.receivedAt ?? Number.NaN) - spawnAt);
    const finished = specs.map((s) => (env.recorder.runs.get(s.name)?.finishedAt ?? Number.NaN) - spawnAt);
    const extra = keys.reduce((sum, k) => sum + env.model.requests(k).length - 1, 0);
    const r = (v: number) => Math.round(v);
    const allReissuedMs = Math.max(...reissued);
    log(`ready ${readyMs} ms, all re-issued ${allReissuedMs} ms, all finished ${Math.max(...finished)} ms`);
    return {
      scenario: 'resume',
      title: `Resume after a restart with ${n} active runs (model calls in flight at the SIGKILL)`,
      params: { runs: n, killToRestartMs: spawnAt - killedAt, modelLatencyMs: 0 },
      table: [
        ['New process spawned → caches synced ("operator started"), ms', String(readyMs)],
        ['Spawn → call re-issued, ms: 50 % / 95 % / all runs', `${r(percentile(reissued, 50))} / ${r(percentile(reissued, 95))} / ${r(allReissuedMs)}`],
        ['Spawn → run finished, ms: 50 % / 95 % / all runs', `${r(percentile(finished, 50))} / ${r(percentile(finished, 95))} / ${r(Math.max(...finished))}`],
        ['Model calls paid in total / extra per run', `${keys.reduce((s, k) => s + env.model.requests(k).length, 0)} / ${(extra / n).toFixed(2)} (the call each run had in flight)`],
        ['Runs finished', `${env.recorder.finishedCount()} / ${n}${ok ? '' : ' (TIMED OUT)'}`],
      ],
      targets: [{ target: `${n} runs resumed within 10 s of a restart`, measured: `all re-issued their call ${(allReissuedMs / 1000).toFixed(1)} s after the new process was spawned (caches synced at ${(readyMs / 1000).toFixed(1)} s); all finished at ${(Math.max(...finished) / 1000).toFixed(1)} s`, met: allReissuedMs <= 10_000 }],
      notes: ['A run counts as resumed when its interrupted model call reaches the model again (the mock sees the re-issued request).'],
      data: { readyMs, reissued, finished, extraCalls: extra },
    };
  } finally {
    await env.close();
  }
};
