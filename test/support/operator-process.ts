/**
 * Runs the operator as a real child process (`node src/main.ts`), so tests can SIGKILL it at any
 * moment and start it again, exactly as a crash and a restart would happen in a cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './control-plane.ts';

export interface OperatorOptions {
  readonly kubeconfig: string;
  readonly namespaces: readonly string[];
  /** AGENTRUN_CRASH_POINT for this start only (see src/reconciler/crash-points.ts). */
  readonly crashPoint?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: Record<string, string>;
}

export interface LogLine { readonly msg?: string; readonly [field: string]: unknown }

export class OperatorProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private readonly lines: LogLine[] = [];
  private readonly raw: string[] = [];
  private readonly options: OperatorOptions;
  private starts = 0;

  constructor(options: OperatorOptions) { this.options = options; }

  /** The running operator's process id, if it runs. */
  get pid(): number | undefined { return this.child?.pid; }

  /** Everything the operator printed so far (stdout and stderr), raw. */
  output(): string { return this.raw.join('\n'); }

  /** Starts the operator and resolves once its informers are synced and it reconciles. */
  async start(overrides: Partial<Pick<OperatorOptions, 'crashPoint'>> = {}): Promise<void> {
    if (this.running) throw new Error('operator already running');
    this.starts++;
    const crashPoint = 'crashPoint' in overrides ? overrides.crashPoint : this.options.crashPoint;
    const child = spawn(process.execPath, [
      join(repoRoot, 'src', 'main.ts'),
      '--kubeconfig', this.options.kubeconfig, '--namespaces', this.options.namespaces.join(','),
      '--log-level', 'debug', '--drain-timeout', '5s', '--metrics-port', '0', ...(this.options.extraArgs ?? []),
    ], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...this.options.env, ...(crashPoint ? { AGENTRUN_CRASH_POINT: crashPoint } : {}) },
    });
    this.child = child;
    this.exit = new Promise((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }); }); });
    let started: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => { started = resolve; });
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.raw.push(line);
        try {
          const parsed = JSON.parse(line) as LogLine;
          this.lines.push({ ...parsed, start: this.starts });
          if (parsed.msg === 'operator started') started();
        } catch { /* not JSON */ }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.raw.push(chunk.trimEnd()); });
    const exitedEarly = this.exit.then(({ code, signal }) => {
      throw new Error(`operator exited during start (code ${String(code)}, signal ${String(signal)}):\n${this.raw.slice(-30).join('\n')}`);
    });
    await Promise.race([ready, exitedEarly]);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the process exits on its own (e.g. at a crash point). */
  async exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exit) throw new Error('operator never started');
    return this.exit;
  }

  /** SIGKILL: no drain, no cleanup, like a node losing power. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.exit;
  }

  /** SIGSTOP: the process freezes with everything in flight, like a long GC pause. */
  pause(): void {
    if (this.running) this.child?.kill('SIGSTOP');
  }

  /** SIGCONT after pause(). */
  resume(): void {
    if (this.running) this.child?.kill('SIGCONT');
  }

  /** SIGTERM: graceful drain; SIGKILL if the drain takes longer than `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => { this.child?.kill('SIGKILL'); }, graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  /** Structured log lines of every start so far (each tagged with `start`). */
  logs(filter?: (line: LogLine) => boolean): LogLine[] {
    return filter ? this.lines.filter(filter) : [...this.lines];
  }

  /** The last lines of output, for failure messages. */
  tail(n = 40): string {
    return this.raw.slice(-n).join('\n');
  }
}
