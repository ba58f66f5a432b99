/**
 * Builds what the container image runs — the operator bundle `npm run build` writes to
 * dist/main.js (scripts/build.ts) — into .agentrun/bench-dist, so memory is measured for that form.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bundleOperator } from '../../scripts/build.ts';
import { repoRoot } from '../../test/harness/measure.ts';

export async function buildCompiledOperator(): Promise<string> {
  const main = join(repoRoot, '.agentrun', 'bench-dist', 'main.js');
  await bundleOperator(main);
  if (!existsSync(main)) throw new Error(`the operator bundle was not written to ${main}`);
  return main;
}
