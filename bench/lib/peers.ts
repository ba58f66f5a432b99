/**
 * Runs the peer agents (bench/peers/*.ts) as child processes, and restate-server from the
 * @restatedev/restate-server package (its linux-x64 binary), all on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/harness/control-plane.ts';
import { repoRoot, sleep } from '../../test/harness/measure.ts';

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
