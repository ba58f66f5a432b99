/**
 * The parts of the single-executable build that need no build: the krew manifest's shape, and
 * `version` and the console's assets when the plugin runs from a checkout (not the executable).
 * test/integration/plugin-binary.test.ts builds and runs the executable itself.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { krewManifest } from '../../scripts/build-plugin.ts';
import { pluginVersion } from '../../src/plugin/commands/version.ts';
import { readAsset } from '../../src/plugin/console/assets.ts';

const root = join(import.meta.dirname, '..', '..');

describe('the krew manifest', () => {
  it('is a v1alpha2 Plugin for linux/amd64 naming the archive, its sha256 and the executable', () => {
    const sha = 'a'.repeat(64);
    const manifest = parse(krewManifest({ version: '1.2.3', uri: 'https://example.test/a.tar.gz', sha256: sha })) as unknown;
    expect(manifest).toMatchObject({
      apiVersion: 'krew.googlecontainertools.github.com/v1alpha2', kind: 'Plugin', metadata: { name: 'agentrun' },
      spec: {
        version: 'v1.2.3', shortDescription: expect.any(String) as string,
        platforms: [{
          selector: { matchLabels: { os: 'linux', arch: 'amd64' } }, uri: 'https://example.test/a.tar.gz', sha256: sha,
          bin: 'kubectl-agentrun', files: [{ from: 'kubectl-agentrun', to: '.' }, { from: 'LICENSE', to: '.' }],
        }],
      },
    });
  });
});

describe('run from a checkout', () => {
  it('`version` reads package.json and says it is not the single executable', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(pluginVersion()).toEqual({ version: pkg.version, commit: 'source', node: process.version, singleExecutable: false });
  });

  it('the console files are read from src/plugin/console/assets/', async () => {
    const dir = join(root, 'src', 'plugin', 'console', 'assets');
    for (const file of await readdir(dir)) {
      expect(readAsset(file).equals(await readFile(join(dir, file))), file).toBe(true);
    }
  });
});
