/**
 * Where the operator's CPU goes under load: N concurrent agent runs (default 100, 3 tool turns,
 * zero-latency model) with the operator started under `--cpu-prof`; on a graceful stop Node writes
 * the profile, summarised here by self time per function and per package. Not part of
 * `npm run bench`:
 *
 *   node bench/profile-cpu.ts [--runs 100]
 *
 * Writes bench/results/cpu-profile-<time>.json.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { intFlag, log as logger, parseFlags, repoRoot, sleep, writeResult } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, startBenchEnv, waitFinished, workTool } from '../test/harness/fleet.ts';

const log = logger('cpu');

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

function packageOf(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : rest[0] ?? url;
  }
  if (url.includes('/src/')) return `src/${url.split('/src/')[1]?.split('/')[0] ?? ''}`;
  if (url.startsWith('node:') || url === '') return url === '' ? '(native/V8)' : 'node internals';
  return url;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const n = intFlag(flags, 'runs', 100);
  const dir = join(repoRoot, '.agentrun', 'bench', `cpu-prof-${Date.now()}`);
  const env = await startBenchEnv({ label: 'cpuprof', modelLatencyMs: 0, log, operator: { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` } } });
  try {
    const specs = Array.from({ length: n }, (_, i) => {
      scriptAgent(env.model, `[cpu-${i}]`, 3, 1);
      return { name: `cpu-${i}`, spec: agentSpec(`[cpu-${i}]`, env.model.url, [workTool(env.execLog)]) };
    });
    const started = Date.now();
    await createRuns(env.kube, env.namespace, specs, 16);
    if (!await waitFinished(env.recorder, new Set(specs.map((s) => s.name)), 900_000, (d) => { log(`${d}/${n} finished`); })) throw new Error('runs did not finish');
    const seconds = (Date.now() - started) / 1000;
    await env.operator.stop(30_000);
    await sleep(1_000);
    const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile in ${dir}`);
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const self = new Map<number, number>();
    profile.samples.forEach((id, i) => { self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)); });
    const fn = new Map<string, number>();
    const pkg = new Map<string, number>();
    let total = 0;
    for (const [id, us] of self) {
      const node = byId.get(id);
      if (!node) continue;
      total += us;
      const name = node.callFrame.functionName || '(anonymous)';
      if (name === '(idle)') continue;
      const key = `${name} ${node.callFrame.url.replace(`file://${repoRoot}/`, '')}:${node.callFrame.lineNumber + 1}`;
      fn.set(key, (fn.get(key) ?? 0) + us);
      const p = ['(garbage collector)', '(program)'].includes(name) ? name : packageOf(node.callFrame.url);
      pkg.set(p, (pkg.get(p) ?? 0) + us);
    }
    const idle = [...self].reduce((s, [id, us]) => s + (byId.get(id)?.callFrame.functionName === '(idle)' ? us : 0), 0);
    const busy = total - idle;
    const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), shareOfBusy: Math.round((us / busy) * 1000) / 10 }));
    const result = { runs: n, wallSeconds: Math.round(seconds), profiledSeconds: Math.round(total / 1e6), busySeconds: Math.round(busy / 1e6), byPackage: top(pkg, 20), byFunction: top(fn, 30) };
    log(`busy ${result.busySeconds} s of ${result.profiledSeconds} s profiled (${n} runs in ${result.wallSeconds} s)`);
    for (const p of result.byPackage) log(`  ${String(p.shareOfBusy).padStart(5)} %  ${p.name}`);
    log('top functions by self time:');
    for (const f of result.byFunction.slice(0, 20)) log(`  ${String(f.shareOfBusy).padStart(5)} %  ${f.name}`);
    await writeResult('cpu-profile', result);
    await rm(dir, { recursive: true, force: true });
  } finally {
    await env.close();
  }
}

main().then(() => { process.exit(0); }, (error: unknown) => { log(String(error instanceof Error ? error.stack : error)); process.exit(1); });
