/**
 * The apiserver side of managed MCP servers: create the owned Deployment, Service and
 * NetworkPolicy or put them back when they drifted (a tenant's edit is reverted), read why the
 * server's pod is not running, and the ready addresses of its Service (EndpointSlices).
 * Verbs used, and so granted by the chart: deployments get/create/update/list/watch, services and
 * networkpolicies get/create/update, endpointslices list, pods list.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ManagedObjects } from '../../core/mcp-managed.ts';
import { driftOf } from '../../core/mcp-drift.ts';
import { isNotFound } from '../../port-errors.ts';
import type { EnsureResult, ManagedChange, ManagedObjectsClient, PodProblem } from '../../ports.ts';
import { kubeCall } from './errors.ts';

interface Kind<T extends k8s.KubernetesObject> {
  readonly kind: string;
  read(name: string, namespace: string): Promise<T>;
  create(namespace: string, body: T): Promise<T>;
  replace(name: string, namespace: string, body: T): Promise<T>;
}

/** ManagedObjectsClient on client-node; every call's failure is a port error (errors.ts). */
export class KubeManagedObjects implements ManagedObjectsClient {
  private readonly apps: k8s.AppsV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly net: k8s.NetworkingV1Api;
  private readonly discovery: k8s.DiscoveryV1Api;

  constructor(apis: {
    apps: k8s.AppsV1Api;
    core: k8s.CoreV1Api;
    net: k8s.NetworkingV1Api;
    discovery: k8s.DiscoveryV1Api;
  }) {
    this.apps = apis.apps;
    this.core = apis.core;
    this.net = apis.net;
    this.discovery = apis.discovery;
  }

  async ensure(objects: ManagedObjects): Promise<EnsureResult> {
    const changes: ManagedChange[] = [];
    const deployment = await ensureOne(objects.deployment, {
      kind: 'Deployment',
      read: (name, namespace) => this.apps.readNamespacedDeployment({ name, namespace }),
      create: (namespace, body) => this.apps.createNamespacedDeployment({ namespace, body }),
      replace: (name, namespace, body) => this.apps.replaceNamespacedDeployment({ name, namespace, body }),
    }, changes);
    await ensureOne(objects.service, {
      kind: 'Service',
      read: (name, namespace) => this.core.readNamespacedService({ name, namespace }),
      create: (namespace, body) => this.core.createNamespacedService({ namespace, body }),
      replace: (name, namespace, body) => this.core.replaceNamespacedService({ name, namespace, body }),
    }, changes);
    await ensureOne(objects.networkPolicy, {
      kind: 'NetworkPolicy',
      read: (name, namespace) => this.net.readNamespacedNetworkPolicy({ name, namespace }),
      create: (namespace, body) => this.net.createNamespacedNetworkPolicy({ namespace, body }),
      replace: (name, namespace, body) => this.net.replaceNamespacedNetworkPolicy({ name, namespace, body }),
    }, changes);
    return { deployment, changes };
  }

  async podProblem(namespace: string, labelSelector: string): Promise<PodProblem | undefined> {
    const pods = await kubeCall(() => this.core.listNamespacedPod({ namespace, labelSelector, limit: 10 }));
    for (const pod of pods.items) {
      for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
        const waiting = c.state?.waiting;
        if (waiting?.reason && waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') {
          const last = c.lastState?.terminated;
          const exited = last ? ` (last exit code ${last.exitCode}${last.reason ? `, ${last.reason}` : ''})` : '';
          return { reason: waiting.reason, message: `${waiting.message ?? ''}${exited}`.trim() };
        }
      }
      const unschedulable = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
      if (unschedulable) {
        return { reason: unschedulable.reason ?? 'Unschedulable', message: unschedulable.message ?? '' };
      }
    }
    return undefined;
  }

  async readyAddresses(namespace: string, service: string): Promise<string[]> {
    const labelSelector = `kubernetes.io/service-name=${service}`;
    const slices = await kubeCall(() => this.discovery.listNamespacedEndpointSlice({ namespace, labelSelector }));
    return slices.items.flatMap((s) =>
      (s.endpoints ?? [])
        .filter((e) => e.conditions?.ready === true).flatMap((e) => e.addresses.slice(0, 1))
    );
  }
}

/** Creates the object, or replaces it when the apiserver's copy lacks what the operator wants. */
async function ensureOne<T extends k8s.KubernetesObject>(desired: T, api: Kind<T>,
  changes: ManagedChange[]): Promise<T> {
  const name = desired.metadata?.name ?? '';
  const namespace = desired.metadata?.namespace ?? '';
  let actual: T;
  try {
    actual = await kubeCall(() => api.read(name, namespace));
  } catch (error) {
    if (!isNotFound(error)) throw error;
    changes.push({ action: 'created', description: `${api.kind} ${name}: created` });
    return await kubeCall(() => api.create(namespace, desired));
  }
  const wanted = {
    metadata: { labels: desired.metadata?.labels, ownerReferences: desired.metadata?.ownerReferences },
    spec: (desired as { spec?: unknown }).spec,
  };
  const drift = driftOf(wanted, actual);
  if (drift === undefined) return actual;
  changes.push({ action: 'reverted', description: `${api.kind} ${name}: reverted a change at ${drift}` });
  // A whole replace, under the resourceVersion read: a concurrent edit makes this fail and retry.
  return await kubeCall(() =>
    api.replace(name, namespace, Object.assign({}, desired, {
      metadata: Object.assign({}, desired.metadata, { resourceVersion: actual.metadata?.resourceVersion }),
    }))
  );
}
