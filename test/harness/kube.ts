/** Kubernetes clients and small helpers for integration tests. Each test file works in its own namespace. */
import * as k8s from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kubectl as runKubectl, type ClusterInfo } from './control-plane.ts';
import { createUniqueNamespace, until } from './own-cluster.ts';

export function cluster(): ClusterInfo {
  return inject('cluster');
}

export function kubeConfig(path = cluster().kubeconfig): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface Clients {
  readonly kc: k8s.KubeConfig;
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly objects: k8s.KubernetesObjectApi;
}

export function clients(path?: string): Clients {
  const kc = kubeConfig(path);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
  };
}

/** Creates a namespace with a unique name (labelled with its test) and returns it. */
export async function createNamespace(prefix: string, core = clients().core): Promise<string> {
  return createUniqueNamespace(core, prefix, { 'agentrun.dev/test': prefix });
}

/** The real kubectl against the test cluster (admin unless another kubeconfig is given). */
export function kubectl(args: readonly string[], options: { input?: string; kubeconfig?: string } = {}) {
  return runKubectl(options.kubeconfig ?? cluster().kubeconfig, args, options.input);
}

/** Parses a multi-document YAML string into objects. */
export function parseYaml(text: string): k8s.KubernetesObject[] {
  return parseAllDocuments(text).map((d) => d.toJSON() as k8s.KubernetesObject).filter(Boolean);
}

/** The status code of a client-node ApiException, or undefined. */
export function statusCode(error: unknown): number | undefined {
  return error instanceof k8s.ApiException ? error.code : undefined;
}

/** Polls `fn` until it returns a value that is not undefined (the apiserver is the clock here). */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return until(what, fn, timeoutMs, 100);
}

/** An AgentRunJournal object as stored, for tests that look at the journal itself. */
export interface StoredJournal {
  metadata: { name: string; ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[]; labels?: Record<string, string> };
  spec: { run: { name: string; uid: string }; step: number; kind: string; entry: string };
}

const journals = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentrunjournals' } as const;

/** Reads one journal object. */
export async function readJournal(namespace: string, name: string, custom = clients().custom): Promise<StoredJournal> {
  return await custom.getNamespacedCustomObject({ ...journals, namespace, name }) as StoredJournal;
}

/** The parsed entry a journal object holds. */
export async function journalEntryOf(namespace: string, name: string): Promise<Record<string, unknown>> {
  return JSON.parse((await readJournal(namespace, name)).spec.entry) as Record<string, unknown>;
}

/** Journal objects of a namespace matching a label selector. */
export async function listJournals(namespace: string, labelSelector?: string, custom = clients().custom): Promise<StoredJournal[]> {
  const list = await custom.listNamespacedCustomObject({ ...journals, namespace, ...(labelSelector ? { labelSelector } : {}) }) as { items: StoredJournal[] };
  return list.items;
}
