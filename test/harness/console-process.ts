/** Starts `kubectl agentrun ui --no-open` (from the checkout or the built executable) and reads the URL it prints. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A running console: its process, the tokened URL it printed, and what it wrote to stderr so far. */
export interface ConsoleProcess { readonly child: ChildProcess; readonly url: string; readonly port: number; readonly stderr: () => string }

/** Spawns `command args` and resolves once it prints its URL; rejects if it exits first or prints none in 30 s. */
export async function startConsole(command: string, args: readonly string[], options: Pick<SpawnOptions, 'env' | 'cwd'>): Promise<ConsoleProcess> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`kubectl agentrun ui printed no URL in 30s; stderr: ${stderr}`)); }, 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /kubectl agentrun ui: (http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/.exec(stdout);
      if (m?.[1]) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`kubectl agentrun ui exited ${String(code)}: ${stderr}`)); });
  });
  return { child, url, port: Number(new URL(url).port), stderr: () => stderr };
}
