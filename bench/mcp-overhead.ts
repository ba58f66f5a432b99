/**
 * An agent whose tool is an MCP tool: the same 10-turn agent as `peers` (9 tool turns, then the
 * answer; zero-latency mock), its tool the real server-everything's `echo` (remote, Streamable HTTP
 * on 127.0.0.1, started here), run R times one at a time by agentrun-operator (an MCPServer, the
 * run's `tools[].mcpServerRef`), and by the while loop, LangGraph JS and Restate, which call the
 * same server through the MCP SDK client. Every client reaches the server through a timestamping
 * pass-through (lib/mcp-proxy.ts). For agentrun-operator a tool turn is cut at instants this
 * process observes:
 *
 *   A  the mock answered with the tool_use              (mock)
 *   J1 the model step's journal entry exists           (AgentRunJournal watch, on arrival)
 *   B  the tools/call reached the server side          (proxy)
 *   C  the server's answer was passed back in full      (proxy)
 *   J2 the tool step's journal entry exists            (AgentRunJournal watch, on arrival)
 *   D  the next request reached the mock               (mock)
 *
 * MCP tool step overhead = J2 − J1: the call (its intent is the answer's journal entry, J1), and
 * its result journaled — "journal + call + journal". Both ends carry the same watch delay, so it
 * cancels in the difference. The pieces: A→J1 (the model step's journal), J1→B (call sent), B→C
 * (the server, ~ms for echo), C→J2 (result journaled), J2→D (next call).
 */
import * as k8s from '@kubernetes/client-node';
import { agentSpec, createRuns, startBenchEnv, waitFinished, type BenchEnv } from '../test/harness/fleet.ts';
import { startEverythingServer } from '../test/harness/mcp-server.ts';
import { sleep, summarize, type Summary } from '../test/harness/measure.ts';
import { text, toolUse, type ScriptedTurn } from '../test/harness/mock-model-server.ts';
import { startMCPProxy, type MCPProxy } from './lib/mcp-proxy.ts';
import { gapsOf, PEER_NAMES, runPeerRounds, type PeerSamples } from './lib/peers.ts';
import { ms, type Scenario } from './lib/scenario.ts';

const TURNS = 10;
const SERVER = 'everything';
const OURS = 'agentrun-operator (MCPServer, echo)';

/** The script of one conversation: TURNS − 1 echo calls, each naming its key and turn, then the answer. */
function scriptEcho(env: Pick<BenchEnv, 'model'>, key: string): void {
  const script: ScriptedTurn[] = [];
  for (let t = 0; t < TURNS - 1; t++) script.push({ content: [toolUse('echo', { message: `${key} t${t}` })] });
  script.push({ content: [text('Finished.')] });
  env.model.script(key, script);
}

/**
 * When each AgentRunJournal of a namespace was first seen (by name), from a watch. A fresh CRD's
 * watch cache answers 429 until it is ready, and a watch may end: it is started again from the
 * last resourceVersion seen (bounded), so no entry is seen late by being listed again.
 */
async function watchJournals(kube: BenchEnv['kube'], namespace: string): Promise<{ seen: Map<string, number>; ended: () => string; stop(): void }> {
  const seen = new Map<string, number>();
  const path = `/apis/agentrun.dev/v1alpha1/namespaces/${namespace}/agentrunjournals`;
  let resourceVersion: string | undefined;
  let abort: AbortController | undefined;
  let stopped = false, restarts = 0, ended = '';
  const start = async (): Promise<void> => {
    abort = await new k8s.Watch(kube.kc).watch(path, resourceVersion ? { resourceVersion } : {}, (_type, obj: k8s.KubernetesObject) => {
      const name = obj.metadata?.name;
      resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
      if (name && !seen.has(name)) seen.set(name, Date.now());
    }, (error: unknown) => {
      if (stopped) return;
      if (++restarts > 50) { ended = `the journal watch ended 50 times, last: ${String(error)}`; return; }
      setTimeout(() => { start().catch((e: unknown) => { ended = String(e); }); }, 200);
    });
  };
  await start();
  await sleep(1000); // past the watch cache's first 429s, before any run exists
  return { seen, ended: () => ended, stop: () => { stopped = true; abort?.abort(); } };
}

async function createMCPServer(env: BenchEnv, url: string): Promise<void> {
  const api = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'mcpservers', namespace: env.namespace };
  await env.kube.custom.createNamespacedCustomObject({ ...api,
    body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'MCPServer', metadata: { name: SERVER }, spec: { url } } });
  const end = Date.now() + 60_000;
  for (;;) {
    const s = await env.kube.custom.getNamespacedCustomObject({ ...api, name: SERVER }) as { status?: { conditions?: { type: string; status: string; message?: string }[] } };
    const ready = s.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === 'True') return;
    if (Date.now() > end) throw new Error(`MCPServer ${SERVER} not Ready in 60 s: ${ready?.message ?? 'no condition'}\n${env.operator.tail()}`);
    await sleep(100);
  }
}

interface TurnCuts { answerJournal: number[]; callSent: number[]; server: number[]; resultJournal: number[]; nextCall: number[];
  toolStep: number[]; turn: number[]; turnOurs: number[];
  /** Every turn's instants (epoch ms), missing ones included: the raw data of the rows. */
  instants: Record<string, string | number | undefined>[] }

/** The cuts of every measured tool turn of run `name` (see the file comment). */
function cutTurns(env: BenchEnv, proxy: MCPProxy, journals: Map<string, number>, name: string, key: string, into: TurnCuts): void {
  const times = env.recorder.runs.get(name);
  const requests = env.model.requests(key).filter((r) => r.status === 200);
  if (!times) return;
  const steps = [...times.steps.entries()].sort((a, b) => a[0] - b[0]);
  const models = steps.filter(([, s]) => s.kind === 'Model');
  for (let t = 0; t < TURNS - 1; t++) {
    const [modelId, model] = models[t] ?? [];
    const toolId = steps.find(([, s]) => s.kind === 'Tool' && s.turn === model?.turn)?.[0];
    const req = requests.find((r) => r.turnIndex === t);
    const A = req ? env.answered.get(req.requestId) : undefined;
    const D = requests.find((r) => r.turnIndex === t + 1)?.receivedAt;
    const call = proxy.calls.find((c) => c.message === `${key} t${t}`);
    const J1 = journals.get(`${name}-j${String(modelId)}`);
    const J2 = journals.get(`${name}-j${String(toolId)}`);
    const [B, C] = [call?.receivedAt, call?.answeredAt];
    into.instants.push({ run: name, turn: t, modelStep: modelId, toolStep: toolId, A, J1, B, C, J2, D });
    if (A === undefined || D === undefined || B === undefined || C === undefined || J1 === undefined || J2 === undefined) continue;
    into.answerJournal.push(J1 - A);
    into.callSent.push(B - J1);
    into.server.push(C - B);
    into.resultJournal.push(J2 - C);
    into.nextCall.push(D - J2);
    into.toolStep.push(J2 - J1);
    into.turn.push(D - A);
    into.turnOurs.push(D - A - (C - B));
  }
}

const fmt = (s: Summary) => `p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)} (n=${s.n})`;

export const mcpOverhead: Scenario = async ({ quick, flags, log }) => {
  const reps = Number(flags.get('peer-runs') ?? (quick ? 1 : 5));
  const everything = await startEverythingServer();
  const proxy = await startMCPProxy(everything.url);
  const env = await startBenchEnv({ label: 'mcp', modelLatencyMs: 0, log }).catch(async (error: unknown) => {
    await proxy.close(); await everything.stop(); throw error;
  });
  const cuts: TurnCuts = { answerJournal: [], callSent: [], server: [], resultJournal: [], nextCall: [], toolStep: [], turn: [], turnOurs: [], instants: [] };
  const ours: PeerSamples = { gaps: [], perTurn: [] };
  let sessions = { initialize: Number.NaN, connections: Number.NaN };
  try {
    const journals = await watchJournals(env.kube, env.namespace);
    try {
      await createMCPServer(env, proxy.url);
      const before = proxy.counts();
      // Run -1 is not counted: it opens the operator's call session (the peers open theirs at start).
      for (let i = -1; i < reps; i++) {
        const name = i < 0 ? 'mcp-warmup' : `mcp-agentrun-${i}`, key = `[${name}]`;
        scriptEcho(env, key);
        const tools = [{ name: SERVER, mcpServerRef: { name: SERVER }, allow: ['echo'] }];
        await createRuns(env.kube, env.namespace, [{ name, spec: agentSpec(key, env.model.url, tools) }], 1);
        if (!await waitFinished(env.recorder, new Set([name]), 120_000)) throw new Error(`${name} did not finish in 120 s:\n${env.operator.tail()}`);
        const phase = env.recorder.runs.get(name)?.phase;
        if (phase !== 'Succeeded') throw new Error(`${name} ended ${phase ?? '?'}:\n${env.operator.tail()}`);
        await sleep(200);
        if (i < 0) continue;
        if (journals.ended()) throw new Error(journals.ended());
        cutTurns(env, proxy, journals.seen, name, key, cuts);
        const r = gapsOf(env, key);
        ours.gaps.push(...r.gaps);
        ours.perTurn.push(r.perTurn);
      }
      const after = proxy.counts();
      sessions = { initialize: after.initialize - before.initialize, connections: after.connections - before.connections };
    } finally {
      journals.stop();
    }
    await env.operator.stop();
    const peers = await runPeerRounds({ env, reps, prefix: 'mcp', mcpUrl: proxy.url, log, script: (key) => { scriptEcho(env, key); } });
    const systems: Record<string, PeerSamples> = { [OURS]: ours, ...peers };
    const perTurn = (s: string) => summarize(systems[s]?.perTurn ?? []).p50;
    const restate = systems[PEER_NAMES.restate]?.error ? Number.NaN : perTurn(PEER_NAMES.restate);
    const ratio = perTurn(OURS) / restate;
    const step = summarize(cuts.toolStep);
    const s = (v: number[]) => fmt(summarize(v));
    const systemRows: [string, string][] = Object.entries(systems).map(([system, o]) => {
      if (o.error) return [system, `could not run: ${o.error.split('\n')[0] ?? ''}`];
      const g = summarize(o.gaps), t = summarize(o.perTurn);
      const vs = Number.isFinite(restate) ? ` = ${(t.p50 / restate).toFixed(1)}× Restate` : '';
      return [`${system}: per turn (p50 of ${t.n} runs); answer → next request`, `${ms(t.p50)}${vs}; p50 ${ms(g.p50)}, p95 ${ms(g.p95)} (n=${g.n})`];
    });
    return {
      scenario: 'mcp',
      title: `MCP tool steps: per-turn overhead with an MCP tool (${TURNS}-turn agent, server-everything echo, zero-latency mock, ${reps} runs each)`,
      params: { turns: TURNS, runsPerSystem: reps, modelLatencyMs: 0, tool: 'server-everything echo (remote, Streamable HTTP, 127.0.0.1)',
        versions: { serverEverything: '2026.8.31', mcpSdk: '1.32.2', langgraph: '1.7.3', restateServer: '1.7.12', restateSdk: '1.17.2' } },
      table: [
        ['MCP tool step overhead J1 → J2 (answer journaled → call → result journaled)', fmt(step)],
        ['… answer journaled → call at the server (J1 → B: the answer\'s entry is the call\'s intent)', s(cuts.callSent)],
        ['… the call at the server (B → C: server-everything echo + the pass-through)', s(cuts.server)],
        ['… server answered → result journaled (C → J2)', s(cuts.resultJournal)],
        ['Model step: answer → its journal entry (A → J1)', s(cuts.answerJournal)],
        ['Result journaled → next request at the model (J2 → D)', s(cuts.nextCall)],
        ['Whole MCP tool turn: answer → next request (A → D)', s(cuts.turn)],
        ['… of which ours (A → D minus B → C)', s(cuts.turnOurs)],
        ['Sessions the operator opened for its calls (initialize) / TCP connections, over all its runs',
          `${sessions.initialize} / ${sessions.connections} for ${(reps + 1) * (TURNS - 1)} calls (the warm-up run included)`],
        ...systemRows,
      ],
      targets: [
        { target: 'MCP tool step overhead (journal + call + journal) p50 ≤ 15 ms', measured: ms(step.p50), met: step.p50 <= 15,
          note: 'J1 → J2: the echo call after its answer is journaled, then its result journaled' },
        { target: 'per-turn time with an MCP tool ≤ 3× Restate\'s', measured: Number.isFinite(ratio) ? `${ratio.toFixed(1)}× (${ms(perTurn(OURS))} vs ${ms(restate)})` : 'Restate did not run',
          met: Number.isFinite(ratio) ? ratio <= 3 : 'n/a' },
      ],
      notes: [
        'Cut points are arrival times in the benchmark process: the mock\'s request and answer times, the pass-through\'s times for each tools/call, AgentRunJournal objects as a watch delivers them (a few ms after the write; the same delay on both ends of J1 → J2).',
        'Between the model step\'s journal entry and the call, the operator writes status (the step Running: the call\'s intent) and waits for it, so that a crash mid-call is reported or retried, never silently repeated (core/execution-plan.ts, phase settle); after the call it journals the result before the next model call starts (status follows off the critical path).',
        'All systems call the same server-everything process through the same pass-through with the official SDK client, one session per process kept open and opened before the first measured turn (the peers at process start; the operator by one uncounted run before the measured ones). Restate runs the MCP call inside its ctx.run for the tool turn; LangGraph in its tools node with the SqliteSaver checkpoint (durability "sync"); the while loop records nothing.',
      ],
      data: { cuts, systems, calls: proxy.calls.length, operatorSessions: sessions },
    };
  } finally {
    await env.close();
    await proxy.close();
    await everything.stop();
  }
};
