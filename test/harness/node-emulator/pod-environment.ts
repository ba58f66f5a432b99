/**
 * A container's environment: what env and volumes refer to, $(VAR) expansion and path rewriting.
 */
import * as k8s from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { LOCALHOST } from './constants.ts';
import type { RuntimeContext } from './types.ts';
import { undefinedIfNotFound } from './util.ts';

/** Reads what a pod's env and volumes refer to. A missing object is `undefined`, not an error. */
export class PodSources {
  private readonly ctx: RuntimeContext;
  private readonly pod: k8s.V1Pod;

  constructor(ctx: RuntimeContext, pod: k8s.V1Pod) {
    this.ctx = ctx;
    this.pod = pod;
  }

  private get namespace(): string {
    return this.pod.metadata?.namespace ?? '';
  }

  async configMap(name: string): Promise<Map<string, Buffer> | undefined> {
    const configMap = await this.ctx.core.readNamespacedConfigMap({ name, namespace: this.namespace }).catch(undefinedIfNotFound);
    // The test control plane runs no root-ca-cert-publisher; serve the CA every pod's API access volume expects.
    if (!configMap && name === 'kube-root-ca.crt') return new Map([['ca.crt', await readFile(this.ctx.caCert)]]);
    if (!configMap) return undefined;
    return new Map([
      ...Object.entries(configMap.data ?? {}).map(([key, value]) => [key, Buffer.from(value)] as const),
      ...Object.entries(configMap.binaryData ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')] as const),
    ]);
  }

  async secret(name: string): Promise<Map<string, Buffer> | undefined> {
    const secret = await this.ctx.core.readNamespacedSecret({ name, namespace: this.namespace }).catch(undefinedIfNotFound);
    if (!secret) return undefined;
    return new Map(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')] as const));
  }

  /** A bound token from the TokenRequest API, as the kubelet puts in projected volumes. */
  async serviceAccountToken(source: k8s.V1ServiceAccountTokenProjection): Promise<string> {
    const { name = '', uid = '' } = this.pod.metadata ?? {};
    const request = await this.ctx.core.createNamespacedServiceAccountToken({
      name: this.pod.spec?.serviceAccountName ?? 'default',
      namespace: this.namespace,
      body: { spec: {
        audiences: source.audience ? [source.audience] : [],
        expirationSeconds: source.expirationSeconds ?? 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
      } },
    });
    return request.status?.token ?? '';
  }

  field(fieldPath: string): string {
    return podFieldValue(this.pod, fieldPath);
  }
}

/** A fieldRef's value: the fields the kubelet supports for env vars and downward API files. */
function podFieldValue(pod: k8s.V1Pod, fieldPath: string): string {
  const metadata = pod.metadata ?? {};
  const subscript = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (subscript) return (subscript[1] === 'labels' ? metadata.labels : metadata.annotations)?.[subscript[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name': return metadata.name ?? '';
    case 'metadata.namespace': return metadata.namespace ?? '';
    case 'metadata.uid': return metadata.uid ?? '';
    case 'metadata.labels': return formatDownwardMap(metadata.labels);
    case 'metadata.annotations': return formatDownwardMap(metadata.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP': case 'status.hostIPs': case 'status.podIP': case 'status.podIPs': return LOCALHOST;
    default: throw new Error(`fieldRef ${fieldPath} is not supported by the node emulator`);
  }
}

/** `key="value"` lines, sorted, as in a downward API file. */
function formatDownwardMap(map: Record<string, string> | undefined): string {
  return Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`).join('\n');
}

/** The container's environment: base, then envFrom, then env, in the kubelet's order. */
export async function containerEnvironment(
  container: k8s.V1Container, base: Record<string, string>, sources: PodSources, rewrite: (text: string) => string,
): Promise<Record<string, string>> {
  const env = { ...base };
  for (const from of container.envFrom ?? []) {
    const reference = from.configMapRef ?? from.secretRef;
    if (!reference) continue;
    const kind = from.configMapRef ? 'configmap' : 'secret';
    const name = reference.name ?? '';
    const data = from.configMapRef ? await sources.configMap(name) : await sources.secret(name);
    if (!data) {
      if (reference.optional) continue;
      throw new Error(`${kind} "${name}" not found`);
    }
    for (const [key, value] of data) env[`${from.prefix ?? ''}${key}`] = rewrite(value.toString('utf8'));
  }
  for (const variable of container.env ?? []) {
    const value = variable.valueFrom
      ? await envValueFrom(variable.valueFrom, sources)
      : expandVariables(variable.value ?? '', env);
    if (value !== undefined) env[variable.name] = rewrite(value);
  }
  return env;
}

async function envValueFrom(source: k8s.V1EnvVarSource, sources: PodSources): Promise<string | undefined> {
  if (source.fieldRef) return sources.field(source.fieldRef.fieldPath);
  const keyRef = source.secretKeyRef ?? source.configMapKeyRef;
  if (!keyRef) throw new Error('only value, secretKeyRef, configMapKeyRef and fieldRef env vars are supported by the node emulator');
  const kind = source.secretKeyRef ? 'Secret' : 'ConfigMap';
  const name = keyRef.name ?? '';
  const data = source.secretKeyRef ? await sources.secret(name) : await sources.configMap(name);
  const value = data?.get(keyRef.key);
  if (value !== undefined) return value.toString('utf8');
  if (keyRef.optional) return undefined;
  throw new Error(data ? `couldn't find key ${keyRef.key} in ${kind} ${sources.field('metadata.namespace')}/${name}`
    : `${kind.toLowerCase()} "${name}" not found`);
}

/** Kubernetes' `$(VAR)` expansion: known variables are replaced, `$$` is a literal `$`. */
export function expandVariables(text: string, env: Record<string, string>): string {
  return text.replace(/\$(\$|\(([A-Za-z_][A-Za-z0-9_.-]*)\))/g, (match, escapedOrReference: string, name: string | undefined) => {
    if (escapedOrReference === '$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? env[name] ?? match : match;
  });
}

/**
 * Replaces container paths by host paths in a string, whole path components only, longest
 * first, in one pass (a host path under a mount path, e.g. /tmp, is never rewritten twice).
 */
export function pathRewriter(pairs: readonly (readonly [string, string])[]): (text: string) => string {
  const targets = new Map(pairs
    .map(([from, to]) => [from.length > 1 ? from.replace(/\/+$/, '') : from, to] as const)
    .filter(([from]) => from.length > 1));
  if (targets.size === 0) return (text) => text;
  const alternatives = [...targets.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(`(?<![\\w.-])(?:${alternatives.join('|')})(?![\\w.-])`, 'g');
  return (text) => text.replace(pattern, (match) => targets.get(match) ?? match);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
