/**
 * Where the operator's heap goes: runs N small runs (default 200) to completion, then writes a V8
 * heap snapshot of the operator (started with --heapsnapshot-signal=SIGUSR2) and prints the
 * largest constructors by retained-in-place (self) size and count. Not part of `npm run bench`:
 *
 *   node bench/profile-heap.ts [--runs 200]            # after N finished runs
 *   node bench/profile-heap.ts --runs 1000 --active    # with N runs each holding a model call in flight
 *
 * Writes bench/results/heap-profile-<time>.json with the top 40 constructors.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { intFlag, log as logger, parseFlags, repoRoot, sleep, writeResult } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, startBenchEnv, waitFinished, workTool } from '../test/harness/fleet.ts';

const log = logger('heap');

let topStrings: { prefix: string; count: number; selfMiB: number }[] = [];

interface Snapshot { snapshot: { meta: { node_fields: string[]; node_types: (string | string[])[] } }; nodes: number[]; strings: string[] }

function summarizeSnapshot(snap: Snapshot): { name: string; type: string; count: number; selfMiB: number }[] {
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeNames = snap.snapshot.meta.node_types[0] as string[];
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const agg = new Map<string, { name: string; type: string; count: number; self: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = typeNames[snap.nodes[i + iType] ?? 0] ?? '?';
    const rawName = snap.strings[snap.nodes[i + iName] ?? 0] ?? '?';
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '(strings)' : rawName.slice(0, 80);
    const key = `${type}:${name}`;
    const a = agg.get(key) ?? { name, type, count: 0, self: 0 };
    a.count++;
    a.self += snap.nodes[i + iSize] ?? 0;
    agg.set(key, a);
  }
  const strings = new Map<string, { count: number; self: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = typeNames[snap.nodes[i + iType] ?? 0] ?? '?';
    if (type !== 'string') continue;
    const prefix = (snap.strings[snap.nodes[i + iName] ?? 0] ?? '').slice(0, 60).replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<uid>').replace(/\d+/g, 'N');
    const s = strings.get(prefix) ?? { count: 0, self: 0 };
    s.count++;
    s.self += snap.nodes[i + iSize] ?? 0;
    strings.set(prefix, s);
  }
  topStrings = [...strings].sort((a, b) => b[1].self - a[1].self).slice(0, 15).map(([p, s]) => ({ prefix: p, count: s.count, selfMiB: Math.round((s.self / 2 ** 20) * 100) / 100 }));
  return [...agg.values()].sort((a, b) => b.self - a.self).slice(0, 40)
    .map((a) => ({ name: a.name, type: a.type, count: a.count, selfMiB: Math.round((a.self / 2 ** 20) * 100) / 100 }));
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const n = intFlag(flags, 'runs', 200);
  const active = flags.get('active') === 'true';
  const cwd = join(repoRoot, '.agentrun', 'bench');
  const env = await startBenchEnv({
    label: 'heap', modelLatencyMs: 0, log,
    operator: { env: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${cwd}` } },
  });
  try {
    const key = '[heap]';
    scriptAgent(env.model, key, 1, 1);
    const release = active ? env.model.hold(key) : undefined;
    const specs = Array.from({ length: n }, (_, i) => ({ name: `heap-${i}`, spec: agentSpec(key, env.model.url, [workTool(env.execLog)]) }));
    await createRuns(env.kube, env.namespace, specs, 16);
    if (active) {
      for (let i = 0; i < 600 && env.model.requests(key).length < n; i++) await sleep(500);
      log(`${env.model.requests(key).length}/${n} model calls in flight`);
    } else if (!await waitFinished(env.recorder, new Set(specs.map((s) => s.name)), 900_000, (d) => { log(`${d}/${n} finished`); })) {
      throw new Error('runs did not finish');
    }
    await sleep(5_000);
    const rssMiB = Math.round(env.operator.rssBytes() / 2 ** 20);
    const before = new Set(await readdir(cwd));
    process.kill(env.operator.pid ?? 0, 'SIGUSR2');
    let file = '';
    for (let i = 0; i < 600 && !file; i++) {
      await sleep(500);
      const fresh = (await readdir(cwd)).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
      // The file is complete once its size stops changing.
      if (fresh[0]) { await sleep(3_000); file = join(cwd, fresh[0]); }
    }
    if (!file) throw new Error('no heap snapshot was written');
    const top = summarizeSnapshot(JSON.parse(await readFile(file, 'utf8')) as Snapshot);
    await rm(file, { force: true });
    const totalSelf = top.reduce((s, t) => s + t.selfMiB, 0);
    release?.();
    log(`operator RSS ${rssMiB} MiB ${active ? `with ${n} model calls in flight` : `after ${n} finished runs`}; top constructors (self size):`);
    for (const t of top.slice(0, 25)) log(`  ${t.selfMiB.toFixed(2).padStart(8)} MiB  ${String(t.count).padStart(8)} × ${t.type} ${t.name}`);
    log('largest strings by 60-character prefix:');
    for (const t of topStrings) log(`  ${t.selfMiB.toFixed(2).padStart(8)} MiB  ${String(t.count).padStart(8)} × ${JSON.stringify(t.prefix)}`);
    await writeResult('heap-profile', { runs: n, active, rssMiB, top, topSelfMiB: totalSelf, topStrings });
  } finally {
    await env.close();
  }
}

main().then(() => { process.exit(0); }, (error: unknown) => { log(String(error instanceof Error ? error.stack : error)); process.exit(1); });
