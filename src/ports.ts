/**
 * The operator's view of the world, as interfaces. Adapters implement them (Kubernetes, the
 * Anthropic SDK); the reconciler uses them; tests may substitute tiny fakes.
 */
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { AgentRun, AgentRunStatus } from './api/agent-run.ts';
import type { AgentTool } from './api/agent-tool.ts';
import type { ModelEndpoint } from './api/model-endpoint.ts';
import type { AccessRequirement } from './core/access.ts';
import type { ModelRequest } from './core/conversation.ts';
import type { ExpectedEntry, JournalEntry, JournalRead, MCPTaskHandle, ModelResponse } from './api/journal-entry.ts';
import type { MCPCallResult } from './core/observed.ts';
import type { ModelFailure } from './core/policies.ts';
import type { MCPServerSpec, MCPServerStatus } from './api/mcp-server.ts';
import type { ManagedObjects } from './core/mcp-managed.ts';
import type { ListedTool } from './core/mcp-discovery.ts';

/** An AgentRun as read from the apiserver (not yet validated). */
export type AgentRunObject = Omit<AgentRun, 'spec'> & {
  spec: unknown;
  metadata: AgentRun['metadata'] & { name: string; namespace: string; uid: string };
};

/** The run that owns something (journal entries, pods, Events). */
export interface RunOwner {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

/** Reads from the informer caches (never the apiserver). */
export interface Caches {
  run(namespace: string, name: string): AgentRunObject | undefined;
  agentTool(namespace: string, name: string): AgentTool | undefined;
  modelEndpoint(namespace: string, name: string): ModelEndpoint | undefined;
  /** An MCPServer as cached (spec not yet validated); absent in fakes that use none. */
  mcpServer?(namespace: string, name: string): { spec: unknown; status?: { discoveredTools?: unknown } } | undefined;
}

/** Checks what a run's creator may do (SubjectAccessReview). */
export interface AccessReviewer {
  /**
   * Asks the apiserver whether `user` (in `groups`) may do each requirement in `namespace`;
   * returns the denied ones.
   */
  denied(
    namespace: string,
    user: string,
    groups: readonly string[],
    requirements: readonly AccessRequirement[],
  ): Promise<AccessRequirement[]>;
}

/** Writes a run: status, finalizers, deletion. */
export interface RunWriter {
  /** Replaces the status, conditional on the run's resourceVersion; returns the new resourceVersion. */
  writeStatus(run: AgentRunObject, status: AgentRunStatus): Promise<string>;
  /** Adds the finalizer; returns the new resourceVersion. */
  addFinalizer(run: AgentRunObject, finalizer: string): Promise<string>;
  removeFinalizer(run: AgentRunObject, finalizer: string): Promise<string | undefined>;
  delete(run: RunOwner): Promise<void>;
}

/** Writes and reads a run's journal entries, verified. */
export interface JournalStore {
  /**
   * Creates the entry. When an object already holds that name, returns what is stored there,
   * verified: the operator's own entry (which wins over this one) or an untrusted object.
   */
  write(owner: RunOwner, name: string, entry: JournalEntry): Promise<JournalRead>;
  /** Reads and verifies an entry (verified entries are immutable: the reconciler caches them). */
  read(owner: RunOwner, expected: ExpectedEntry): Promise<JournalRead>;
}

/** Creates, releases and deletes tool pods, and reads their logs. */
export interface PodClient {
  /** Creates the pod and returns it; AlreadyExists means it was created before and is adopted (undefined). */
  create(pod: V1Pod): Promise<V1Pod | undefined>;
  /** Deletes the pod and releases the operator's finalizer on it. */
  delete(namespace: string, name: string): Promise<void>;
  /** Releases the operator's finalizer only: the pod has ended and stays, for `kubectl logs`, until the run ends. */
  release(namespace: string, name: string): Promise<void>;
  /** Deletes every pod matching the label selector in one request (the ended pods of a finished run). */
  deleteAll(namespace: string, labelSelector: string): Promise<void>;
  /** Up to `limitBytes` of the container's log; `truncated` when there was more. */
  readLog(
    namespace: string,
    name: string,
    container: string,
    limitBytes: number,
  ): Promise<{ text: string; truncated: boolean }>;
}

/** An object Events are recorded on: a run (the default kind) or an MCPServer. */
export interface EventSubject extends RunOwner {
  readonly kind?: 'AgentRun' | 'MCPServer';
}

/** Records an Event on a run or an MCPServer. */
export interface EventSink {
  emit(on: EventSubject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/** Reads Secret values (API keys, MCP headers). */
export interface SecretReader {
  /** The value of one key of a Secret; throws SecretUnavailableError with a message that says what to fix. */
  read(namespace: string, name: string, key: string): Promise<string>;
}

/** What a model call came to: a response, or a failure for the core to classify. */
export type ModelCallOutcome = { ok: true; response: ModelResponse } | { ok: false; failure: ModelFailure };

/** Calls a model API once (no retries: the core decides). */
export interface ModelClient {
  call(
    request: ModelRequest,
    options: { apiKey: string | undefined; baseURL: string | undefined; signal: AbortSignal },
  ): Promise<ModelCallOutcome>;
}

/**
 * Wall-clock time (epoch ms) for decisions and status timestamps; the controller runtime's
 * monotonic Clock schedules.
 */
export interface WallClock {
  now(): number;
}

/** One MCP tool call: the server (with its spec as the call starts), the tool, its input and bounds. */
export interface MCPCallRequest {
  readonly namespace: string;
  readonly server: string;
  /** The MCPServer's spec when the call starts (undefined: it no longer exists). */
  readonly spec: MCPServerSpec | undefined;
  readonly tool: string;
  readonly input: unknown;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
}

/** Calls MCP tools; every failure is returned as a classified result, never thrown. */
export interface MCPClient {
  /** Makes the call; the result says what happened (sent or not, error kinds) for the core to decide. */
  call(request: MCPCallRequest, signal: AbortSignal): Promise<MCPCallResult>;
  /**
   * Makes the call as an MCP task: once the server created it, `created(handle)` is awaited (the
   * handle is journaled meanwhile) before the task is polled to its end.
   */
  callTask(request: MCPCallRequest, signal: AbortSignal,
    created: (handle: MCPTaskHandle) => Promise<void>): Promise<MCPCallResult>;
  /** Polls a task created earlier (maybe by a previous process) on its session, to its end. */
  resumeTask(request: MCPCallRequest, handle: MCPTaskHandle, signal: AbortSignal): Promise<MCPCallResult>;
  /** Closes every open session (the operator stops). */
  close(): Promise<void>;
}

/** Writes an MCPServer's status (its discovered tools). */
export interface MCPServerStatusWriter {
  /** Replaces the status, conditional on `resourceVersion` when given. */
  write(namespace: string, name: string, resourceVersion: string | undefined, status: MCPServerStatus): Promise<void>;
}

/** One owned object ensure() created, or put back after someone changed it. */
export interface ManagedChange {
  readonly action: 'created' | 'reverted';
  /** `Kind name: created` or `Kind name: reverted a change at <path>`, for logs and Events. */
  readonly description: string;
}

/** What ensure() did to a managed MCP server's objects, for logs and Events. */
export interface EnsureResult {
  readonly deployment: V1Deployment;
  readonly changes: ManagedChange[];
}

/** A waiting or crashing container of a managed MCP server's pod. */
export interface PodProblem {
  readonly reason: string;
  readonly message: string;
}

/** The apiserver side of managed MCP servers: their owned objects, pod problems, ready addresses. */
export interface ManagedObjectsClient {
  /** Creates the Deployment, Service and NetworkPolicy, or puts back what drifted. */
  ensure(objects: ManagedObjects): Promise<EnsureResult>;
  /** Why the server's pod does not run (a waiting reason or Unschedulable), if it does not. */
  podProblem(namespace: string, labelSelector: string): Promise<PodProblem | undefined>;
  /** The ready pod addresses behind the Service (EndpointSlices). */
  readyAddresses(namespace: string, service: string): Promise<string[]>;
}

/** What the server said about itself at initialize. */
export interface MCPServerIdentity {
  readonly name?: string;
  readonly version?: string;
  readonly protocolVersion?: string;
  /** The server advertises MCP Tasks for tools/call (capabilities.tasks.requests.tools.call). */
  readonly toolTasks?: boolean;
}

/** An open session the MCPServer controller lists a server's tools on. */
export interface MCPDiscoverySession {
  readonly server: MCPServerIdentity;
  /** Every page of tools/list (a bounded number of pages), each within `timeoutMs`. */
  listTools(timeoutMs: number): Promise<ListedTool[]>;
  close(): Promise<void>;
}

/** What a discovery session tells its owner after it opened. */
export interface MCPDiscoveryEvents {
  /** The server sent notifications/tools/list_changed. */
  onToolsChanged(): void;
  /** The session closed. */
  onClose(): void;
  /** The session's stream broke (the server restarted or went away). */
  onError(): void;
}

/**
 * Opens sessions to MCP servers for discovery. A failure to open throws
 * {@link MCPUnreachableError} (port-errors.ts), saying whether a header's Secret was the cause.
 */
export interface MCPDiscovery {
  open(namespace: string, spec: MCPServerSpec, events: MCPDiscoveryEvents): Promise<MCPDiscoverySession>;
}
