/**
 * A thin launcher of the real operator (`node src/main.ts`) for benchmarks and chaos: like
 * test/support/operator-process.ts, but it keeps only what a long run needs (the times of chosen
 * log messages and a bounded tail), exposes the pid (RSS sampling) and chooses the log level.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './common.ts';

export interface OperatorLaunch {
  readonly kubeconfig: string;
  readonly namespaces: readonly string[];
  readonly name?: string;
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  readonly metricsPort?: number;
  readonly extraArgs?: readonly string[];
  readonly env?: Record<string, string>;
  /** The entry point; default src/main.ts (type stripping). bench/lib/build.ts makes a compiled one. */
  readonly entry?: string;
  /** Log messages whose times (ms) are kept, by message. */
  readonly track?: readonly string[];
}

export interface Exit { code: number | null; signal: NodeJS.Signals | null; at: number }

export class Operator {
  private child: ChildProcess | undefined;
  private exitPromise: Promise<Exit> | undefined;
  private readonly tailLines: string[] = [];
  private readonly tracked = new Map<string, number[]>();
  private readonly trackSet: Set<string>;
  starts = 0;
  spawnedAt = 0;
  startedAt = 0;
  peakRssBytes = 0;
  private rssTimer: NodeJS.Timeout | undefined;

  readonly options: OperatorLaunch;

  constructor(options: OperatorLaunch) {
    this.options = options;
    this.trackSet = new Set(['operator started', 'became leader', 'leadership lost; exiting so the process restarts with a clean memory', ...(options.track ?? [])]);
  }

  get name(): string { return this.options.name ?? 'operator'; }
  get pid(): number { return this.child?.pid ?? 0; }
  get running(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }

  /** Spawns the process; resolves when it logs `operator started` (caches synced). */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} already running`);
    this.starts++;
    this.spawnedAt = Date.now();
    const child = spawn(process.execPath, [
      this.options.entry ?? join(repoRoot, 'src', 'main.ts'),
      '--kubeconfig', this.options.kubeconfig, '--namespaces', this.options.namespaces.join(','),
      '--log-level', this.options.logLevel ?? 'info', '--drain-timeout', '5s',
      '--metrics-port', String(this.options.metricsPort ?? 0), ...(this.options.extraArgs ?? []),
    ], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...this.options.env },
    });
    this.child = child;
    this.exitPromise = new Promise((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal, at: Date.now() }); }); });
    let ready: () => void = () => undefined;
    const started = new Promise<void>((resolve) => { ready = resolve; });
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.remember(line);
        if (!line.includes('"msg"')) continue;
        let parsed: { msg?: string; time?: unknown };
        try { parsed = JSON.parse(line) as { msg?: string; time?: unknown }; } catch { continue; }
        const msg = parsed.msg ?? '';
        if (!this.trackSet.has(msg)) continue;
        const t = typeof parsed.time === 'number' ? parsed.time : Date.parse(String(parsed.time));
        const times = this.tracked.get(msg) ?? [];
        times.push(Number.isFinite(t) ? t : Date.now());
        this.tracked.set(msg, times);
        if (msg === 'operator started') { this.startedAt = Date.now(); ready(); }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.remember(chunk.trimEnd()); });
    const early = this.exitPromise.then((exit) => {
      throw new Error(`${this.name} exited during start (code ${String(exit.code)}, signal ${String(exit.signal)}):\n${this.tail()}`);
    });
    this.rssTimer = setInterval(() => { this.peakRssBytes = Math.max(this.peakRssBytes, this.rssBytes()); }, 500);
    void this.exitPromise.then(() => { clearInterval(this.rssTimer); });
    await Promise.race([started, early]);
  }

  private remember(line: string): void {
    this.tailLines.push(line);
    if (this.tailLines.length > 300) this.tailLines.splice(0, this.tailLines.length - 200);
  }

  /** Times (epoch ms) at which `msg` was logged, over every start. */
  times(msg: string): number[] { return this.tracked.get(msg) ?? []; }

  /** Current resident set size of the process, from /proc (0 when not running). */
  rssBytes(): number {
    if (!this.running) return 0;
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  async exited(): Promise<Exit> {
    if (!this.exitPromise) throw new Error('never started');
    return this.exitPromise;
  }

  /** SIGKILL, like a node losing power; resolves when the process is gone. */
  async kill(): Promise<number> {
    if (!this.running) return Date.now();
    const at = Date.now();
    this.child?.kill('SIGKILL');
    await this.exitPromise;
    return at;
  }

  /** SIGTERM (graceful drain), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => { this.child?.kill('SIGKILL'); }, graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  tail(n = 40): string { return this.tailLines.slice(-n).join('\n'); }
}
