/**
 * `npm run generate`: writes the CRDs in crds/ (and the chart's copies) from the zod schemas in src/api/.
 * `--check` exits non-zero when the checked-in files are stale (used by the test suite).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { generatedFiles } from './generated-files.ts';

const check = process.argv.includes('--check');
const root = join(import.meta.dirname, '..');
let stale = 0;
for (const [path, content] of Object.entries(generatedFiles())) {
  const full = join(root, path);
  const current = await readFile(full, 'utf8').catch(() => '');
  if (current === content) continue;
  if (check) { console.error(`stale: ${path} (run npm run generate)`); stale++; continue; }
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, content);
  console.log(`wrote ${path}`);
}
process.exit(stale ? 1 : 0);
