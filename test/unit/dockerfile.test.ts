/**
 * Static checks of the Dockerfile against the chart and the build context. The image itself is
 * really built from this Dockerfile by buildah (scripts/cluster/operator-image.sh) and run as the
 * Helm-installed Deployment in test/integration/operator-pod.test.ts (real nodes).
 */
import { readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

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
    // `**/` first, as a placeholder, so that the `*` rule below cannot rewrite the `.*` it expands to.
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '\0').replace(/\*/g, '[^/]*').replaceAll('\0', '(.*/)?')}$`);
    return segments.some((_s, i) => re.test(segments.slice(0, i + 1).join('/')));
  });
}

const dockerfile = parseDockerfile(await readFile(join(root, 'Dockerfile'), 'utf8'));
const ignore = (await readFile(join(root, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const runtime = dockerfile.stages.at(-1);

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
  });

  it('lets every file below a copied directory into the context (a pattern like **/kubeconfig* once dropped src/adapters/kube/kubeconfig.ts)', async () => {
    const copies = dockerfile.stages.flatMap((s) => s.steps).filter((s) => s.op === 'COPY' && !s.args.startsWith('--from'));
    for (const source of copies.flatMap((c) => c.args.split(/\s+/).slice(0, -1))) {
      const entries = await readdir(join(root, source), { recursive: true, withFileTypes: true }).catch(() => []);
      for (const e of entries.filter((entry) => entry.isFile())) {
        const path = relative(root, join(e.parentPath, e.name));
        expect(dockerignored(ignore, path), `${path} is excluded by .dockerignore`).toBe(false);
      }
    }
  });

  it('the chart runs the image\'s command (the image has CMD, no ENTRYPOINT: args alone would replace it)', async () => {
    const cmd = JSON.parse(runtime?.steps.filter((s) => s.op === 'CMD').at(-1)?.args ?? 'null') as unknown;
    expect(dockerfile.stages.flatMap((s) => s.steps).some((s) => s.op === 'ENTRYPOINT')).toBe(false);
    const deployment = await readFile(join(root, 'charts/agentrun-operator/templates/deployment.yaml'), 'utf8');
    expect(JSON.parse(/^\s*command: (\[.*\])$/m.exec(deployment)?.[1] ?? 'null')).toEqual(cmd);
  });

  it('keeps secrets and bulk out of the build context', () => {
    for (const path of ['node_modules', '.git', '.agentrun/cluster/kubeconfig', 'dist', 'test/harness/x.key', '.env']) {
      expect(dockerignored(ignore, path), path).toBe(true);
    }
  });
});
