/**
 * One reconcile of a managed MCPServer's objects: create or restore the Deployment, Service and
 * NetworkPolicy, then say where the server can be reached, or why it cannot (image pull failure,
 * crashing server, no available replica). The caller then checks that the address answers
 * `initialize` (mcp-server-reconciler.ts), which is what makes it Ready.
 */
import type { MCPManagedSpec } from '../api/mcp-managed.ts';
import { MCPManagedReason } from '../api/mcp-managed.ts';
import {
  buildManagedObjects,
  managedName,
  managedSelector,
  serviceUrl,
  type ManagedOwner,
  type OperatorPeer,
} from '../core/mcp-managed.ts';
import { IMAGE_PULL_REASONS } from '../core/tool-steps.ts';
import { describeError } from '../port-errors.ts';
import type { ManagedObjectsClient } from '../ports.ts';

/**
 * How the operator reaches a managed server: `service`, the Service's DNS name (in a cluster with
 * DNS and a Service proxy); `endpoints`, a ready address of its EndpointSlices (pod IPs, routable
 * from the nodes; what the local cluster, which has neither kube-proxy nor DNS, needs).
 */
export type ManagedAddressMode = 'service' | 'endpoints';

/** Where the operator's pods are (for the NetworkPolicy) and how it reaches managed servers. */
export interface ManagedSettings {
  readonly peer: OperatorPeer;
  readonly address: ManagedAddressMode;
}

/** The outcome: a URL to check with initialize, or why there is none yet. */
export type ManagedState =
  | { readonly kind: 'reachable'; readonly url: string; readonly changes: string[] }
  | { readonly kind: 'not-ready'; readonly reason: string; readonly message: string; readonly changes: string[] };

/** How soon a server that is deploying is looked at again (its pods are not watched). */
export const MANAGED_POLL_MS = 2_000;

/** Ensures a managed server's objects and says whether it is ready to be reached, and where. */
export async function reconcileManaged(client: ManagedObjectsClient, owner: ManagedOwner, spec: MCPManagedSpec,
  settings: ManagedSettings): Promise<ManagedState> {
  let ensured;
  try {
    ensured = await client.ensure(buildManagedObjects(owner, spec, settings.peer));
  } catch (error) {
    return { kind: 'not-ready', reason: MCPManagedReason.ApplyFailed, changes: [],
      message: "creating or updating the server's Deployment, Service or NetworkPolicy failed: "
        + `${describeError(error).slice(0, 500)}. `
        + "Fix: check the operator's RBAC (chart rbac.yaml) and the namespace's quotas and admission policies." };
  }
  const { deployment, changes } = ensured;
  const generation = deployment.metadata?.generation ?? 0;
  const available = (deployment.status?.availableReplicas ?? 0) >= 1
    && (deployment.status?.observedGeneration ?? 0) >= generation;
  if (!available) {
    const selector = Object.entries(managedSelector(owner)).map(([k, v]) => `${k}=${v}`).join(',');
    const problem = await client.podProblem(owner.namespace, selector).catch(() => undefined);
    if (problem && IMAGE_PULL_REASONS.has(problem.reason)) {
      return { kind: 'not-ready', reason: MCPManagedReason.ImagePullFailed, changes,
        message: `image ${spec.image} cannot be pulled (${problem.reason}): ${problem.message.slice(0, 1024)}. `
          + 'Fix: spec.managed.image must name an image the nodes can pull.' };
    }
    if (problem) {
      return { kind: 'not-ready', reason: MCPManagedReason.ServerCrashing, changes,
        message: `the server's container is not running (${problem.reason}): ${problem.message.slice(0, 1024)}. `
          + `Fix: check spec.managed command, args and env (kubectl logs deployment/${managedName(owner.name)}).` };
    }
    return { kind: 'not-ready', reason: MCPManagedReason.Deploying, changes,
      message: `Deployment ${managedName(owner.name)} has no available replica yet.` };
  }
  if (settings.address === 'service') return { kind: 'reachable', url: serviceUrl(owner, spec), changes };
  const addresses = await client.readyAddresses(owner.namespace, managedName(owner.name));
  const address = addresses.sort()[0];
  if (address === undefined) {
    return { kind: 'not-ready', reason: MCPManagedReason.Deploying, changes,
      message: `Service ${managedName(owner.name)} has no ready endpoint yet.` };
  }
  const host = address.includes(':') ? `[${address}]` : address;
  return { kind: 'reachable', url: `http://${host}:${spec.port}${spec.path}`, changes };
}
