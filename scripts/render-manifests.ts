/**
 * `npm run render-manifests`: writes deploy/agentrun-operator.yaml from the Helm chart (see
 * manifests.ts). `--check` exits non-zero when the checked-in file differs from a fresh render.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_PATH, renderManifests } from './manifests.ts';

const root = join(import.meta.dirname, '..');
const rendered = await renderManifests(root);
const current = await readFile(join(root, MANIFEST_PATH), 'utf8').catch(() => '');
if (current === rendered) {
  console.log(`${MANIFEST_PATH} is up to date`);
} else if (process.argv.includes('--check')) {
  console.error(`stale: ${MANIFEST_PATH} (run npm run render-manifests)`);
  process.exit(1);
} else {
  await writeFile(join(root, MANIFEST_PATH), rendered);
  console.log(`wrote ${MANIFEST_PATH}`);
}
