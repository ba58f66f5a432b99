/**
 * The real `@modelcontextprotocol/server-everything` (a devDependency nobody here wrote), started
 * on 127.0.0.1 over Streamable HTTP for a test, and stopped or restarted by it. Fails loudly when
 * the server cannot start: a test never passes without it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

const ENTRY = join(import.meta.dirname, '../../node_modules/@modelcontextprotocol/server-everything/dist/index.js');

export interface EverythingServer {
  readonly port: number;
  /** http://127.0.0.1:PORT/mcp */
  readonly url: string;
  /** Kills the process (SIGKILL): calls in flight lose their connection. */
  kill(): Promise<void>;
  /** Starts it again on the same port (a new process: sessions are gone). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => { if (address && typeof address === 'object') resolve(address.port); else reject(new Error('no port')); });
    });
  });
}

async function waitForListening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server-everything exited (${child.exitCode}) on start:\n${output()}`);
    // Any HTTP answer on /mcp means it listens (a GET without a session is refused, which is fine).
    const ok = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'GET' }).then(() => true, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server-everything did not listen on 127.0.0.1:${port} within 30 s:\n${output()}`);
}

export async function startEverythingServer(): Promise<EverythingServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    log = '';
    child = spawn(process.execPath, [ENTRY, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (b: Buffer) => { log = (log + b.toString()).slice(-4000); });
    child.stderr?.on('data', (b: Buffer) => { log = (log + b.toString()).slice(-4000); });
    await waitForListening(port, child, () => log);
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => { c.once('exit', () => { resolve(); }); c.kill('SIGKILL'); });
  };
  await start();
  return {
    port, url: `http://127.0.0.1:${port}/mcp`,
    kill,
    restart: async () => { await kill(); await start(); },
    stop: kill,
  };
}
