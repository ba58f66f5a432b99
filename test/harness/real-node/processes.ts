/**
 * Host processes of a real node: slots, launching and stopping daemons by pid, waiting on them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binDir } from '../control-plane.ts';
import { alive, pollUntil } from '../daemons.ts';
import { MAX_SLOTS, RealNodeError } from './state.ts';

/** execFile as a promise. */
export const execFileAsync = promisify(execFile);

/** The path of a real-node binary (containerd, kubelet, ctr, …); a clear error when it is not built. */
export function nodeBinary(name: string): string {
  const path = join(binDir(), name);
  if (!existsSync(path)) {
    throw new RealNodeError(`${name} not found at ${path}: run \`npm run cluster:install\` (it builds the real node too)`);
  }
  return path;
}

/** Runs a command and returns its stdout; a failure is a RealNodeError quoting its stderr. */
export async function sh(cmd: string, args: readonly string[]): Promise<string> {
  try {
    return (await execFileAsync(cmd, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new RealNodeError(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`);
  }
}

/**
 * Claims a free slot by creating its link (creation fails when the link exists). The link only
 * holds the node IPs: a bridge with no ports (the `dummy` driver is not in every kernel; a bridge is).
 */
export async function claimSlot(): Promise<{ slot: number; link: string }> {
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const link = `agentrun${slot}`;
    try {
      await execFileAsync('ip', ['link', 'add', link, 'type', 'bridge']);
    } catch {
      continue;
    }
    await sh('ip', ['link', 'set', link, 'up']);
    return { slot, link };
  }
  throw new RealNodeError(`no free network slot: links agentrun0…agentrun${MAX_SLOTS - 1} all exist (stale clusters? \`ip link del agentrunN\`)`);
}

/** Lines of a daemon's log quoted when it fails. */
export const LOG_TAIL_LINES = 30;

/** SIGTERM, then SIGKILL after `graceMs` (at once for 0); waits until the process is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, graceMs === 0 ? 'SIGKILL' : 'SIGTERM');
  const end = Date.now() + graceMs;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    const killEnd = Date.now() + 5_000;
    while (alive(pid) && Date.now() < killEnd) await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `check` until true; a RealNodeError from it is final; the timeout error quotes `onTimeout()`. */
export async function waitFor(what: string, deadlineMs: number, check: () => Promise<boolean>, onTimeout: () => Promise<string>): Promise<void> {
  if (await pollUntil(deadlineMs, check, (error) => error instanceof RealNodeError)) return;
  throw new RealNodeError(`${what} did not happen within ${deadlineMs / 1000}s\n${await onTimeout()}`);
}
