/**
 * Per-step overhead side by side: the same 10-turn agent (9 tool turns, 1 tool each, then the
 * answer; zero-latency mock; the tool does nothing) run R times by
 *   agentrun-operator (each tool call a pod on the emulated kubelet, every step journaled in etcd),
 *   a plain while loop (nothing durable: the floor),
 *   LangGraph JS + SQLite checkpointer (durability "sync"),
 *   Restate (restate-server 1.7 + SDK 1.17, one ctx.run per model call and per tool turn).
 * Measured at the mock: the gap between a model answer and the next model request (everything a
 * system does between two model calls: record the answer, run the tool, record its result, send),
 * and the time per turn (first request → last answer, / turns).
 */
import { freePort } from '../test/harness/control-plane.ts';
import { sleep, summarize } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, startBenchEnv, waitFinished, workTool, type BenchEnv } from '../test/harness/fleet.ts';
import { ensureBetterSqlite3 } from './lib/native.ts';
import { registerDeployment, startAgent, startRestate } from './lib/peers.ts';
import type { Scenario } from './lib/scenario.ts';

const TURNS = 10;

function gapsOf(env: BenchEnv, key: string): { gaps: number[]; perTurn: number } {
  const rs = env.model.requests(key).filter((r) => r.status === 200);
  const gaps = rs.slice(1).map((r, i) => r.receivedAt - (env.answered.get(rs[i]?.requestId ?? '') ?? r.receivedAt));
  const last = rs.at(-1);
  const perTurn = last && rs[0] ? ((env.answered.get(last.requestId) ?? last.receivedAt) - rs[0].receivedAt) / rs.length : Number.NaN;
  return { gaps, perTurn };
}

export const peersOverhead: Scenario = async ({ quick, flags, log }) => {
  const reps = Number(flags.get('peer-runs') ?? (quick ? 1 : 5));
  const env = await startBenchEnv({ label: 'peers', modelLatencyMs: 0, log });
  const out: Record<string, { gaps: number[]; perTurn: number[]; error?: string }> = {};
  const record = (system: string, key: string) => {
    const r = gapsOf(env, key);
    const o = out[system] ?? { gaps: [], perTurn: [] };
    o.gaps.push(...r.gaps);
    o.perTurn.push(r.perTurn);
    out[system] = o;
  };
  try {
    // agentrun-operator
    for (let i = 0; i < reps; i++) {
      const key = `[po-agentrun-${i}]`;
      scriptAgent(env.model, key, TURNS - 1, 1);
      await createRuns(env.kube, env.namespace, [{ name: `po-agentrun-${i}`, spec: agentSpec(key, env.model.url, [workTool(env.execLog)]) }], 1);
      if (!await waitFinished(env.recorder, new Set([`po-agentrun-${i}`]), 120_000)) throw new Error('agentrun run did not finish');
      record('agentrun-operator', key);
    }
    await env.operator.stop();
    // while loop and LangGraph
    for (const [system, script] of [['while loop (no durability)', 'while-loop-agent'], ['LangGraph JS + SqliteSaver (sync)', 'langgraph-agent']] as const) {
      try {
        const sqlite = script === 'langgraph-agent' ? await ensureBetterSqlite3(log) : undefined;
        if (sqlite !== undefined) throw new Error(`@langchain/langgraph-checkpoint-sqlite cannot run: ${sqlite}`);
        for (let i = 0; i < reps; i++) {
          const key = `[po-${script}-${i}]`;
          scriptAgent(env.model, key, TURNS - 1, 1);
          const proc = startAgent(script, { AGENT_BASE_URL: env.model.url, AGENT_PROMPT: `${key} do the work`, AGENT_TOOL_MS: '0', AGENT_DB: `${env.execLog}.${script}-${i}.sqlite` });
          const result = await Promise.race([proc.result, sleep(120_000).then(() => undefined)]);
          if (result === undefined) { await proc.kill(); throw new Error(`${script} failed: ${proc.stderr().slice(-1500)}`); }
          record(system, key);
        }
      } catch (error) {
        out[system] = { gaps: [], perTurn: [], error: error instanceof Error ? error.message : String(error) };
      }
    }
    // Restate
    const restateName = 'Restate (ctx.run per model call and per tool turn)';
    try {
      const restate = await startRestate();
      const port = await freePort();
      const service = startAgent('restate-agent', { AGENT_PORT: String(port) });
      try {
        await registerDeployment(restate.admin, `http://127.0.0.1:${port}`);
        for (let i = 0; i < reps; i++) {
          const key = `[po-restate-${i}]`;
          scriptAgent(env.model, key, TURNS - 1, 1);
          const res = await fetch(`${restate.ingress}/agent/run`, {
            method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ baseURL: env.model.url, prompt: `${key} do the work`, toolMs: 0, maxTurns: 50 }),
            signal: AbortSignal.timeout(120_000),
          });
          if (!res.ok) throw new Error(`restate invocation failed: ${res.status} ${await res.text()}`);
          record(restateName, key);
        }
      } finally {
        await service.kill();
        await restate.stop();
      }
    } catch (error) {
      out[restateName] = { gaps: [], perTurn: [], error: error instanceof Error ? error.message : String(error) };
      log(`restate FAILED: ${out[restateName].error ?? ''}`);
    }
    const rows: [string, string][] = Object.entries(out).map(([system, o]) => {
      if (o.error) return [system, `could not run: ${o.error.split('\n')[0] ?? ''}`];
      const g = summarize(o.gaps);
      const t = summarize(o.perTurn);
      return [system, `answer → next request p50 ${g.p50} ms, p95 ${g.p95} ms (n=${g.n}); per turn ${t.p50} ms (p50 of ${t.n} runs)`];
    });
    return {
      scenario: 'peers',
      title: `Per-step overhead side by side (${TURNS}-turn agent, zero-latency mock, ${reps} runs each)`,
      params: { turns: TURNS, runsPerSystem: reps, modelLatencyMs: 0, toolMs: 0, versions: { langgraph: '1.7.3', checkpointSqlite: '1.0.4', restateServer: '1.7.12', restateSdk: '1.17.2' } },
      table: rows,
      targets: [],
      notes: [
        'Between two model calls agentrun-operator journals the answer (ConfigMap + status in etcd, fsync), creates a pod, waits for the emulated kubelet to run it, reads its log, journals the result; the peers run the tool as a function call in their own process. Compare the durability each buys, not only the milliseconds.',
        'LangGraph\'s SqliteSaver writes to a local SQLite file; Restate journals to its own log (RocksDB) in restate-server.',
      ],
      data: out,
    };
  } finally {
    await env.close();
  }
};
