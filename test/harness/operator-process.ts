/**
 * Runs the operator as a real child process (`node src/main.ts`), so tests, benchmarks and the
 * chaos suite can SIGKILL it at any moment and start it again, exactly as a crash and a restart
 * would happen in a cluster. Tests keep every log line; long runs keep only a bounded tail and
 * the times of chosen messages (`keepLogs: false`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './control-plane.ts';

/** How to launch the operator. */
export interface OperatorOptions {
  readonly kubeconfig: string;
  readonly namespaces: readonly string[];
  /** A name for messages (e.g. a replica `op-a`). */
  readonly name?: string;
  /** Default debug: tests read the reconcile log lines. */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Default 0: the operator picks a free port and logs it. */
  readonly metricsPort?: number;
  /** AGENTRUN_CRASH_POINT for this start only (see src/reconciler/crash-points.ts). */
  readonly crashPoint?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: Record<string, string>;
  /** The entry point; default src/main.ts (type stripping). bench/lib/build.ts makes a compiled one. */
  readonly entry?: string;
  /** Log messages whose times (epoch ms) are kept, over every start. */
  readonly track?: readonly string[];
  /** Keep every structured log line (default); false keeps a bounded tail, for runs of many minutes. */
  readonly keepLogs?: boolean;
}

/** A structured (JSON) line the operator logged, tagged with the start it came from. */
export interface LogLine { readonly msg?: string; readonly [field: string]: unknown }

/** How the process ended, and when this harness saw it. */
export interface Exit { code: number | null; signal: NodeJS.Signals | null; at: number }

const ALWAYS_TRACKED = ['operator started', 'became leader', 'leadership lost; exiting so the process restarts with a clean memory'];
const TAIL_KEPT = 200;

export class OperatorProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<Exit> | undefined;
  private readonly lines: LogLine[] = [];
  private readonly raw: string[] = [];
  private readonly tracked = new Map<string, number[]>();
  private readonly trackSet: ReadonlySet<string>;
  private rssTimer: NodeJS.Timeout | undefined;
  readonly options: OperatorOptions;
  /** How many times the process was started. */
  starts = 0;
  /** When the last start spawned the process, and when it logged `operator started` (epoch ms). */
  spawnedAt = 0;
  startedAt = 0;
  /** The largest resident set size sampled over every start (every 500 ms). */
  peakRssBytes = 0;

  constructor(options: OperatorOptions) {
    this.options = options;
    this.trackSet = new Set([...ALWAYS_TRACKED, ...(options.track ?? [])]);
  }

  /** The replica's name in messages. */
  get name(): string { return this.options.name ?? 'operator'; }

  /** The running operator's process id, if it runs. */
  get pid(): number | undefined { return this.child?.pid; }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the operator printed so far (stdout and stderr), raw; only the tail with keepLogs: false. */
  output(): string { return this.raw.join('\n'); }

  /**
   * Starts the operator and resolves once its informers are synced and it reconciles; `overrides`
   * replace the crash point and add to the environment, for this start only.
   */
  async start(overrides: Partial<Pick<OperatorOptions, 'crashPoint' | 'env'>> = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name} already running`);
    this.starts++;
    this.spawnedAt = Date.now();
    const crashPoint = 'crashPoint' in overrides ? overrides.crashPoint : this.options.crashPoint;
    const o = this.options;
    const child = spawn(process.execPath, [
      o.entry ?? join(repoRoot, 'src', 'main.ts'),
      '--kubeconfig', o.kubeconfig, '--namespaces', o.namespaces.join(','),
      '--log-level', o.logLevel ?? 'debug', '--drain-timeout', '5s',
      '--metrics-port', String(o.metricsPort ?? 0), ...(o.extraArgs ?? []),
    ], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...o.env, ...overrides.env,
        ...(crashPoint ? { AGENTRUN_CRASH_POINT: crashPoint } : {}) },
    });
    this.child = child;
    this.exit = new Promise((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal, at: Date.now() }); }); });
    let started: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => { started = resolve; });
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (this.onLine(line) === 'operator started') { this.startedAt = Date.now(); started(); }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.remember(chunk.trimEnd()); });
    const exitedEarly = this.exit.then(({ code, signal }) => {
      throw new Error(`${this.name} exited during start (code ${String(code)}, signal ${String(signal)}):\n${this.tail(30)}`);
    });
    this.rssTimer = setInterval(() => { this.peakRssBytes = Math.max(this.peakRssBytes, this.rssBytes()); }, 500);
    void this.exit.then(() => { clearInterval(this.rssTimer); });
    await Promise.race([ready, exitedEarly]);
  }

  /** Records one stdout line; returns its message when it is JSON. */
  private onLine(line: string): string | undefined {
    this.remember(line);
    if (!line.includes('"msg"')) return undefined;
    let parsed: LogLine;
    try { parsed = JSON.parse(line) as LogLine; } catch { return undefined; }
    if (this.options.keepLogs !== false) this.lines.push({ ...parsed, start: this.starts });
    const msg = parsed.msg ?? '';
    if (this.trackSet.has(msg)) {
      const t = typeof parsed.time === 'number' ? parsed.time : Date.parse(String(parsed.time));
      this.tracked.set(msg, [...(this.tracked.get(msg) ?? []), Number.isFinite(t) ? t : Date.now()]);
    }
    return msg;
  }

  private remember(line: string): void {
    this.raw.push(line);
    if (this.options.keepLogs === false && this.raw.length > TAIL_KEPT * 1.5) this.raw.splice(0, this.raw.length - TAIL_KEPT);
  }

  /** Times (epoch ms) at which a tracked `msg` was logged, over every start. */
  times(msg: string): number[] { return this.tracked.get(msg) ?? []; }

  /** Current resident set size of the process, from /proc (0 when not running). */
  rssBytes(): number {
    if (!this.running) return 0;
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(this.pid)}/status`, 'utf8'));
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  /** Resolves when the process exits (on its own, e.g. at a crash point, or killed). */
  async exited(): Promise<Exit> {
    if (!this.exit) throw new Error(`${this.name} never started`);
    return this.exit;
  }

  /** SIGKILL: no drain, no cleanup, like a node losing power. Resolves, once it is gone, with when it was sent. */
  async kill(): Promise<number> {
    const at = Date.now();
    if (!this.running) return at;
    this.child?.kill('SIGKILL');
    await this.exit;
    return at;
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

  /** Structured log lines of every start so far (each tagged with `start`); none with keepLogs: false. */
  logs(filter?: (line: LogLine) => boolean): LogLine[] {
    return filter ? this.lines.filter(filter) : [...this.lines];
  }

  /** The last lines of output, for failure messages. */
  tail(n = 40): string {
    return this.raw.slice(-n).join('\n');
  }
}
