/** A run whose mcpServerRefs cannot be resolved yet waits, saying for what (like a missing AgentTool). */
import { Reason } from '../api/conditions.ts';
import { STATUS_MESSAGE_MAX, event, requeueAt, truncate, type Draft } from './draft.ts';

/** Holds the run until the MCPServers exist and have listed their tools; always returns false. */
export function waitForMCPServers(d: Draft, waiting: readonly string[]): false {
  const what = waiting.join(', ');
  const message = `Waiting for ${what} in namespace ${d.o.run.metadata.namespace}: ask an admin to create it `
    + '(kubectl get mcpservers shows whether it is Ready), or fix the mcpServerRef.';
  if (d.status.message !== truncate(message, STATUS_MESSAGE_MAX))
    event(d, 'Warning', Reason.WaitingForMCPServer, message);
  d.waiting = truncate(what, 200);
  d.hold = { reason: Reason.WaitingForMCPServer, message };
  requeueAt(d, d.o.now + 30_000);
  return false;
}
