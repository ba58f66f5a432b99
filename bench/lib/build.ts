/**
 * Compiles src/ to JavaScript (tsconfig.build.json, into .agentrun/bench-dist): what the container
 * image runs (`node dist/main.js`), so memory can be measured for that form too.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './common.ts';

export async function buildCompiledOperator(): Promise<string> {
  const outDir = join(repoRoot, '.agentrun', 'bench-dist');
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  // tsc emits even when the (work-in-progress) tree has type errors; only a missing main.js is fatal.
  await promisify(execFile)(process.execPath, [tsc, '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', outDir], { cwd: repoRoot }).catch(() => undefined);
  const main = join(outDir, 'main.js');
  if (!existsSync(main)) throw new Error(`tsc -p tsconfig.build.json did not produce ${main}`);
  return main;
}
