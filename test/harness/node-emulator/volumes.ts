/**
 * Materialises a pod's emptyDir, configMap, secret, downwardAPI and projected volumes on disk.
 */
import * as k8s from '@kubernetes/client-node';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PodSources } from './pod-environment.ts';
import type { EmulatorLog } from './types.ts';

/** Writes each volume under `root/<name>` and returns volume name → host directory. */
export async function materializeVolumes(volumes: readonly k8s.V1Volume[], root: string, sources: PodSources, log: EmulatorLog): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const volume of volumes) {
    if (volume.hostPath) { dirs.set(volume.name, volume.hostPath.path); continue; }
    const dir = join(root, volume.name);
    await mkdir(dir, { recursive: true });
    const files = await volumeFiles(volume, sources);
    if (files === undefined) log('volume type not emulated, mounting an empty directory', { volume: volume.name });
    for (const [path, content] of files ?? []) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    dirs.set(volume.name, dir);
  }
  return dirs;
}

/** The files a volume holds (relative path → content); undefined for a type that is not emulated. */
async function volumeFiles(volume: k8s.V1Volume, sources: PodSources): Promise<Map<string, Buffer> | undefined> {
  if (volume.emptyDir) return new Map();
  if (volume.configMap) {
    const { name = '', items, optional } = volume.configMap;
    return keyedFiles(await sources.configMap(name), items, `configmap "${name}"`, optional);
  }
  if (volume.secret) {
    const { secretName = '', items, optional } = volume.secret;
    return keyedFiles(await sources.secret(secretName), items, `secret "${secretName}"`, optional);
  }
  if (volume.downwardAPI) return downwardApiFiles(volume.downwardAPI.items ?? [], sources);
  if (volume.projected) {
    const files = new Map<string, Buffer>();
    for (const source of volume.projected.sources ?? []) {
      for (const [path, content] of await projectedFiles(source, sources)) files.set(path, content);
    }
    return files;
  }
  return undefined;
}

async function projectedFiles(source: k8s.V1VolumeProjection, sources: PodSources): Promise<Map<string, Buffer>> {
  if (source.configMap) {
    const { name = '', items, optional } = source.configMap;
    return keyedFiles(await sources.configMap(name), items, `configmap "${name}"`, optional);
  }
  if (source.secret) {
    const { name = '', items, optional } = source.secret;
    return keyedFiles(await sources.secret(name), items, `secret "${name}"`, optional);
  }
  if (source.downwardAPI) return downwardApiFiles(source.downwardAPI.items ?? [], sources);
  if (source.serviceAccountToken) {
    return new Map([[source.serviceAccountToken.path, Buffer.from(await sources.serviceAccountToken(source.serviceAccountToken))]]);
  }
  return new Map();
}

/** All keys of a ConfigMap/Secret as files, or only `items` (key → path). */
function keyedFiles(data: Map<string, Buffer> | undefined, items: readonly k8s.V1KeyToPath[] | undefined,
  what: string, optional: boolean | undefined): Map<string, Buffer> {
  if (!data) {
    if (optional) return new Map();
    throw new Error(`${what} not found`);
  }
  if (!items) return data;
  const files = new Map<string, Buffer>();
  for (const { key, path } of items) {
    const value = data.get(key);
    if (value !== undefined) files.set(path, value);
    else if (!optional) throw new Error(`${what} has no key ${key}`);
  }
  return files;
}

function downwardApiFiles(items: readonly k8s.V1DownwardAPIVolumeFile[], sources: PodSources): Map<string, Buffer> {
  // resourceFieldRef items are skipped: the emulator has no resource model.
  return new Map(items.flatMap((item) => item.fieldRef ? [[item.path, Buffer.from(sources.field(item.fieldRef.fieldPath))] as const] : []));
}
