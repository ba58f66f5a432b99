/**
 * Whether a managed MCPServer can be reached, and where, from what its objects show: pure verdicts
 * the reconciler (reconciler/mcp-managed-reconcile.ts) reaches by reading only what each needs.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import type { MCPManagedSpec } from '../api/mcp-managed.ts';
import { MCPManagedReason } from '../api/mcp-managed.ts';
import { managedName, serviceUrl, type ManagedOwner } from './mcp-managed.ts';
import { IMAGE_PULL_REASONS } from './tool-steps.ts';
import type { ManagedChange } from '../ports.ts';

/**
 * How the operator reaches a managed server: `service`, the Service's DNS name (in a cluster with
 * DNS and a Service proxy); `endpoints`, a ready address of its EndpointSlices (pod IPs, routable
 * from the nodes; what the local cluster, which has neither kube-proxy nor DNS, needs).
 */
export type ManagedAddressMode = 'service' | 'endpoints';

/** The outcome: a URL to check with initialize, or why there is none yet. */
export type ManagedState =
  | { readonly kind: 'reachable'; readonly url: string; readonly changes: ManagedChange[] }
  | { readonly kind: 'not-ready'; readonly reason: string; readonly message: string;
    readonly changes: ManagedChange[] };

/** A waiting or crashing container of the server's pod, as the reconciler found it. */
export interface ManagedPodProblem {
  readonly reason: string;
  readonly message: string;
}

/** Creating or updating the owned objects failed: nothing else can be known. */
export function applyFailed(problem: string): ManagedState {
  return {
    kind: 'not-ready',
    reason: MCPManagedReason.ApplyFailed,
    changes: [],
    message: "creating or updating the server's Deployment, Service or NetworkPolicy failed: "
      + `${problem.slice(0, 500)}. `
      + "Fix: check the operator's RBAC (chart rbac.yaml) and the namespace's quotas and admission policies.",
  };
}

/** Whether the Deployment has a replica available at its current generation. */
export function deploymentAvailable(deployment: V1Deployment): boolean {
  const generation = deployment.metadata?.generation ?? 0;
  return (deployment.status?.availableReplicas ?? 0) >= 1
    && (deployment.status?.observedGeneration ?? 0) >= generation;
}

/** Why a server whose Deployment has no available replica is not ready, from its pod's problem (if any). */
export function unavailable(owner: ManagedOwner, spec: MCPManagedSpec, problem: ManagedPodProblem | undefined,
  changes: ManagedChange[]): ManagedState {
  if (problem && IMAGE_PULL_REASONS.has(problem.reason)) {
    return {
      kind: 'not-ready',
      reason: MCPManagedReason.ImagePullFailed,
      changes,
      message: `image ${spec.image} cannot be pulled (${problem.reason}): ${problem.message.slice(0, 1024)}. `
        + 'Fix: spec.managed.image must name an image the nodes can pull.',
    };
  }
  if (problem) {
    return {
      kind: 'not-ready',
      reason: MCPManagedReason.ServerCrashing,
      changes,
      message: `the server's container is not running (${problem.reason}): ${problem.message.slice(0, 1024)}. `
        + `Fix: check spec.managed command, args and env (kubectl logs deployment/${managedName(owner.name)}).`,
    };
  }
  return {
    kind: 'not-ready',
    reason: MCPManagedReason.Deploying,
    changes,
    message: `Deployment ${managedName(owner.name)} has no available replica yet.`,
  };
}

/**
 * Where an available server is reached: its Service's name, or (endpoints mode) the lowest ready
 * address behind it, so that every reconcile picks the same one.
 */
export function reachable(owner: ManagedOwner, spec: MCPManagedSpec, mode: ManagedAddressMode,
  readyAddresses: readonly string[], changes: ManagedChange[]): ManagedState {
  if (mode === 'service') return { kind: 'reachable', url: serviceUrl(owner, spec), changes };
  const address = [...readyAddresses].sort()[0];
  if (address === undefined) {
    return {
      kind: 'not-ready',
      reason: MCPManagedReason.Deploying,
      changes,
      message: `Service ${managedName(owner.name)} has no ready endpoint yet.`,
    };
  }
  const host = address.includes(':') ? `[${address}]` : address;
  return { kind: 'reachable', url: `http://${host}:${spec.port}${spec.path}`, changes };
}
