/**
 * Condition types and reasons the operator reports on an AgentRun. Each reason has one line of
 * documentation that troubleshooting docs and Events reuse.
 */

/** The condition types an AgentRun reports. */
export const ConditionType = {
  /** The batch condition: Unknown while the run runs, True when it succeeded, False when it ended otherwise. */
  Succeeded: 'Succeeded',
  /** True while at least one step waits for a human decision. */
  AwaitingApproval: 'AwaitingApproval',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** Why a run is where it is. */
export const Reason = {
  // in progress (Succeeded=Unknown)
  Pending: 'Pending', // accepted, nothing started yet
  Running: 'Running', // a model call or tool pods are in flight
  ModelRetrying: 'ModelRetrying', // the model API failed transiently; the next attempt is scheduled
  WaitingForAgentTool: 'WaitingForAgentTool', // a toolRef names an AgentTool that does not exist yet
  WaitingForModelEndpoint: 'WaitingForModelEndpoint', // spec.model.endpointRef names a ModelEndpoint not there yet
  // an mcpServerRef names an MCPServer that does not exist or has not listed its tools yet
  WaitingForMCPServer: 'WaitingForMCPServer',
  Suspended: 'Suspended', // spec.suspend is set; nothing new starts
  ApprovalRequired: 'ApprovalRequired', // a step waits for a human decision (AwaitingApproval=True)
  NoApprovalPending: 'NoApprovalPending', // no step waits for a decision (AwaitingApproval=False)
  // succeeded (Succeeded=True)
  Completed: 'Completed', // the model ended its turn with a final answer
  // ended otherwise (Succeeded=False)
  Cancelled: 'Cancelled', // spec.cancel was set
  DeadlineExceeded: 'DeadlineExceeded', // limits.timeout passed before the run finished
  MaxTurnsReached: 'MaxTurnsReached', // limits.maxTurns model calls were made without a final answer
  TokenBudgetExceeded: 'TokenBudgetExceeded', // limits.maxTotalTokens was used up
  ModelRequestInvalid: 'ModelRequestInvalid', // the model API refused the request (400)
  ModelAuthenticationFailed: 'ModelAuthenticationFailed', // the API key was refused (401)
  ModelPermissionDenied: 'ModelPermissionDenied', // the API key may not use this model (403)
  ModelNotFound: 'ModelNotFound', // the model or endpoint does not exist (404)
  ModelRefused: 'ModelRefused', // the model declined to answer (stop_reason refusal)
  MaxTokensReached: 'MaxTokensReached', // one response hit model.maxTokens and was cut off
  ContextWindowExceeded: 'ContextWindowExceeded', // the conversation no longer fits the model's context window
  UnexpectedStopReason: 'UnexpectedStopReason', // the model stopped for a reason this operator does not know
  ApprovalRejected: 'ApprovalRejected', // a human rejected a step and approvals.onReject is Fail
  ApprovalTimedOut: 'ApprovalTimedOut', // no decision within limits.approvalTimeout and approvals.onTimeout is Fail
  StatusTooLarge: 'StatusTooLarge', // the run's status would exceed its byte budget
  JournalCorrupted: 'JournalCorrupted', // a journal entry the status names is missing or unreadable
  AccessDenied: 'AccessDenied', // the run's creator may not use an object it references (Secret, ModelEndpoint, ...)
  CreatorUnknown: 'CreatorUnknown', // no admission policy recorded the run's creator, so it may use nothing it names
  ModelNotAllowed: 'ModelNotAllowed', // the ModelEndpoint does not allow the run's model or maxTokens
  // an object at a journal name is not the operator's own entry (owner, run, step or digest differ)
  JournalTampered: 'JournalTampered',
  // a tool's inputSchema is not a valid JSON object schema (the message names the tool and the error)
  InvalidToolDefinition: 'InvalidToolDefinition',
  // a model response exceeded the bytes the operator reads or a journal entry holds
  ModelResponseTooLarge: 'ModelResponseTooLarge',
  // a model response cannot be recorded: too many tool calls, bad tool_use ids or names, too deeply nested
  ModelResponseInvalid: 'ModelResponseInvalid',
  WriteRejected: 'WriteRejected', // the apiserver refused a write as too large or invalid (413/422); a retry can't help
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Reasons only Events carry, beside the run's condition reasons (which Events reuse). */
export const EventOnlyReason = {
  Started: 'Started', // the run began: its model and tool count
  Succeeded: 'Succeeded', // the run gave its final answer
  ModelResponded: 'ModelResponded', // a model step answered (only with --step-events)
  ToolSucceeded: 'ToolSucceeded', // a tool step completed (only with --step-events)
  ToolFailed: 'ToolFailed', // a tool step ended with an error result the model sees
  ToolRetrying: 'ToolRetrying', // a tool pod failed before its tool ran, or vanished; the next attempt starts
  MCPTaskResumed: 'MCPTaskResumed', // a restarted operator polls the journaled MCP task again (not re-issued)
  Approved: 'Approved', // a waiting step was approved, by whom
  Rejected: 'Rejected', // a waiting step was rejected, by whom
  ApprovalTimedOut: 'ApprovalTimedOut', // nobody decided within limits.approvalTimeout
  DecisionIgnored: 'DecisionIgnored', // an approve/reject annotation that changes nothing, and why
  // with --tracing: the traceparent annotation is not W3C; the run traces on its own
  InvalidTraceparent: 'InvalidTraceparent',
} as const;

/** Every reason an Event of the operator may carry. */
export type EventReason = Reason | (typeof EventOnlyReason)[keyof typeof EventOnlyReason];

/** Step outcomes, recorded in status.steps[].outcome. */
export const StepOutcome = {
  Completed: 'Completed', // model answered, or tool exited 0
  ToolError: 'ToolError', // the tool exited non-zero; the model got its output as an error result
  TimedOut: 'TimedOut', // the tool ran past its timeout
  UnknownTool: 'UnknownTool', // the model called a tool the run does not have
  InvalidInput: 'InvalidInput', // the input failed the tool's inputSchema; no pod was created
  PodLost: 'PodLost', // the pod vanished or its node failed and the tool is not idempotent
  RetriesExhausted: 'RetriesExhausted', // infrastructure failures used up the tool's retries
  ResultUnavailable: 'ResultUnavailable', // the pod finished but its output could not be read
  ImagePullFailed: 'ImagePullFailed', // the tool's image could not be pulled (or its name is invalid); no container ran
  // the container could not be configured (a missing Secret or ConfigMap key); no container ran
  ContainerConfigError: 'ContainerConfigError',
  Cancelled: 'Cancelled', // the run was cancelled or failed while the step was in flight
  Rejected: 'Rejected', // a human rejected the call (or no one decided in time); the model was told
  PodRejected: 'PodRejected', // the apiserver refused to create the tool's pod (413/422); the model was told
  Interrupted: 'Interrupted', // an MCP call was in flight when the operator stopped; not idempotent, so not repeated
  MCPProtocolError: 'MCPProtocolError', // the MCP server answered the call with a JSON-RPC error (not a tool result)
  MCPUnreachable: 'MCPUnreachable', // the MCP server could not be reached, or the connection broke during the call
  ToolUnavailable: 'ToolUnavailable', // the MCP server no longer offers the tool the run resolved at its start
} as const;
export type StepOutcome = (typeof StepOutcome)[keyof typeof StepOutcome];

/** The finalizer that lets the operator stop tool pods before a run disappears. */
export const FINALIZER = 'agentrun.dev/cleanup';

/**
 * The finalizer on every tool pod: a pod cannot vanish before the operator has seen how it ended,
 * so "it ran and was deleted" can never be mistaken for "it was never created" — not even when
 * the pod is deleted while the operator is down.
 */
export const TOOL_POD_FINALIZER = 'agentrun.dev/tool-result';

/** Labels on objects the operator owns. */
export const Label = {
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  /** The run's name, shortened to 63 characters: for people; never select by it (names collide). */
  run: 'agentrun.dev/run',
  /** The run's UID: what selectors use, since two runs never share one. */
  runUid: 'agentrun.dev/run-uid',
  step: 'agentrun.dev/step',
  attempt: 'agentrun.dev/attempt',
} as const;
/** Value of the managed-by label on every object the operator creates. */
export const MANAGED_BY = 'agentrun-operator';
