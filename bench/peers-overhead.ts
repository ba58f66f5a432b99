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
import { summarize } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, startBenchEnv, waitFinished, workTool } from '../test/harness/fleet.ts';
import { gapsOf, runPeerRounds, type PeerSamples } from './lib/peers.ts';
import type { Scenario } from './lib/scenario.ts';

const TURNS = 10;

export const peersOverhead: Scenario = async ({ quick, flags, log }) => {
  const reps = Number(flags.get('peer-runs') ?? (quick ? 1 : 5));
  const env = await startBenchEnv({ label: 'peers', modelLatencyMs: 0, log });
  const ours: PeerSamples = { gaps: [], perTurn: [] };
  try {
    for (let i = 0; i < reps; i++) {
      const key = `[po-agentrun-${i}]`;
      scriptAgent(env.model, key, TURNS - 1, 1);
      await createRuns(env.kube, env.namespace, [{ name: `po-agentrun-${i}`, spec: agentSpec(key, env.model.url, [workTool(env.execLog)]) }], 1);
      if (!await waitFinished(env.recorder, new Set([`po-agentrun-${i}`]), 120_000)) throw new Error('agentrun run did not finish');
      const r = gapsOf(env, key);
      ours.gaps.push(...r.gaps);
      ours.perTurn.push(r.perTurn);
    }
    await env.operator.stop();
    const peers = await runPeerRounds({ env, reps, prefix: 'po', log, script: (key) => { scriptAgent(env.model, key, TURNS - 1, 1); } });
    const out: Record<string, PeerSamples> = { 'agentrun-operator': ours, ...peers };
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
