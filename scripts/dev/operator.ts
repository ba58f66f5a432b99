/**
 * Dev mode's operator: `node src/main.ts` as a child process, its JSON log lines appended to a
 * file, restarted when it dies the way a Deployment would restart its container, so that
 * `kill -9 <pid>` shows a run resuming from its journal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../test/harness/control-plane.ts';

export interface OperatorSupervisorOptions {
  readonly kubeconfig: string;
  readonly namespace: string;
  /** Port of /metrics, /healthz and /readyz. */
  readonly metricsPort: number;
  /** The operator's stdout and stderr go here (appended). */
  readonly logFile: string;
  /** One line for the console. */
  readonly say: (line: string) => void;
  /** More flags and environment (e.g. --tracing=true and OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly extraArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

interface Exit { readonly code: number | null; readonly signal: NodeJS.Signals | null }

/** Restart delays after crashes in quick succession: 1 s doubling to 30 s, reset after a minute up. */
const RESTART_DELAY_MIN_MS = 1_000;
const RESTART_DELAY_MAX_MS = 30_000;
const STABLE_AFTER_MS = 60_000;
const STOP_GRACE_MS = 15_000;

export class OperatorSupervisor {
  private readonly options: OperatorSupervisorOptions;
  private readonly log: WriteStream;
  private child: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  private stopping = false;
  private restartDelayMs = RESTART_DELAY_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private readonly readyWaiters = new Set<() => void>();

  constructor(options: OperatorSupervisorOptions) {
    this.options = options;
    this.log = createWriteStream(options.logFile, { flags: 'a' });
  }

  /** The running operator's pid (undefined between a crash and its restart). */
  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Starts the operator and resolves once it logs `operator started` (caches synced, reconciling). */
  async start(): Promise<number> {
    const ready = this.nextReady();
    const exit = this.spawn();
    const early = exit.then((e) => {
      throw new Error(`the operator exited while starting (${describeExit(e)}); see ${this.options.logFile}`);
    });
    await Promise.race([ready, early]);
    return this.pid ?? 0;
  }

  /** Resolves the next time an operator process reports that it started. */
  nextReady(): Promise<void> {
    return new Promise((resolve) => { this.readyWaiters.add(resolve); });
  }

  private spawn(): Promise<Exit> {
    const { kubeconfig, namespace, metricsPort } = this.options;
    // Its own process group: Ctrl-C in the terminal reaches dev mode only, which stops the
    // operator first (SIGTERM, so it drains) and the control plane last.
    const child = spawn(process.execPath, [
      join(repoRoot, 'src', 'main.ts'), '--kubeconfig', kubeconfig, '--namespaces', namespace,
      '--metrics-port', String(metricsPort), '--log-level', 'info', ...(this.options.extraArgs ?? []),
    ], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...operatorEnv(), ...this.options.env } });
    this.child = child;
    this.startedAt = Date.now();
    this.log.write(`${JSON.stringify({ msg: 'dev: operator process started', pid: child.pid, time: new Date().toISOString() })}\n`);
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.log.write(chunk);
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.includes('"msg":"operator started"')) this.notifyReady();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.log.write(chunk); });
    const exited = new Promise<Exit>((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }); }); });
    this.exited = exited;
    void exited.then((exit) => { this.onExit(child, exit); });
    return exited;
  }

  private notifyReady(): void {
    const waiters = [...this.readyWaiters];
    this.readyWaiters.clear();
    for (const resolve of waiters) resolve();
  }

  private onExit(child: ChildProcess, exit: Exit): void {
    this.log.write(`${JSON.stringify({ msg: 'dev: operator process exited', pid: child.pid, ...exit, time: new Date().toISOString() })}\n`);
    if (this.stopping || this.child !== child) return;
    if (Date.now() - this.startedAt > STABLE_AFTER_MS) this.restartDelayMs = RESTART_DELAY_MIN_MS;
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, RESTART_DELAY_MAX_MS);
    this.options.say(`operator pid ${String(child.pid)} died (${describeExit(exit)}); restarting it in ${delay / 1000}s, as a Deployment would`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      const ready = this.nextReady();
      void this.spawn();
      const pid = this.pid;
      void ready.then(() => {
        if (!this.stopping && this.pid === pid) {
          this.options.say(`operator restarted: pid ${String(pid)}; it picks the runs up from their journal (kill -9 ${String(pid)} to try again)`);
        }
      });
    }, delay);
  }

  /** SIGTERM (the operator drains), SIGKILL after a grace period. No restart afterwards. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => { this.log.end(resolve); });
  }

  /** SIGKILL at once (second Ctrl-C). */
  kill(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.child?.kill('SIGKILL');
  }
}

/**
 * The operator reads the API key from the ModelEndpoint's Secret and passes baseURL explicitly, so it needs
 * no ANTHROPIC_* variable; keeping them out means no key sits in its environment.
 */
function operatorEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANTHROPIC_') && !k.startsWith('AGENTRUN_')));
}

export function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${String(exit.code)}`;
}
