/**
 * The README's quick start, end to end: `npm run dev` (its script, `node scripts/dev.ts`, run as a
 * child process with its own state directory, so it starts its own control plane on its own free
 * ports next to the test cluster), then the commands it prints: wait for the demo run to ask for
 * approval, `kill -9` the operator and see it come back, `kubectl agentrun approve demo --yes`
 * through kubectl's plugin mechanism, see the run succeed, Ctrl-C (SIGINT), and check that every
 * process is gone and the cluster state deleted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binary, kubectl, repoRoot } from '../harness/control-plane.ts';
import { eventually } from '../harness/kube.ts';
import { onRealNode } from '../harness/test-node.ts';

let dev: ChildProcess | undefined;
let stateDir = '';
const output: string[] = [];
const waiters = new Set<() => void>();

afterAll(async () => {
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    const exited = new Promise((resolve) => dev?.once('exit', resolve));
    dev.kill('SIGINT');
    await exited;
  }
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}, 60_000);

/** Resolves with the match once a line of dev's output matches; fails with the output so far. */
async function printed(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<RegExpMatchArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const line of output.slice(from)) {
      const match = pattern.exec(line);
      if (match) return match;
    }
    if (!dev || dev.exitCode !== null || dev.signalCode !== null || Date.now() > end) {
      throw new Error(`npm run dev did not print ${String(pattern)} (exit ${String(dev?.exitCode)}); it printed:\n${output.join('\n')}`);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, end - Date.now()));
      waiters.add(() => { clearTimeout(timer); resolve(); });
    });
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Processes whose command line mentions `text` (what would be left running). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${entry}: ${cmdline.replaceAll('\0', ' ').slice(0, 200)}`);
  }
  return found;
}

describe('quick start: npm run dev', () => {
  it('starts the stack, runs the demo to its approval, survives kill -9 of the operator, approves with the plugin, and Ctrl-C stops everything', async () => {
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.dev).toBe('node scripts/dev.ts');
    stateDir = await mkdtemp(join(tmpdir(), 'agentrun-quickstart-'));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANTHROPIC_') && !k.startsWith('AGENTRUN_')));
    const child = spawn(process.execPath, [join(repoRoot, 'scripts', 'dev.ts'), '--state-dir', stateDir], {
      cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev = child;
    let partial = '';
    const onData = (chunk: string) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      output.push(...lines);
      for (const wake of [...waiters]) { waiters.delete(wake); wake(); }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => { resolve({ code, signal }); for (const wake of [...waiters]) { waiters.delete(wake); wake(); } });
    });

    // What the terminal shows before anything else: tools are local processes.
    // The banner says which node runs the tools: a real one here as root on Linux, else the emulator.
    await printed(onRealNode() ? /TOOL PODS RUN IN CONTAINERS on a real node/ : /TOOL COMMANDS RUN AS LOCAL PROCESSES ON THIS MACHINE/);
    const kubeconfig = (await printed(/^ {2}export KUBECONFIG=(\S+)$/, 150_000))[1] ?? '';
    expect(kubeconfig).toBe(join(stateDir, 'kubeconfig'));
    await printed(/^ {2}export PATH=".*:\$PATH"/);
    // The kill -9 line comes after the other suggestions; output arrives in chunks, so wait for it first.
    const operatorPid = Number((await printed(/^ {2}kill -9 (\d+) /))[1]);
    for (const command of ['kubectl get agentruns -w', 'kubectl agentrun describe demo', 'kubectl agentrun approve demo', 'kubectl agentrun transcript demo']) {
      expect(output.some((l) => l.trimStart().startsWith(command)), command).toBe(true);
    }
    const state = JSON.parse(await readFile(join(stateDir, 'dev.json'), 'utf8')) as { operatorPid: number; cluster: Record<string, number> };
    expect(state.operatorPid).toBe(operatorPid);
    const clusterPids = Object.values(state.cluster);
    expect(clusterPids).toHaveLength(onRealNode() ? 4 : 3);
    // Its own control plane, not the shared test cluster.
    const server = /server: (\S+)/.exec(await readFile(kubeconfig, 'utf8'))?.[1];
    expect(server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(output.join('\n')).toContain(`ready at ${server ?? ''}`);

    const phase = async () => (await kubectl(kubeconfig, ['get', 'agentrun', 'demo', '-o', 'jsonpath={.status.phase}'])).stdout;
    await eventually('the demo run to await approval', async () => ((await phase()) === 'AwaitingApproval' ? true : undefined), 60_000);

    // kill -9 the operator: dev mode restarts it like a Deployment, and the run is still there, waiting.
    const mark = output.length;
    process.kill(operatorPid, 'SIGKILL');
    const restarted = Number((await printed(/operator restarted: pid (\d+)/, 60_000, mark))[1]);
    expect(restarted).not.toBe(operatorPid);
    expect(alive(operatorPid)).toBe(false);
    expect(await phase()).toBe('AwaitingApproval');

    // `kubectl agentrun approve demo --yes`, with the PATH dev mode printed (bin/ for the plugin, Node 24).
    const path = [join(repoRoot, 'bin'), dirname(binary('kubectl')), dirname(process.execPath), process.env.PATH ?? ''].join(':');
    const approved = await new Promise<string>((resolve, reject) => {
      execFile(binary('kubectl'), ['agentrun', 'approve', 'demo', '--yes'], { env: { PATH: path, HOME: process.env.HOME ?? '', KUBECONFIG: kubeconfig } },
        (error, stdout, stderr) => { if (error) reject(new Error(`${error.message}\n${stderr}`)); else resolve(stdout); });
    });
    expect(approved).toContain('step 5 (run_shell) approved, decided by admin');
    await eventually('the demo run to succeed', async () => ((await phase()) === 'Succeeded' ? true : undefined), 60_000);
    const result = (await kubectl(kubeconfig, ['get', 'agentrun', 'demo', '-o', 'jsonpath={.status.result}'])).stdout;
    expect(result).toMatch(/^It is .* CPUs\. The machine reports: .*up/);
    await printed(/run demo: Succeeded/, 30_000);

    // Ctrl-C: everything stops, the cluster state is deleted, the logs stay.
    child.kill('SIGINT');
    const { code } = await exited;
    expect(code, output.join('\n')).toBe(0);
    expect(output.some((l) => l.includes(onRealNode()
      ? '[dev] stopped: operator, model stand-in, real node, control plane'
      : '[dev] stopped: operator, node emulator, model stand-in, control plane'))).toBe(true);
    for (const pid of [...clusterPids, restarted]) expect(alive(pid), `pid ${pid}`).toBe(false);
    expect(await processesMentioning(stateDir)).toEqual([]);
    expect(existsSync(join(stateDir, 'cluster'))).toBe(false);
    expect(existsSync(kubeconfig)).toBe(false);
    expect(await readFile(join(stateDir, 'logs', 'operator.log'), 'utf8')).toContain('"msg":"operator started"');
  }, 300_000);
});
