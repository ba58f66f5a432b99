/**
 * There is no Docker engine here, so this test performs what the Dockerfile performs, step by
 * step, read from the Dockerfile itself: each stage gets a directory, COPY copies from the build
 * context (minus .dockerignore) or from an earlier stage, RUN runs (npm ci is reproduced from the
 * lockfile, offline, with the same --omit), and the runtime stage's CMD must start as the image's
 * non-root USER. A RUN the test does not know fails it, so the Dockerfile cannot drift from what
 * is proved here. What it cannot prove: that the base image exists and behaves like this Node.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const execFileAsync = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

interface Instruction { readonly op: string; readonly args: string; readonly line: number }
interface Stage { readonly name: string; readonly base: string; readonly steps: Instruction[] }

/** Parses a Dockerfile: comments dropped, `\` continuations joined, ARG defaults substituted in FROM. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: Instruction[] = [];
  let buffer = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!buffer && (line === '' || line.startsWith('#'))) return;
    if (!buffer) start = i + 1;
    if (line.endsWith('\\')) { buffer += `${line.slice(0, -1)} `; return; }
    buffer += line;
    const [op = '', ...rest] = buffer.split(/\s+/);
    logical.push({ op: op.toUpperCase(), args: rest.join(' '), line: start });
    buffer = '';
  });
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of logical) {
    if (ins.op === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = ins.args.split('=');
      args.set(name, value);
    } else if (ins.op === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!match) throw new Error(`line ${ins.line}: cannot parse FROM ${ins.args}`);
      const base = (match[1] ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => args.get(a ?? b ?? '') ?? '');
      stages.push({ name: match[2] ?? String(stages.length), base, steps: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`line ${ins.line}: ${ins.op} before FROM`);
      stage.steps.push(ins);
    }
  }
  return { args, stages };
}

/** Minimal .dockerignore matching: `*` within a segment, `**` across, a match excludes everything below. */
function dockerignored(patterns: readonly string[], path: string): boolean {
  const segments = path.split('/');
  return patterns.some((pattern) => {
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*')}$`);
    return segments.some((_s, i) => re.test(segments.slice(0, i + 1).join('/')));
  });
}

interface LockPackage { readonly version?: string; readonly dev?: boolean; readonly devOptional?: boolean; readonly optional?: boolean }

/**
 * `npm ci [--omit=dev]` reproduced offline: every package of the lockfile (minus dev ones) copied
 * from the repo's node_modules, which `npm ci` installed from the same lockfile; each version checked.
 */
async function npmCiFromLock(stageDir: string, command: string): Promise<string[]> {
  const lock = JSON.parse(await readFile(join(stageDir, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const repoLock = await readFile(join(root, 'package-lock.json'), 'utf8');
  expect(await readFile(join(stageDir, 'package-lock.json'), 'utf8'), 'the image installs from the repo lockfile').toBe(repoLock);
  const omitDev = /--omit[= ]dev\b/.test(command);
  if (!omitDev) {
    // The build stage needs everything: that is exactly the repo's own node_modules.
    await symlink(join(root, 'node_modules'), join(stageDir, 'node_modules'), 'dir');
    return Object.keys(lock.packages).filter(Boolean);
  }
  const installed: string[] = [];
  for (const [path, pkg] of Object.entries(lock.packages)) {
    if (!path || pkg.dev || pkg.devOptional) continue;
    const from = join(root, path);
    if (!existsSync(from)) {
      if (pkg.optional) continue;
      throw new Error(`${path} is in the lockfile but not in node_modules: run npm ci`);
    }
    const manifest = JSON.parse(await readFile(join(from, 'package.json'), 'utf8')) as { version: string };
    expect(manifest.version, path).toBe(pkg.version);
    await mkdir(dirname(join(stageDir, path)), { recursive: true });
    await cp(from, join(stageDir, path), { recursive: true, dereference: false });
    installed.push(path);
  }
  return installed;
}

const dockerfile = parseDockerfile(await readFile(join(root, 'Dockerfile'), 'utf8'));
const ignore = (await readFile(join(root, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const runtime = dockerfile.stages.at(-1);
const build = dockerfile.stages[0];

describe('Dockerfile (static)', () => {
  it('has a build stage and a runtime stage on a Node 24 base image', async () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    for (const stage of dockerfile.stages) expect(stage.base, stage.name).toMatch(/^node:24(\.[0-9.]+)?(-[a-z0-9.]+)?$/);
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=24.0.0');
  });

  it('runs the compiled entry point as a numeric non-root user, the one the chart runs the pod as', async () => {
    const steps = runtime?.steps ?? [];
    const cmd = steps.filter((s) => s.op === 'CMD').at(-1);
    expect(JSON.parse(cmd?.args ?? 'null')).toEqual(['node', 'dist/main.js']);
    const user = steps.filter((s) => s.op === 'USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^[1-9][0-9]*(:[1-9][0-9]*)?$/);
    const values = parseYaml(await readFile(join(root, 'charts/agentrun-operator/values.yaml'), 'utf8')) as {
      podSecurityContext: { runAsUser: number; runAsGroup: number }; metrics: { port: number };
    };
    expect(user).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
    expect(steps.find((s) => s.op === 'EXPOSE')?.args).toBe(String(values.metrics.port));
    // No dependencies installed in the runtime image: the operator is one bundle (scripts/build.ts).
    expect(steps.filter((s) => s.op === 'RUN')).toEqual([]);
    expect(steps.filter((s) => s.op === 'COPY').map((s) => s.args)).toEqual(['package.json ./', '--from=build /src/dist/main.js /src/dist/main.js.map ./dist/']);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const copies = dockerfile.stages.flatMap((s) => s.steps).filter((s) => s.op === 'COPY' && !s.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect(existsSync(join(root, source)), `line ${copy.line}: COPY ${source}`).toBe(true);
        expect(dockerignored(ignore, posix.normalize(source)), `line ${copy.line}: ${source} is excluded by .dockerignore`).toBe(false);
      }
    }
    // The context leaves out what must never be baked into an image.
    for (const path of ['node_modules', '.git', '.agentrun/cluster/kubeconfig', 'dist', 'test/support/x.key', '.env']) {
      expect(dockerignored(ignore, path), path).toBe(true);
    }
  });
});

describe('Dockerfile (performed without Docker)', () => {
  let work: string;
  const stageDirs = new Map<string, { dir: string; workdir: string }>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'agentrun-docker-'));
    await chmod(work, 0o755);
  });
  afterAll(async () => { await rm(work, { recursive: true, force: true }); });

  it('builds both stages and the image starts: node dist/main.js --help, as the non-root USER', async () => {
    for (const stage of [build, runtime]) {
      if (!stage) throw new Error('missing stage');
      const dir = join(work, stage.name);
      await mkdir(dir, { recursive: true });
      let workdir = '/';
      const env: Record<string, string> = {};
      const local = (path: string) => join(dir, relative(workdir, posix.resolve(workdir, path)));
      stageDirs.set(stage.name, { dir, workdir });
      for (const step of stage.steps) {
        switch (step.op) {
          case 'WORKDIR':
            workdir = posix.resolve(workdir, step.args);
            stageDirs.set(stage.name, { dir, workdir });
            break;
          case 'ENV':
            for (const pair of step.args.split(/\s+/)) { const [k = '', v = ''] = pair.split('='); env[k] = v; }
            break;
          case 'COPY': {
            const parts = step.args.split(/\s+/);
            const from = parts[0]?.startsWith('--from=') ? parts.shift()?.slice('--from='.length) : undefined;
            const dest = parts.pop() ?? '';
            for (const source of parts) {
              let src: string;
              if (from) {
                const other = stageDirs.get(from);
                if (!other) throw new Error(`line ${step.line}: no stage ${from}`);
                src = join(other.dir, posix.relative(other.workdir, source));
              } else {
                src = join(root, source);
              }
              const target = dest.endsWith('/') || parts.length > 1 ? join(local(dest), posix.basename(source)) : local(dest);
              await mkdir(dirname(target), { recursive: true });
              await cp(src, target, { recursive: true });
            }
            break;
          }
          case 'RUN':
            for (const command of step.args.split('&&').map((c) => c.trim())) {
              if (/^npm ci\b/.test(command)) {
                const installed = await npmCiFromLock(local('.'), command);
                if (/--omit=dev/.test(command)) {
                  for (const dev of ['typescript', 'vitest', 'eslint', 'node']) expect(installed, `dev dependency ${dev} in the runtime image`).not.toContain(`node_modules/${dev}`);
                }
              } else if (/^npm cache clean\b/.test(command)) {
                // Nothing cached by the emulated install.
              } else if (command === 'npm run build') {
                await execFileAsync('npm', ['run', 'build'], {
                  cwd: local('.'),
                  env: { ...process.env, ...env, PATH: `${join(root, 'node_modules', '.bin')}:${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
                });
              } else {
                throw new Error(`line ${step.line}: the test does not know how to perform RUN ${command}; teach it, so the Dockerfile stays proved`);
              }
            }
            break;
          case 'USER': case 'CMD': case 'EXPOSE': case 'ARG': case 'LABEL':
            break;
          default:
            throw new Error(`line ${step.line}: unsupported instruction ${step.op}`);
        }
      }
    }

    const app = stageDirs.get('runtime');
    if (!app) throw new Error('no runtime stage');
    // A stage's directory stands for its WORKDIR.
    const appDir = app.dir;
    // The operator is one bundle: no node_modules in the image.
    expect((await readdir(appDir)).sort()).toEqual(['dist', 'package.json']);
    expect((await readdir(join(appDir, 'dist'))).sort()).toEqual(['main.js', 'main.js.map']);
    expect((await stat(join(appDir, 'dist', 'main.js'))).isFile()).toBe(true);
    // No TypeScript sources and no tests in the image.
    expect(existsSync(join(appDir, 'src'))).toBe(false);

    const cmd = JSON.parse(runtime?.steps.filter((s) => s.op === 'CMD').at(-1)?.args ?? '[]') as string[];
    const [uid = '', gid = ''] = (runtime?.steps.filter((s) => s.op === 'USER').at(-1)?.args ?? '').split(':');
    const argv = [...cmd.slice(1), '--help'];
    // As the image's USER when we can switch to it (root in CI), else as ourselves.
    const asUser = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0
      ? ['setpriv', `--reuid=${uid}`, `--regid=${gid || uid}`, '--clear-groups', process.execPath, ...argv]
      : [process.execPath, ...argv];
    const result = spawnSync(asUser[0] ?? '', asUser.slice(1), { cwd: appDir, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' }, encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: node dist/main.js [flags]');
    expect(result.stdout).toContain('--leader-elect');
    expect(result.stdout).toContain('--metrics-port');
  }, 120_000);
});
