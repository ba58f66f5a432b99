/**
 * Container processes: the command line, spawning in a process group, signalling the group.
 */
import * as k8s from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { expandVariables } from './pod-environment.ts';
import type { RunningProcess } from './types.ts';
import { sleep, toError } from './util.ts';

interface Invocation {
  readonly file: string;
  readonly args: string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
}

/** How a container process ended: its exit code, or the signal that killed it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/** A spawned container process: its pid and the promise of its exit. */
export interface StartedProcess {
  /** Undefined when the process could not be started; `exited` then carries the error. */
  readonly pid: number | undefined;
  readonly exited: Promise<ProcessExit>;
}

/** command + args after `$(VAR)` expansion and path rewriting; cwd as documented in index.ts. */
export function buildInvocation(container: k8s.V1Container, env: Record<string, string>, rewrite: (text: string) => string, sandbox: string): Invocation {
  const expand = (text: string) => rewrite(expandVariables(text, env));
  const [file = '', ...commandArgs] = (container.command ?? []).map(expand);
  const workingDir = container.workingDir ? rewrite(container.workingDir) : undefined;
  return {
    file,
    args: [...commandArgs, ...(container.args ?? []).map(expand)],
    cwd: workingDir !== undefined && existsSync(workingDir) ? workingDir : sandbox,
    env,
  };
}

/** Spawns in a new process group (detached), stdout and stderr both appended to `outputFd`. */
export function startProcess(invocation: Invocation, outputFd: number): StartedProcess {
  try {
    const child = spawn(invocation.file, invocation.args, {
      cwd: invocation.cwd, env: invocation.env, detached: true, stdio: ['ignore', outputFd, outputFd],
    });
    // Listeners go on before anything awaits, so an instant exit is never missed.
    const exited = new Promise<ProcessExit>((resolve) => {
      child.on('exit', (code, signal) => { resolve({ code, signal }); });
      child.on('error', (error) => { if (child.pid === undefined) resolve({ code: null, signal: null, error }); });
    });
    return { pid: child.pid, exited };
  } catch (error) {
    return { pid: undefined, exited: Promise.resolve({ code: null, signal: null, error: toError(error) }) };
  }
}

/** SIGTERM to the group; SIGKILL if the main process is still there after `graceMs`. */
export async function terminateProcessGroup(running: RunningProcess, graceMs: number): Promise<void> {
  signalProcessGroup(running.pid, 'SIGTERM');
  const timer = new AbortController();
  const exitedInTime = await Promise.race([running.exited.then(() => true), sleep(graceMs, timer.signal).then(() => false)]);
  timer.abort();
  if (!exitedInTime) {
    signalProcessGroup(running.pid, 'SIGKILL');
    await running.exited;
  }
}

/** Sends `signal` to the process group led by `pid`; a group already gone is fine. */
export function signalProcessGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

/** A signal's number (0 for none), as container exit statuses report it. */
export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? osConstants.signals[signal] : 0;
}
