/**
 * `npm run bench`: runs the benchmark scenarios one after another, each on its OWN control plane
 * (etcd with fsync), writes bench/results/<scenario>-<time>.json (+ -latest.json) and regenerates
 * docs/benchmarks.md from the latest result of every scenario.
 *
 *   npm run bench                                  # every scenario, full size
 *   npm run bench -- --only overhead,throughput    # some of them
 *   npm run bench -- --quick                       # tiny sizes, to check the harness (numbers not reported)
 *   npm run bench -- --quiet-load 1.5 --quiet-wait 1800   # wait (bounded) for load average < 1.5 before each scenario
 *
 * Scenarios: overhead, api-requests, throughput, rss, resume, crash-tokens, peers, noisy-neighbour, mcp.
 * A scenario that fails is recorded with its error and the others still run.
 */
import { ForeignCpuSampler, intFlag, log as logger, machineInfo, parseFlags, srcFingerprint, waitForQuiet, writeResult } from '../test/harness/measure.ts';
import type { Scenario, ScenarioResult } from './lib/scenario.ts';
import { renderBenchmarks } from './report.ts';

const log = logger('bench');

const SCENARIOS: Record<string, () => Promise<Scenario>> = {
  overhead: async () => (await import('./overhead.ts')).overhead,
  'api-requests': async () => (await import('./api-requests.ts')).apiRequests,
  throughput: async () => (await import('./throughput.ts')).throughput,
  rss: async () => (await import('./rss.ts')).rss,
  resume: async () => (await import('./resume.ts')).resume,
  'crash-tokens': async () => (await import('./crash-tokens.ts')).crashTokens,
  peers: async () => (await import('./peers-overhead.ts')).peersOverhead,
  'noisy-neighbour': async () => (await import('./noisy-neighbour.ts')).noisyNeighbour,
  mcp: async () => (await import('./mcp-overhead.ts')).mcpOverhead,
  floor: async () => (await import('./floor.ts')).floor,
};

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const flags = parseFlags(argv);
  const quick = flags.get('quick') === 'true';
  const only = flags.get('only')?.split(',').map((s) => s.trim()).filter(Boolean) ?? Object.keys(SCENARIOS);
  const threshold = Number(flags.get('quiet-load') ?? '1.5');
  const maxWaitMs = intFlag(flags, 'quiet-wait', quick ? 0 : 1800) * 1000;
  let failures = 0;
  for (const name of only) {
    const load = SCENARIOS[name];
    if (!load) { log(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`); failures++; continue; }
    const quiet = await waitForQuiet({ threshold, maxWaitMs, log });
    const machine = machineInfo();
    log(`${name}: starting (load average ${machine.load1AtStart}${quiet.quiet ? '' : `, NOT quiet after waiting ${Math.round(quiet.waitedMs / 1000)} s`})`);
    const cpu = new ForeignCpuSampler().start();
    const srcBefore = await srcFingerprint();
    const started = Date.now();
    let result: ScenarioResult | { scenario: string; error: string };
    try {
      const scenario = await load();
      result = await scenario({ quick, flags, log: logger(name) });
    } catch (error) {
      failures++;
      result = { scenario: name, error: error instanceof Error ? error.stack ?? error.message : String(error) };
      log(`${name} FAILED: ${result.error}`);
    }
    const cpuUse = cpu.stop();
    const srcAfter = await srcFingerprint();
    const src = srcBefore === srcAfter ? srcBefore : `${srcBefore} → ${srcAfter} (src/ CHANGED during the scenario)`;
    const saveAs = result.scenario;
    const path = await writeResult(quick ? `${saveAs}-quick` : saveAs, {
      ...result, command: `npm run bench -- ${argv.join(' ')}`.trim(), machine, src, quiet, cpu: cpuUse, quick, durationMs: Date.now() - started,
    });
    log(`${name}: done in ${Math.round((Date.now() - started) / 1000)} s (other processes used ${(cpuUse.foreignShareOfMachine * 100).toFixed(1)} % of the CPU) → ${path}`);
  }
  if (!quick) await renderBenchmarks();
  return failures === 0 ? 0 : 1;
}

main().then((code) => { process.exit(code); }, (error: unknown) => {
  log(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exit(2);
});
