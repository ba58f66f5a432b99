/**
 * Runs the peer agents (bench/peers/*.ts) as child processes, and restate-server from the
 * @restatedev/restate-server package (its linux-x64 binary), all on 127.0.0.1; and the rounds of
 * one agent shape on every peer that the side-by-side scenarios (peers, mcp) share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/harness/control-plane.ts';
import type { BenchEnv } from '../../test/harness/fleet.ts';
import { repoRoot, sleep } from '../../test/harness/measure.ts';
import { ensureBetterSqlite3 } from './native.ts';

export interface AgentProcess {
  readonly child: ChildProcess;
  /** Resolves with the final answer, or undefined if the process exited without one. */
  readonly result: Promise<string | undefined>;
  readonly exited: Promise<void>;
  kill(): Promise<number>;
  stderr(): string;
}

export function startAgent(script: 'while-loop-agent' | 'langgraph-agent' | 'restate-agent', env: Record<string, string>): AgentProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'bench', 'peers', `${script}.ts`)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => { err = (err + c).slice(-4000); });
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve(); }); });
  const result = new Promise<string | undefined>((resolve) => {
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (const line of buffer.split('\n').slice(0, -1)) {
        try {
          const parsed = JSON.parse(line) as { event?: string; result?: string };
          if (parsed.event === 'done') resolve(parsed.result ?? '');
        } catch { /* not ours */ }
      }
      buffer = buffer.slice(buffer.lastIndexOf('\n') + 1);
    });
    void exited.then(() => { resolve(undefined); });
  });
  return {
    child, result, exited,
    kill: async () => { const at = Date.now(); child.kill('SIGKILL'); await exited; return at; },
    stderr: () => err,
  };
}

export const RESTATE_BINARY = join(repoRoot, 'node_modules', '@restatedev', 'restate-server-linux-x64', 'bin', 'restate-server');

export interface Restate { ingress: string; admin: string; stop(): Promise<void> }

/** Starts restate-server (one partition, telemetry off) in a fresh base dir on free ports. */
export async function startRestate(): Promise<Restate> {
  if (!existsSync(RESTATE_BINARY)) throw new Error(`restate-server binary not found at ${RESTATE_BINARY} (npm package @restatedev/restate-server-linux-x64)`);
  const dir = await mkdtemp(join(tmpdir(), 'agentrun-restate-'));
  const [ingressPort, adminPort, nodePort] = [await freePort(), await freePort(), await freePort()];
  const out = await open(join(dir, 'restate.log'), 'a');
  const child = spawn(RESTATE_BINARY, ['--no-logo', '--listen-mode', 'tcp', '--bind-ip', '127.0.0.1', '--bind-port', String(nodePort),
    '--base-dir', join(dir, 'data'), '--default-num-partitions', '1'], {
    stdio: ['ignore', out.fd, out.fd],
    env: {
      PATH: process.env.PATH ?? '', HOME: dir, DO_NOT_TRACK: '1', RESTATE_DISABLE_TELEMETRY: 'true',
      RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingressPort}`, RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${adminPort}`,
    },
  });
  await out.close();
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve(); }); });
  const admin = `http://127.0.0.1:${adminPort}`;
  const ingress = `http://127.0.0.1:${ingressPort}`;
  const end = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`restate-server exited (logs in ${dir}/restate.log)`);
    try { if ((await fetch(`${admin}/health`)).ok) break; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`restate-server not healthy within 60 s (logs in ${dir}/restate.log)`);
    await sleep(200);
  }
  return {
    ingress, admin,
    stop: async () => { child.kill('SIGTERM'); await Promise.race([exited, sleep(10_000)]); child.kill('SIGKILL'); await rm(dir, { recursive: true, force: true }); },
  };
}

/** Registers a service deployment with restate-server's admin API (retried while the service starts). */
export async function registerDeployment(admin: string, uri: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${admin}/deployments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uri }) }).catch((e: unknown) => ({ ok: false, status: 0, text: () => Promise.resolve(String(e)) }));
    if (res.ok) return;
    last = `${res.status} ${await res.text()}`;
    await sleep(200);
  }
  throw new Error(`could not register ${uri} with restate: ${last}`);
}

/** What one system did across its runs: answer → next request gaps, and time per turn of each run. */
export interface PeerSamples { gaps: number[]; perTurn: number[]; error?: string }

/** The gaps between a model answer and the next request of one conversation, and its time per turn. */
export function gapsOf(env: Pick<BenchEnv, 'model' | 'answered'>, key: string): { gaps: number[]; perTurn: number } {
  const rs = env.model.requests(key).filter((r) => r.status === 200);
  const gaps = rs.slice(1).map((r, i) => r.receivedAt - (env.answered.get(rs[i]?.requestId ?? '') ?? r.receivedAt));
  const last = rs.at(-1);
  const perTurn = last && rs[0] ? ((env.answered.get(last.requestId) ?? last.receivedAt) - rs[0].receivedAt) / rs.length : Number.NaN;
  return { gaps, perTurn };
}

export const PEER_NAMES = {
  whileLoop: 'while loop (no durability)',
  langgraph: 'LangGraph JS + SqliteSaver (sync)',
  restate: 'Restate (ctx.run per model call and per tool turn)',
} as const;

export interface PeerRounds {
  readonly env: Pick<BenchEnv, 'model' | 'answered' | 'execLog'>;
  readonly reps: number;
  /** Scripts the mock for one conversation under `key`. */
  readonly script: (key: string) => void;
  /** Key prefix, e.g. `po` (keys are `[<prefix>-<system>-<i>]`). */
  readonly prefix: string;
  /** The MCP server the peers call `echo` on; without it they run the local `work` tool. */
  readonly mcpUrl?: string;
  readonly log: (s: string) => void;
}

/**
 * Runs the same agent `reps` times, one at a time, on the while loop, LangGraph JS and Restate,
 * against the benchmark's mock; a system that cannot run is recorded with its error.
 */
export async function runPeerRounds(o: PeerRounds): Promise<Record<string, PeerSamples>> {
  const out: Record<string, PeerSamples> = {};
  const record = (system: string, key: string) => {
    const r = gapsOf(o.env, key);
    const s = out[system] ?? { gaps: [], perTurn: [] };
    s.gaps.push(...r.gaps);
    s.perTurn.push(r.perTurn);
    out[system] = s;
  };
  const mcp: Record<string, string> = o.mcpUrl ? { AGENT_MCP_URL: o.mcpUrl } : {};
  for (const [system, script] of [[PEER_NAMES.whileLoop, 'while-loop-agent'], [PEER_NAMES.langgraph, 'langgraph-agent']] as const) {
    try {
      const sqlite = script === 'langgraph-agent' ? await ensureBetterSqlite3(o.log) : undefined;
      if (sqlite !== undefined) throw new Error(`@langchain/langgraph-checkpoint-sqlite cannot run: ${sqlite}`);
      for (let i = 0; i < o.reps; i++) {
        const key = `[${o.prefix}-${script}-${i}]`;
        o.script(key);
        const proc = startAgent(script, { AGENT_BASE_URL: o.env.model.url, AGENT_PROMPT: `${key} do the work`, AGENT_TOOL_MS: '0',
          AGENT_DB: `${o.env.execLog}.${o.prefix}-${script}-${i}.sqlite`, ...mcp });
        const result = await Promise.race([proc.result, sleep(120_000).then(() => undefined)]);
        if (result === undefined) { await proc.kill(); throw new Error(`${script} failed: ${proc.stderr().slice(-1500)}`); }
        record(system, key);
      }
    } catch (error) {
      out[system] = { gaps: [], perTurn: [], error: error instanceof Error ? error.message : String(error) };
      o.log(`${system} FAILED: ${out[system].error ?? ''}`);
    }
  }
  try {
    const restate = await startRestate();
    const port = await freePort();
    const service = startAgent('restate-agent', { AGENT_PORT: String(port), ...mcp });
    try {
      await registerDeployment(restate.admin, `http://127.0.0.1:${port}`);
      for (let i = 0; i < o.reps; i++) {
        const key = `[${o.prefix}-restate-${i}]`;
        o.script(key);
        const res = await fetch(`${restate.ingress}/agent/run`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ baseURL: o.env.model.url, prompt: `${key} do the work`, toolMs: 0, maxTurns: 50, mcpUrl: o.mcpUrl }),
          signal: AbortSignal.timeout(120_000),
        });
        if (!res.ok) throw new Error(`restate invocation failed: ${res.status} ${await res.text()}`);
        record(PEER_NAMES.restate, key);
      }
    } finally {
      await service.kill();
      await restate.stop();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    out[PEER_NAMES.restate] = { gaps: [], perTurn: [], error: message };
    o.log(`restate FAILED: ${message}`);
  }
  return out;
}
