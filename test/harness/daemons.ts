/**
 * Host daemons of the local cluster (etcd, kube-apiserver, containerd, kubelet): starting one
 * with its output in a log file, checking a pid, reading a log's tail, polling until ready.
 * Shared by control-plane.ts and real-node/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';

/** A daemon started by {@link launchDaemon}. */
export interface Launched { readonly child: ChildProcess; readonly logPath: string }

/** Starts `exe` with stdout and stderr appended to `logPath`; detached ones outlive this process. */
export async function launchDaemon(
  exe: string, args: readonly string[], logPath: string, detached: boolean, env?: NodeJS.ProcessEnv,
): Promise<Launched> {
  const out = await open(logPath, 'a');
  const child = spawn(exe, args, { stdio: ['ignore', out.fd, out.fd], detached, env: env ?? process.env });
  await out.close();
  if (detached) child.unref();
  return { child, logPath };
}

/** The last `lines` lines of a log file, or `(no log)` when it cannot be read. */
export async function tailLog(path: string, lines: number): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Whether a process with this pid exists (0 is never a daemon of ours). */
export function alive(pid: number): boolean {
  if (!pid) return false;
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * Calls `check` every 200 ms until it returns true (then true) or `deadlineMs` pass (then false).
 * A check that throws means "not yet", unless `isFinal` says the error ends the wait: it is rethrown.
 */
export async function pollUntil(
  deadlineMs: number, check: () => Promise<boolean>, isFinal: (error: unknown) => boolean,
): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const ready = await check().catch((error: unknown) => {
      if (isFinal(error)) throw error;
      return false;
    });
    if (ready) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
