/**
 * What decide() looks at: the run and everything the gatherer observed about it. Plain data,
 * assembled by the reconciler from caches, the journal and this process's in-flight calls.
 */
import type { AgentRun } from '../api/agent-run.ts';
import type { AgentToolSpec } from '../api/agent-tool.ts';
import type { Reason } from '../api/conditions.ts';
import type { ModelEndpointSpec } from '../api/model-endpoint.ts';
import type { DiscoveredTool, MCPServerSpec } from '../api/mcp-server.ts';
import type { AccessRequirement } from './access.ts';
import type { MCPTaskHandle, ModelResponse, RecordedEntry, ResolvedTool } from '../api/journal-entry.ts';
import type { ModelFailure } from './policies.ts';

/** A journal object the run cannot use: missing where status points, or not the operator's own entry. */
export interface JournalProblem {
  readonly reason: typeof Reason.JournalTampered | typeof Reason.JournalCorrupted;
  readonly problem: string;
}

/** What the apiserver said about the run creator's right to what the run uses (core/access.ts). */
export type AccessObservation =
  | { readonly state: 'allowed' }
  | { readonly state: 'denied'; readonly user: string; readonly denied: readonly AccessRequirement[] }
  /** No admission policy recorded who created the run, and the operator requires it. */
  | { readonly state: 'unknown-creator' };

/** One tool pod as last seen: still there, or gone (then its last known state). */
export interface PodObservation {
  readonly name: string;
  readonly exists: boolean;
  readonly phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  /** A container was seen running or terminated: the tool may have had side effects. */
  readonly started: boolean;
  readonly terminated?: { exitCode: number; reason?: string; message?: string; finishedAt?: string };
  /**
   * Why the tool container is not running yet, as the kubelet says (ErrImagePull, ImagePullBackOff,
   * InvalidImageName, CreateContainerConfigError, ContainerCreating…), with its message.
   */
  readonly waiting?: { readonly reason: string; readonly message?: string };
  /** The scheduler's message while the pod cannot be placed on any node (PodScheduled=False, Unschedulable). */
  readonly unschedulable?: string;
  /** Pod-level reason, e.g. DeadlineExceeded, Evicted. */
  readonly reason?: string;
  readonly message?: string;
  /** Marked for deletion (by anyone) or disrupted (node lost, eviction). */
  readonly deleting: boolean;
  /** The pod's node is gone or it is being evicted (DisruptionTarget): its container reports nothing more. */
  readonly disrupted?: boolean;
  /** The operator's tool-pod finalizer is still on the pod: releasing it lets the pod go. */
  readonly finalizerHeld?: boolean;
  /**
   * The container ended non-zero while the pod was being deleted or disrupted: it was killed, so
   * its exit code and output say nothing about the tool.
   */
  readonly interrupted?: boolean;
}

/** Where the model call of a step stands in this process: in flight, answered, or failed. */
export type ModelCallObservation =
  | { readonly state: 'in-flight'; readonly attempt: number }
  | { readonly state: 'succeeded'; readonly attempt: number; readonly response: ModelResponse }
  | { readonly state: 'failed'; readonly attempt: number; readonly failure: ModelFailure };

/** How one MCP call ended, as the adapter classified it (text already cut to maxToolOutputBytes). */
export interface MCPCallResult {
  /**
   * result: a tool result; tool-error: a result with isError; unknown-tool: the server does not
   * have the tool; protocol-error: a JSON-RPC error; timeout: the tool's timeout passed;
   * not-sent: the call never reached the server (no connection, no MCPServer, no Secret);
   * transport-error: the connection broke after the call was sent; task-lost: the server no longer
   * knows the MCP task or its session (it restarted), so the task's outcome is unknown.
   */
  readonly kind: 'result' | 'tool-error' | 'unknown-tool' | 'protocol-error' | 'timeout' | 'not-sent'
    | 'transport-error' | 'task-lost';
  readonly text: string;
  readonly truncated: boolean;
}

/**
 * Where the MCP call of a step stands in this process: in flight, a task the server created
 * (polled once its handle is journaled), or done with its result.
 */
export type MCPCallObservation =
  | { readonly state: 'in-flight'; readonly attempt: number }
  | { readonly state: 'task'; readonly attempt: number; readonly handle: MCPTaskHandle }
  | { readonly state: 'done'; readonly attempt: number; readonly result: MCPCallResult };

/** An MCPServer a run references: what the operator discovered, and the admin's decisions. */
export interface MCPServerObservation {
  readonly spec: MCPServerSpec;
  /** Tools from the last tools/list; undefined until the server was listed once. */
  readonly tools: readonly DiscoveredTool[] | undefined;
}

/** The output read from an ended tool pod's log, or why it could not be read. */
export type ToolOutputObservation =
  | { readonly ok: true; readonly text: string; readonly truncated: boolean }
  | { readonly ok: false; readonly error: string };

/**
 * Everything decide() sees of the world: the run, its pods, journal, model and MCP calls, and the
 * time. Gathered by the reconciler, never fetched by core/.
 */
export interface Observed {
  /** The run, parsed (spec defaults applied), with the newest resourceVersion this process knows. */
  readonly run: AgentRun & { metadata: { name: string; namespace: string; uid: string } };
  /** Milliseconds since the epoch; the only clock decide() reads. */
  readonly now: number;
  /** sha256 hex of a string: the journal digest. Pure, injected so core needs no node:crypto. */
  readonly hash: (text: string) => string;
  /** AgentTools named by the run's toolRefs (undefined: not found). */
  readonly agentTools: ReadonlyMap<string, AgentToolSpec | undefined>;
  /** The run's journaled tool definitions, once written and verified, with their digest. */
  readonly toolSnapshot?: { readonly tools: readonly ResolvedTool[]; readonly digest: string };
  /** The ModelEndpoint the run references; absent while it does not exist. */
  readonly modelEndpoint?: ModelEndpointSpec;
  /**
   * Whether the run's creator may use what the run references; absent when not checked
   * (--require-creator-identity=false).
   */
  readonly access?: AccessObservation;
  /** Journal objects that failed verification: nothing from them is used, and the run fails. */
  readonly journalProblems?: readonly JournalProblem[];
  /** Journal entries by step id: every step with a journal reference, and in-flight steps whose entry exists. */
  readonly journal: ReadonlyMap<number, RecordedEntry>;
  /** The run's tool pods by name; a pod this process never saw and that does not exist is absent. */
  readonly pods: ReadonlyMap<string, PodObservation>;
  /** This process's model calls by step id. Empty after a restart. */
  readonly modelCalls: ReadonlyMap<number, ModelCallObservation>;
  /** This process's MCP calls by step id. Empty after a restart. */
  readonly mcpCalls?: ReadonlyMap<number, MCPCallObservation>;
  /** Journaled MCP task handles of Running MCP steps, by step id (verified like every entry). */
  readonly mcpTasks?: ReadonlyMap<number, RecordedEntry>;
  /** MCPServers named by the run's mcpServerRefs (undefined: not found). */
  readonly mcpServers?: ReadonlyMap<string, MCPServerObservation | undefined>;
  /** Output of finished tool pods whose result is not journaled yet, by step id. */
  readonly toolOutputs: ReadonlyMap<number, ToolOutputObservation>;
  /** Upper bound for the serialized status, in bytes. */
  readonly statusByteBudget: number;
  /** Accept a decision only with the approver the apiserver recorded (decided-by annotation). Default true. */
  readonly requireApproverIdentity?: boolean;
  /** A write of this run the apiserver refused (413/422): it can never succeed, so the run ends. */
  readonly writeRejected?: { readonly what: string; readonly message: string };
  /** Tool pods the apiserver refused to create (413/422), by pod name, with its message. */
  readonly rejectedPods?: ReadonlyMap<string, string>;
  /** Emit a Normal Event for each succeeded step too (warnings are always emitted). Default false. */
  readonly stepEvents?: boolean;
}
