/**
 * One reconcile of a managed MCPServer's objects: create or restore the Deployment, Service and
 * NetworkPolicy, read what the verdict needs (the pod's problem only when no replica is available,
 * ready addresses only in endpoints mode), and let core/mcp-managed-state.ts say where the server
 * can be reached or why it cannot. The caller then checks that the address answers `initialize`
 * (mcp-server-reconciler.ts), which is what makes it Ready.
 */
import type { MCPManagedSpec } from '../api/mcp-managed.ts';
import { buildManagedObjects, managedName, managedSelector, type ManagedOwner,
  type OperatorPeer } from '../core/mcp-managed.ts';
import {
  applyFailed,
  deploymentAvailable,
  reachable,
  unavailable,
  type ManagedAddressMode,
  type ManagedState,
} from '../core/mcp-managed-state.ts';
import { describeError } from '../port-errors.ts';
import type { ManagedObjectsClient } from '../ports.ts';

/** Where the operator's pods are (for the NetworkPolicy) and how it reaches managed servers. */
export interface ManagedSettings {
  readonly peer: OperatorPeer;
  readonly address: ManagedAddressMode;
}

/** How soon a server that is deploying is looked at again (its pods are not watched). */
export const MANAGED_POLL_MS = 2_000;

/** Ensures a managed server's objects and says whether it is ready to be reached, and where. */
export async function reconcileManaged(client: ManagedObjectsClient, owner: ManagedOwner, spec: MCPManagedSpec,
  settings: ManagedSettings): Promise<ManagedState> {
  let ensured;
  try {
    ensured = await client.ensure(buildManagedObjects(owner, spec, settings.peer));
  } catch (error) {
    return applyFailed(describeError(error));
  }
  const { deployment, changes } = ensured;
  if (!deploymentAvailable(deployment)) {
    const selector = Object.entries(managedSelector(owner)).map(([k, v]) => `${k}=${v}`).join(',');
    const problem = await client.podProblem(owner.namespace, selector).catch(() => undefined);
    return unavailable(owner, spec, problem, changes);
  }
  const addresses = settings.address === 'endpoints'
    ? await client.readyAddresses(owner.namespace, managedName(owner.name))
    : [];
  return reachable(owner, spec, settings.address, addresses, changes);
}
