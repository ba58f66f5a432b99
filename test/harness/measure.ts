/**
 * Small shared helpers of the benchmarks and the chaos harness: a seeded PRNG, percentiles, the
 * machine description, waiting for a quiet machine, and a sampler of CPU used by processes that
 * are not ours (other people's tests on the same 2 cores), so every number says how noisy it was.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './control-plane.ts';

export { repoRoot };
export const resultsDir = join(repoRoot, 'bench', 'results');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A small seeded PRNG (the crash matrix uses the same one), so a schedule can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Nearest-rank percentile of `values` (p in 0..100); NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] ?? Number.NaN;
}

export interface Summary { n: number; p50: number; p95: number; p99: number; max: number; mean: number }

export function summarize(values: readonly number[]): Summary {
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    n: values.length,
    p50: round(percentile(values, 50)),
    p95: round(percentile(values, 95)),
    p99: round(percentile(values, 99)),
    max: round(values.length ? Math.max(...values) : Number.NaN),
    mean: round(values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN),
  };
}

export interface MachineInfo { nproc: number; cpuModel: string; memoryGiB: number; node: string; kernel: string; date: string; load1AtStart: number }

export function machineInfo(): MachineInfo {
  let kernel = '';
  try { kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim(); } catch { /* not fatal */ }
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel,
    date: new Date().toISOString(),
    load1AtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

/**
 * Waits (bounded) until the 1-minute load average is below `threshold`, so numbers are taken on a
 * quiet machine. Returns what it saw; `quiet: false` means the deadline passed first.
 */
export async function waitForQuiet(options: { threshold?: number; maxWaitMs?: number; log?: (s: string) => void } = {}): Promise<{ quiet: boolean; waitedMs: number; load1: number }> {
  const threshold = options.threshold ?? 1.5;
  const maxWaitMs = options.maxWaitMs ?? 0;
  const started = Date.now();
  let lastLog = 0;
  for (;;) {
    const load1 = loadavg()[0] ?? 0;
    if (load1 < threshold) return { quiet: true, waitedMs: Date.now() - started, load1 };
    if (Date.now() - started >= maxWaitMs) return { quiet: false, waitedMs: Date.now() - started, load1 };
    if (Date.now() - lastLog > 60_000) {
      options.log?.(`waiting for a quiet machine: load average ${load1.toFixed(2)} ≥ ${threshold} (waited ${Math.round((Date.now() - started) / 1000)} s of at most ${Math.round(maxWaitMs / 1000)} s)`);
      lastLog = Date.now();
    }
    await sleep(5_000);
  }
}

const CLOCK_TICKS = 100;

async function readProcStat(pid: string): Promise<{ ppid: number; cpuTicks: number } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/**
 * Samples, once a second, the CPU time used by processes outside this process's tree (other
 * people's test runs on the machine). `stop()` returns the share of the machine's CPU they used.
 */
export class ForeignCpuSampler {
  private timer: NodeJS.Timeout | undefined;
  private last = new Map<number, { cpuTicks: number; ours: boolean }>();
  private foreignTicks = 0;
  private ourTicks = 0;
  private startedAt = 0;
  private busy = false;

  start(): this {
    this.startedAt = Date.now();
    void this.sample();
    this.timer = setInterval(() => { void this.sample(); }, 1_000);
    return this;
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
      const stats = new Map<number, { ppid: number; cpuTicks: number }>();
      for (const pid of pids) {
        const s = await readProcStat(pid);
        if (s) stats.set(Number(pid), s);
      }
      const ours = new Set<number>([process.pid]);
      let grew = true;
      while (grew) {
        grew = false;
        for (const [pid, s] of stats) if (!ours.has(pid) && ours.has(s.ppid)) { ours.add(pid); grew = true; }
      }
      const next = new Map<number, { cpuTicks: number; ours: boolean }>();
      for (const [pid, s] of stats) {
        const prev = this.last.get(pid);
        const isOurs = ours.has(pid);
        if (prev) {
          const delta = Math.max(0, s.cpuTicks - prev.cpuTicks);
          if (isOurs || prev.ours) this.ourTicks += delta; else this.foreignTicks += delta;
        }
        next.set(pid, { cpuTicks: s.cpuTicks, ours: isOurs || (prev?.ours ?? false) });
      }
      this.last = next;
    } finally {
      this.busy = false;
    }
  }

  /** CPU seconds used by other processes and by ours, and the foreign share of the machine. */
  stop(): { seconds: number; foreignCpuSeconds: number; ourCpuSeconds: number; foreignShareOfMachine: number } {
    if (this.timer) clearInterval(this.timer);
    const seconds = (Date.now() - this.startedAt) / 1000;
    const foreign = this.foreignTicks / CLOCK_TICKS;
    return {
      seconds: Math.round(seconds),
      foreignCpuSeconds: Math.round(foreign * 10) / 10,
      ourCpuSeconds: Math.round((this.ourTicks / CLOCK_TICKS) * 10) / 10,
      foreignShareOfMachine: Math.round((foreign / Math.max(1, seconds * cpus().length)) * 1000) / 1000,
    };
  }
}

/** Writes `bench/results/<name>-<timestamp>.json` and `<name>-latest.json`; returns the path. */
export async function writeResult(name: string, result: unknown): Promise<string> {
  await mkdir(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const path = join(resultsDir, `${name}-${stamp}.json`);
  const text = `${JSON.stringify(result, null, 2)}\n`;
  await writeFile(path, text);
  await writeFile(join(resultsDir, `${name}-latest.json`), text);
  return path;
}

/** Reads the argument list as `--flag value` / `--flag=value` / `--switch`. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    if (eq > 0) { flags.set(arg.slice(2, eq), arg.slice(eq + 1)); continue; }
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) { flags.set(arg.slice(2), next); i++; } else flags.set(arg.slice(2), 'true');
  }
  return flags;
}

export function intFlag(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return value;
}

export const log = (scope: string) => (line: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 23)} [${scope}] ${line}\n`);
};

/** CPU seconds (user + system) a process has used so far, from /proc (0 if it is gone). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  if (!pid) return 0;
  const s = await readProcStat(String(pid));
  return s ? s.cpuTicks / CLOCK_TICKS : 0;
}

/** CPU seconds used by each named process between `start()` and `stop()`. */
export class CpuSplit {
  private readonly before = new Map<string, number>();
  private startedAt = 0;
  private readonly pids: Record<string, () => number>;

  constructor(pids: Record<string, () => number>) {
    this.pids = pids;
  }

  async start(): Promise<this> {
    this.startedAt = Date.now();
    for (const [name, pid] of Object.entries(this.pids)) this.before.set(name, name === 'benchmark process (emulator, mock, recorder)' ? process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 : await cpuSecondsOf(pid()));
    return this;
  }

  /** CPU seconds per process over the window, and as a share of one core. */
  async stop(): Promise<Record<string, { cpuSeconds: number; coresUsed: number }>> {
    const seconds = (Date.now() - this.startedAt) / 1000;
    const out: Record<string, { cpuSeconds: number; coresUsed: number }> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const now = name === 'benchmark process (emulator, mock, recorder)' ? process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 : await cpuSecondsOf(pid());
      const used = Math.max(0, now - (this.before.get(name) ?? now));
      out[name] = { cpuSeconds: Math.round(used * 10) / 10, coresUsed: Math.round((used / Math.max(0.001, seconds)) * 100) / 100 };
    }
    return out;
  }
}

/**
 * A short digest of src/ (every file's path and content): others edit the operator while
 * benchmarks run, so every result records which tree it measured (and whether it changed mid-way).
 */
export async function srcFingerprint(): Promise<string> {
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.ts')) hash.update(path.slice(repoRoot.length)).update(await readFile(path));
    }
  };
  await walk(join(repoRoot, 'src'));
  return hash.digest('hex').slice(0, 12);
}
