/**
 * The kubectl plugin as ONE executable (scripts/build-plugin.ts): built here, then run as kubectl
 * users run it — found by kubectl on a PATH that holds only kubectl and the executable, with no
 * `node` anywhere on it — against the real test cluster and operator (mock model), as personas
 * with ordinary RBAC. If the executable cannot be built, these tests fail.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createRun, finished, MOCK_ENDPOINT, recordingTool, startAgentEnv, waitForRun, type AgentEnv } from '../harness/agent-env.ts';
import { binary, repoRoot } from '../harness/control-plane.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { personas, type Personas } from '../harness/personas.ts';
import { startConsole, type ConsoleProcess } from '../harness/console-process.ts';

const run = promisify(execFile);
const ASSETS = join(repoRoot, 'src', 'plugin', 'console', 'assets');

/** What `npm run build:plugin` wrote (into a temporary --out-dir). */
let built: { executable: string; archive: string; manifest: string; version: string };
let out = '';
/** The PATH the executable runs with: kubectl and kubectl-agentrun, nothing else. */
let pathDir = '';
let env: AgentEnv;
let people: Personas;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'agentrun-plugin-binary-'));
  // As users run it, in its own process: the build peaks at ~1.1 GiB RSS, kept out of the test worker.
  const dist = join(out, 'dist');
  await run(process.execPath, [join(repoRoot, 'scripts', 'build-plugin.ts'), '--out-dir', dist, '--release-url', 'https://example.test/releases'],
    { cwd: repoRoot, maxBuffer: 16 << 20 });
  const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  built = {
    executable: join(dist, 'kubectl-agentrun-linux-amd64'), archive: join(dist, 'kubectl-agentrun-linux-amd64.tar.gz'),
    manifest: join(dist, 'plugins', 'agentrun.yaml'), version,
  };
  // Installed as krew would: unpacked from the archive, not copied from the build directory.
  pathDir = join(out, 'bin');
  await mkdir(pathDir);
  await run('tar', ['-xzf', built.archive, '-C', pathDir]);
  await symlink(binary('kubectl'), join(pathDir, 'kubectl'));
  env = await startAgentEnv('plugin-bin');
  people = await personas(env.namespace, 'plugin-bin');
}, 300_000);

afterAll(async () => {
  // Whatever beforeAll got to start before it failed.
  await (env as AgentEnv | undefined)?.close();
  if (out) await rm(out, { recursive: true, force: true });
});

interface Result { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** The environment of a kubectl user without Node.js: only `pathDir` on PATH, from an unrelated directory. */
function userEnv(kubeconfig: string): NodeJS.ProcessEnv {
  return { PATH: pathDir, HOME: out, KUBECONFIG: kubeconfig };
}

/** `kubectl agentrun ARGS` through the real kubectl's plugin lookup; stdin is empty. */
function kubectlAgentrun(args: readonly string[], kubeconfig: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(pathDir, 'kubectl'), ['agentrun', ...args], { env: userEnv(kubeconfig), cwd: out, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code, stdout, stderr }); });
    child.stdin.end();
  });
}

async function ok(args: readonly string[], kubeconfig: string): Promise<string> {
  const r = await kubectlAgentrun(args, kubeconfig);
  expect(r.code, `kubectl agentrun ${args.join(' ')}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** A run whose `shell` tool needs approval: the model calls it once, then answers. */
async function gatedRun(name: string): Promise<void> {
  const key = `[plugin-bin-${name}]`;
  env.model.script(key, [{ content: [toolUse('shell', { command: 'echo hi' })] }, { content: [text(`${name} finished`)] }]);
  await createRun(env.namespace, name, {
    model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
    prompt: `${key} run a command`,
    tools: [{ name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'echo ran') }],
  });
  await waitForRun(env.namespace, name, 'awaiting approval', (r) => (r.status?.pendingApprovals?.length ?? 0) === 1);
}

describe('the single executable', () => {
  it('is built with a krew manifest whose sha256 is the archive\'s', async () => {
    const archive = await readFile(built.archive);
    const sha = createHash('sha256').update(archive).digest('hex');
    expect(await readFile(`${built.archive}.sha256`, 'utf8')).toBe(`${sha}  kubectl-agentrun-linux-amd64.tar.gz\n`);
    const manifest = parse(await readFile(built.manifest, 'utf8')) as {
      apiVersion: string; kind: string; metadata: { name: string };
      spec: { version: string; platforms: { selector: unknown; uri: string; sha256: string; bin: string }[] };
    };
    expect(manifest).toMatchObject({
      apiVersion: 'krew.googlecontainertools.github.com/v1alpha2', kind: 'Plugin', metadata: { name: 'agentrun' },
      spec: { version: `v${built.version}` },
    });
    expect(manifest.spec.platforms).toEqual([expect.objectContaining({
      selector: { matchLabels: { os: 'linux', arch: 'amd64' } },
      uri: `https://example.test/releases/v${built.version}/kubectl-agentrun-linux-amd64.tar.gz`,
      sha256: sha, bin: 'kubectl-agentrun',
    })]);
    const { stdout: listing } = await run('tar', ['-tzvf', built.archive]);
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 .* kubectl-agentrun$/m);
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 .* LICENSE$/m);
    // What krew unpacked is the executable that was built.
    // Buffer#equals: toEqual would walk 120 MiB element by element.
    const same = (await readFile(join(pathDir, 'kubectl-agentrun'))).equals(await readFile(built.executable));
    expect(same, 'the unpacked kubectl-agentrun is the executable built').toBe(true);
  });

  it('runs where no node is on PATH: `version` says it is the single executable with the pinned Node.js', async () => {
    const lookup = await run('/bin/sh', ['-c', 'command -v node'], { env: userEnv('') }).then(() => 'found', () => 'not found');
    expect(lookup, `PATH=${pathDir} must not hold node`).toBe('not found');
    const pinned = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: { node: string } }).devDependencies.node;
    const stdout = await ok(['version'], people.approver);
    expect(stdout).toMatch(new RegExp(`^kubectl-agentrun ${built.version} \\(commit [0-9a-f]{12}, Node\\.js v${pinned}, single executable\\)\\n$`));
  });

  it('lists runs and approves a waiting step as an approver; the operator then runs it', async () => {
    await gatedRun('gated');
    const list = await ok(['list', '-n', env.namespace], people.approver);
    expect(list).toMatch(/^NAME\s+PHASE/);
    expect(list).toMatch(/^gated\s+AwaitingApproval\s/m);
    const approved = await ok(['approve', 'gated', '2', '--yes', '--comment', 'from the binary', '-n', env.namespace], people.approver);
    expect(approved).toMatch(new RegExp(`^step 2 \\(.*\\) approved, decided by ${people.names.approver}$`, 'm'));
    const done = await waitForRun(env.namespace, 'gated', 'finished', finished);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.steps?.[1]?.approval).toMatchObject({ decision: 'Approved', by: people.names.approver, comment: 'from the binary' });
  });

  it('a user without the right is refused by the apiserver, through the executable too', async () => {
    await gatedRun('refused');
    const r = await kubectlAgentrun(['approve', 'refused', '2', '--yes', '-n', env.namespace], people.editor);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`user ${people.names.editor} may not decide on AgentRun steps`);
  });

  it('`ui --no-open` serves the console from the files inside the executable', async () => {
    const ui = await startUi(people.approver);
    try {
      const port = Number(new URL(ui.url).port);
      const enter = await get(port, `/${new URL(ui.url).search}`, {});
      expect(enter.status).toBe(303);
      const cookie = (enter.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '';
      expect(cookie).not.toBe('');
      const headers = { Cookie: cookie };
      for (const [path, file, type] of [
        ['/', 'index.html', 'text/html'], ['/console.js', 'console.js', 'text/javascript'], ['/console.css', 'console.css', 'text/css'],
      ] as const) {
        const page = await get(port, path, headers);
        expect(page.status, path).toBe(200);
        expect(page.headers['content-type']).toContain(type);
        expect(page.headers['content-security-policy']).toBeDefined();
        expect(page.body.equals(await readFile(join(ASSETS, file))), `${path} is src/plugin/console/assets/${file}`).toBe(true);
      }
      const info = await get(port, '/api/info', headers);
      expect(JSON.parse(info.body.toString('utf8'))).toMatchObject({ namespace: env.namespace });
      expect((await get(port, '/', {})).status).toBe(401);
    } finally {
      expect(await stopUi(ui)).toBe(0);
    }
  });
});

/** Starts `kubectl agentrun ui --no-open` (through kubectl) and reads the URL it prints. */
async function startUi(kubeconfig: string): Promise<ConsoleProcess> {
  return startConsole(join(pathDir, 'kubectl'), ['agentrun', 'ui', '--no-open', '-n', env.namespace], { env: userEnv(kubeconfig), cwd: out });
}

/** Ctrl-C, as kubectl passes it on: the console stops cleanly. */
async function stopUi(ui: ConsoleProcess): Promise<number | null> {
  if (ui.child.exitCode !== null) return ui.child.exitCode;
  const exited = new Promise<number | null>((resolve) => { ui.child.once('exit', (code) => { resolve(code); }); });
  ui.child.kill('SIGINT');
  return exited;
}

function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => { chunks.push(d); }).on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
