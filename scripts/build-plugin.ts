/**
 * `npm run build:plugin`: the kubectl plugin as ONE executable, as kubectl users expect (krew).
 *
 * 1. esbuild bundles src/plugin/main.ts and everything it imports into one CommonJS file (a
 *    single-executable application's main script is CommonJS and may require only built-ins);
 * 2. Node's single-executable-application support (`--experimental-sea-config`) turns it into a
 *    blob, with the console's files (src/plugin/console/assets/) as SEA assets;
 * 3. postject injects the blob into a copy of the Node.js 24 binary the project pins;
 * 4. the executable goes into a .tar.gz with LICENSE, with its sha256, and a krew manifest
 *    (dist/plugins/agentrun.yaml) that names that checksum.
 *
 * Flags: --out-dir DIR (default dist/), --release-url URL (default $AGENTRUN_RELEASE_URL, else the
 * project's GitHub releases).
 *
 * Output (dist/): kubectl-agentrun-linux-amd64, kubectl-agentrun-linux-amd64.tar.gz,
 * kubectl-agentrun-linux-amd64.tar.gz.sha256, plugins/agentrun.yaml. Linux amd64 only: the
 * Node.js binary inside is the one node_modules holds, so it must be built on linux-x64.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { stringify } from 'yaml';
import { assetKey } from '../src/plugin/console/assets.ts';

const root = join(import.meta.dirname, '..');
/** The fuse Node.js checks to know a blob was injected (fixed for every Node.js with SEA). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Where a release's archive is downloaded from; the archive's name is appended. */
const DEFAULT_RELEASE_URL = 'https://github.com/agentrun-dev/agentrun-operator/releases/download';

export interface PluginBuild {
  readonly executable: string;
  readonly archive: string;
  readonly sha256: string;
  readonly manifest: string;
  readonly version: string;
  readonly bytes: { readonly executable: number; readonly archive: number };
  readonly ms: number;
}

export interface PluginBuildOptions {
  /** Output directory (default dist/). */
  readonly outDir?: string;
  /** Base URL of the release downloads the krew manifest points at (default: $AGENTRUN_RELEASE_URL). */
  readonly releaseUrl?: string;
}

/** Builds the single executable, its archive, checksum and krew manifest. */
export async function buildPlugin(options: PluginBuildOptions = {}): Promise<PluginBuild> {
  const started = Date.now();
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    const here = `${process.platform}-${process.arch}`;
    throw new Error(`the plugin executable is built for linux-amd64 on linux-amd64 (this is ${here})`);
  }
  // The executable is a copy of the Node.js running this build: it must be the one package.json pins.
  const nodeBinary = process.execPath;
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    version: string; devDependencies: { node: string };
  };
  if (process.version !== `v${pkg.devDependencies.node}`) {
    throw new Error(`build the plugin with the pinned Node.js ${pkg.devDependencies.node} (node_modules/.bin/node, `
      + `or npm run build:plugin), not ${process.version} at ${nodeBinary}`);
  }
  const outDir = options.outDir ?? join(root, 'dist');
  const work = join(outDir, 'sea');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const version = pkg.version;

  // 1. One CommonJS file. The dynamic imports of commands become plain functions in it.
  const main = join(work, 'kubectl-agentrun.cjs');
  await build({
    entryPoints: [join(root, 'src', 'plugin', 'main.ts')],
    outfile: main,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { AGENTRUN_BUILD: JSON.stringify({ version, commit: gitCommit() }) },
    // import.meta.url is only read when not in the executable (assets.ts, version.ts).
    logOverride: { 'empty-import-meta': 'silent' },
  });

  // 2. The SEA blob, with every console file as an asset, under the key assets.ts reads.
  const assetsDir = join(root, 'src', 'plugin', 'console', 'assets');
  const assets = Object.fromEntries(readdirSync(assetsDir).sort().map((f) => [assetKey(f), join(assetsDir, f)]));
  const blob = join(work, 'sea-prep.blob');
  const config = join(work, 'sea-config.json');
  writeFileSync(config, JSON.stringify({
    main, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: true, assets,
  }, null, 2));
  execFileSync(nodeBinary, ['--experimental-sea-config', config], { stdio: 'pipe' });

  // 3. A copy of this Node.js with the blob injected.
  const executable = join(outDir, 'kubectl-agentrun-linux-amd64');
  rmSync(executable, { force: true });
  copyFileSync(nodeBinary, executable);
  chmodSync(executable, 0o755);
  const require = createRequire(import.meta.url);
  const { inject } = require('postject') as { inject: PostjectInject };
  await inject(executable, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });

  // 4. The archive krew installs: the executable as `kubectl-agentrun`, and the licence. Fixed
  // owner, mode and times, so the same executable gives the same archive.
  const stage = join(work, 'archive');
  mkdirSync(stage);
  copyFileSync(executable, join(stage, 'kubectl-agentrun'));
  chmodSync(join(stage, 'kubectl-agentrun'), 0o755);
  copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
  const archiveName = 'kubectl-agentrun-linux-amd64.tar.gz';
  const archive = join(outDir, archiveName);
  const tar = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '-C', stage, '-cf', '-', 'LICENSE', 'kubectl-agentrun'], { maxBuffer: 1 << 30 });
  // Level 6: level 9 took 3x as long here for 3% less (41.7 vs 43.0 MiB).
  writeFileSync(archive, gzipSync(tar, { level: 6 }));
  const sha256 = createHash('sha256').update(readFileSync(archive)).digest('hex');
  writeFileSync(`${archive}.sha256`, `${sha256}  ${archiveName}\n`);

  const releaseUrl = (options.releaseUrl ?? process.env.AGENTRUN_RELEASE_URL ?? DEFAULT_RELEASE_URL)
    .replace(/\/+$/, '');
  const manifest = join(outDir, 'plugins', 'agentrun.yaml');
  mkdirSync(join(outDir, 'plugins'), { recursive: true });
  writeFileSync(manifest, krewManifest({ version, uri: `${releaseUrl}/v${version}/${archiveName}`, sha256 }));
  rmSync(stage, { recursive: true, force: true });
  return {
    executable, archive, sha256, manifest, version, ms: Date.now() - started,
    bytes: { executable: readFileSync(executable).length, archive: readFileSync(archive).length },
  };
}

type PostjectInject = (
  file: string, resource: string, data: Buffer, options: { sentinelFuse: string },
) => Promise<void>;

/** The krew plugin manifest (krew.sigs.k8s.io/docs/developer-guide/plugin-manifest). */
export function krewManifest(release: { version: string; uri: string; sha256: string }): string {
  return stringify({
    apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
    kind: 'Plugin',
    metadata: { name: 'agentrun' },
    spec: {
      version: `v${release.version}`,
      homepage: 'https://github.com/agentrun-dev/agentrun-operator',
      shortDescription: 'Inspect AgentRuns and approve their tool calls',
      description: 'Lists and describes AgentRuns, rebuilds their transcripts from the journal, approves or '
        + 'rejects pending tool calls as your own Kubernetes identity, and serves a local web console '
        + '(kubectl agentrun ui). One executable: Node.js is inside it.',
      platforms: [{
        selector: { matchLabels: { os: 'linux', arch: 'amd64' } },
        uri: release.uri,
        sha256: release.sha256,
        bin: 'kubectl-agentrun',
        files: [{ from: 'kubectl-agentrun', to: '.' }, { from: 'LICENSE', to: '.' }],
      }],
    },
  }, { lineWidth: 0 });
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { 'out-dir': { type: 'string' }, 'release-url': { type: 'string' } } });
  const built = await buildPlugin({
    ...(values['out-dir'] !== undefined ? { outDir: resolve(values['out-dir']) } : {}),
    ...(values['release-url'] !== undefined ? { releaseUrl: values['release-url'] } : {}),
  });
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`${relative(root, built.executable)} (${mib(built.bytes.executable)}), `
    + `${relative(root, built.archive)} (${mib(built.bytes.archive)}, sha256 ${built.sha256}), `
    + `${relative(root, built.manifest)}, in ${(built.ms / 1000).toFixed(1)} s`);
}
