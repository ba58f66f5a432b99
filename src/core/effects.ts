/**
 * What decide() asks the world to do. The reconciler performs them in the durable order that
 * core/execution-plan.ts declares: finalizer → journal → (pods and model calls ‖ status) → the rest.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentRunStatus } from '../api/agent-run.ts';
import type { EventReason } from '../api/conditions.ts';
import type { JournalEntry, MCPTaskHandle } from '../api/journal-entry.ts';
import type { ModelRequest } from './conversation.ts';

/** One side effect decide() asks for; the reconciler carries it out, in the order of the execution plan. */
export type Effect =
  | { readonly type: 'addFinalizer' }
  | { readonly type: 'writeJournal'; readonly name: string; readonly stepId?: number; readonly entry: JournalEntry;
    readonly digest: string }
  | { readonly type: 'createPod'; readonly stepId: number; readonly pod: V1Pod }
  /** Delete the tool pod and release its finalizer: it is still running and must stop. */
  | { readonly type: 'deletePod'; readonly name: string }
  /** Release the finalizer of an ended (or already deleting) tool pod whose outcome is recorded. */
  | { readonly type: 'releasePod'; readonly name: string }
  /** Delete the run's ended, released tool pods in one request (the run has finished). */
  | { readonly type: 'deleteEndedPods'; readonly labelSelector: string }
  | { readonly type: 'startModelCall'; readonly stepId: number; readonly attempt: number;
    readonly request: ModelRequest }
  | { readonly type: 'cancelModelCall'; readonly stepId: number }
  /** Call `tool` (its name on the server) on the MCPServer `server`: the step is Running in status first. */
  | { readonly type: 'startMCPCall'; readonly stepId: number; readonly attempt: number; readonly server: string;
    readonly tool: string; readonly input: unknown; readonly timeoutMs: number; readonly maxOutputBytes: number;
    /** Call it as an MCP task: its handle comes back for the journal before it is polled. */
    readonly task?: boolean;
    /**
     * The step is one of the answer this decision journals, which names it (mcpCallsStarted): the
     * call starts once that entry is stored, beside the status write (core/execution-plan.ts).
     */
    readonly withAnswer?: true }
  /** Poll the journaled MCP task of the attempt to its end (continue in this process, or resume after a restart). */
  | { readonly type: 'pollMCPTask'; readonly stepId: number; readonly attempt: number; readonly server: string;
    readonly tool: string; readonly handle: MCPTaskHandle; readonly timeoutMs: number; readonly maxOutputBytes: number }
  | { readonly type: 'event'; readonly eventType: 'Normal' | 'Warning'; readonly reason: EventReason;
    readonly message: string }
  | { readonly type: 'removeFinalizer' }
  | { readonly type: 'deleteRun' };

/** What one decide() call returns: the next status, the effects, and when to look again. */
export interface Decision {
  /** The complete next status; the reconciler writes it only when it differs from the current one. */
  readonly status: AgentRunStatus;
  readonly effects: readonly Effect[];
  /** Look again after this long even if nothing changes (retry timers, deadlines, TTL). */
  readonly requeueAfterMs?: number;
}
