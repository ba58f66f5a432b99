/**
 * Tokens wasted by a crash: the same 10-turn agent (9 tool turns, 1 tool each, then the answer)
 * is SIGKILLed once at a random moment (uniform over its own undisturbed duration, seeded), then
 * started again, in K trials per system:
 *   (a) agentrun-operator: the operator process is killed and started again (tools are pods);
 *   (b) a plain while-loop agent (bench/peers/while-loop-agent.ts), restarted from scratch;
 *   (c) LangGraph JS with the durable SQLite checkpointer (bench/peers/langgraph-agent.ts),
 *       restarted on the same thread.
 * Same mock (model latency MODEL_MS), same tool time (TOOL_MS). A call counts as paid when the mock
 * answered it 200 or the client left mid-call (499). Extra = paid calls − 10; tokens = the usage the
 * mock reported (or would have) for those calls.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RecordedRequest } from '../test/harness/mock-model-server.ts';
import { mulberry32, repoRoot, sleep } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, startBenchEnv, waitFinished, workTool, type BenchEnv } from '../test/harness/fleet.ts';
import { ensureBetterSqlite3 } from './lib/native.ts';
import { startAgent } from './lib/peers.ts';
import type { Scenario, Target } from './lib/scenario.ts';

const TURNS = 10;
const MODEL_MS = 400;
const TOOL_MS = 200;

interface Trial { system: string; killed: boolean; killAtMs?: number; killDuringCall?: boolean; paidCalls: number; extraCalls: number; extraTokens: number; finished: boolean; durationMs: number }

const paid = (rs: readonly RecordedRequest[]) => rs.filter((r) => r.status !== undefined && r.status !== 529);
const tokensOf = (r: RecordedRequest) => {
  const u = (r.response as { usage?: Record<string, number | null> } | undefined)?.usage ?? {};
  return (u.input_tokens ?? 0) + (u.output_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
};

type System = 'agentrun' | 'while-loop' | 'langgraph';

/** Runs one trial; kills once at `killAfterMs` after the start unless it finished first (undefined: never). */
async function trial(env: BenchEnv, system: System, key: string, killAfterMs: number | undefined, dir: string): Promise<Trial> {
  const start = Date.now();
  scriptAgent(env.model, key, TURNS - 1, 1);
  let killedAt: number | undefined;
  let finished = false;
  if (system === 'agentrun') {
    const name = key.replace(/[^a-z0-9-]/g, '');
    await createRuns(env.kube, env.namespace, [{ name, spec: agentSpec(key, env.model.url, [workTool(env.execLog, `sleep ${TOOL_MS / 1000}; printf ok`)]) }], 1);
    const names = new Set([name]);
    if (killAfterMs !== undefined && !await waitFinished(env.recorder, names, killAfterMs)) {
      killedAt = await env.operator.kill();
      await env.operator.start();
    }
    finished = await waitFinished(env.recorder, names, 180_000);
  } else {
    const agentEnv: Record<string, string> = {
      AGENT_BASE_URL: env.model.url, AGENT_PROMPT: `${key} do the work`, AGENT_TOOL_MS: String(TOOL_MS),
      AGENT_DB: join(dir, `${key.replace(/[^a-z0-9-]/g, '')}.sqlite`), AGENT_THREAD: 'bench',
    };
    const script = system === 'while-loop' ? 'while-loop-agent' : 'langgraph-agent';
    let proc = startAgent(script, agentEnv);
    if (killAfterMs !== undefined) {
      const outcome = await Promise.race([proc.result.then(() => 'done' as const), sleep(killAfterMs).then(() => 'kill' as const)]);
      if (outcome === 'kill') {
        killedAt = await proc.kill();
        proc = startAgent(script, agentEnv);
      }
    }
    const result = await Promise.race([proc.result, sleep(180_000).then(() => undefined)]);
    finished = result !== undefined;
    if (!finished) { await proc.kill(); throw new Error(`${system} did not finish: ${proc.stderr()}`); }
  }
  const requests = paid(env.model.requests(key));
  const extra = requests.slice(TURNS);
  // Which call was in flight at the kill: received before it, answered (or abandoned) after it.
  const k = killedAt;
  const killDuringCall = k === undefined ? undefined
    : requests.some((r) => r.receivedAt <= k && (env.answered.get(r.requestId) ?? Number.POSITIVE_INFINITY) >= k);
  return {
    system, killed: killedAt !== undefined, killAtMs: killedAt === undefined ? undefined : killedAt - start, killDuringCall,
    paidCalls: requests.length, extraCalls: Math.max(0, requests.length - TURNS), extraTokens: extra.reduce((s, r) => s + tokensOf(r), 0) || 0,
    finished, durationMs: Date.now() - start,
  };
}

export const crashTokens: Scenario = async ({ quick, flags, log }) => {
  const kills = Number(flags.get('crash-kills') ?? (quick ? 1 : 10));
  const seed = Number(flags.get('seed') ?? 20261129);
  const random = mulberry32(seed);
  const env = await startBenchEnv({ label: 'crash', modelLatencyMs: MODEL_MS, log });
  const dir = join(repoRoot, '.agentrun', 'bench', `crash-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  try {
    const systems: System[] = (flags.get('systems')?.split(',') as System[] | undefined) ?? ['agentrun', 'while-loop', 'langgraph'];
    const results: Record<string, { baselineMs: number; baselineTokens: number; trials: Trial[]; error?: string }> = {};
    let n = 0;
    const sqlite = systems.includes('langgraph') ? await ensureBetterSqlite3(log) : undefined;
    for (const system of systems) {
      try {
        if (system === 'langgraph' && sqlite !== undefined) throw new Error(`@langchain/langgraph-checkpoint-sqlite cannot run: ${sqlite}`);
        const base = await trial(env, system, `[ct-${system}-base]`, undefined, dir);
        const baseTokens = paid(env.model.requests(`[ct-${system}-base]`)).reduce((s, r) => s + tokensOf(r), 0);
        log(`${system}: undisturbed ${base.durationMs} ms, ${base.paidCalls} calls, ${baseTokens} tokens`);
        const trials: Trial[] = [];
        for (let i = 0; i < 3 * kills && trials.filter((t) => t.killed).length < kills; i++) {
          const t = await trial(env, system, `[ct-${system}-${n++}]`, Math.floor(random() * base.durationMs), dir);
          log(`${system} trial ${i}: ${JSON.stringify(t)}`);
          trials.push(t);
        }
        results[system] = { baselineMs: base.durationMs, baselineTokens: baseTokens, trials };
      } catch (error) {
        results[system] = { baselineMs: 0, baselineTokens: 0, trials: [], error: error instanceof Error ? error.message : String(error) };
        log(`${system} FAILED: ${results[system].error ?? ''}`);
      }
    }
    const rows: [string, string][] = [];
    const targets: Target[] = [];
    for (const system of systems) {
      const r = results[system];
      if (!r) continue;
      if (r.error) { rows.push([system, `could not run: ${r.error}`]); continue; }
      const killed = r.trials.filter((t) => t.killed);
      const extra = killed.reduce((s, t) => s + t.extraCalls, 0);
      const tokens = killed.reduce((s, t) => s + t.extraTokens, 0);
      const duringCall = killed.filter((t) => t.killDuringCall).length;
      const maxExtra = Math.max(0, ...killed.map((t) => t.extraCalls));
      rows.push([`${system}: crashes / extra model calls (per crash, max) / extra tokens (per crash)`,
        `${killed.length} / ${extra} (${(extra / Math.max(1, killed.length)).toFixed(2)}, max ${maxExtra}) / ${tokens} (${Math.round(tokens / Math.max(1, killed.length))}) — ${duringCall} kills landed during a call; undisturbed run ${r.baselineMs} ms, ${r.baselineTokens} tokens`]);
      if (system === 'agentrun') targets.push({ target: '≤ 1 extra model call per crash', measured: `${(extra / Math.max(1, killed.length)).toFixed(2)} per crash on average, max ${maxExtra} (${killed.length} crashes, ${duringCall} during a call)`, met: maxExtra <= 1 });
    }
    return {
      scenario: 'crash-tokens',
      title: `Tokens wasted by a crash: a ${TURNS}-turn agent SIGKILLed once at a random moment, K trials per system`,
      params: { turns: TURNS, modelLatencyMs: MODEL_MS, toolMs: TOOL_MS, killsPerSystem: kills, seed, langgraph: '@langchain/langgraph 1.7.3 + @langchain/langgraph-checkpoint-sqlite 1.0.4, durability "sync"' },
      table: rows,
      targets,
      notes: [
        'The kill moment is uniform over the system\'s own undisturbed duration (process start included); a trial whose agent finished before its kill moment is not counted as a crash and another trial is run.',
        'Tokens are the mock\'s estimates (ceil(chars/4) of the JSON), with agentrun\'s prompt-cache reads counted as tokens too.',
      ],
      data: { results },
    };
  } finally {
    await env.close();
  }
};
