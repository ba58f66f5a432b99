/**
 * The console's static files. From a checkout (or dist/) they are files next to this module; in
 * the single executable (scripts/build-plugin.ts) they are its SEA assets, so the binary serves
 * them without anything on disk.
 */
import { readFileSync } from 'node:fs';
import { getAsset, isSea } from 'node:sea';

/** The SEA asset key of a console file: the build embeds each as `console/FILE`. */
export function assetKey(file: string): string {
  return `console/${file}`;
}

/** The bytes of one file of src/plugin/console/assets/. */
export function readAsset(file: string): Buffer {
  if (isSea()) return Buffer.from(getAsset(assetKey(file)));
  return readFileSync(new URL(`./assets/${file}`, import.meta.url));
}
