/**
 * Small pure policies: how model failures are classified, how long to back off, and where a
 * run's limits are. Each returns a value; none of them acts.
 */
import type { ModelEndpointSpec } from '../api/model-endpoint.ts';
import { parseDurationMs } from '../api/primitives.ts';
import type { AgentRunSpec } from '../api/agent-run.ts';
import { Reason } from '../api/conditions.ts';

/** A failed model call, as the model adapter reports it. */
export type ModelFailure =
  | { kind: 'http'; status: number; errorType?: string; message: string; retryAfterMs?: number; requestId?: string }
  | { kind: 'timeout' | 'connection' | 'invalid-response'; message: string }
  | { kind: 'api-key-unavailable'; message: string }
  /** The key read from the Secret cannot travel in a header (newline, control or non-ASCII characters): not sent. */
  | { kind: 'api-key-malformed'; message: string }
  /** The endpoint sent more than the operator reads (--max-model-response-bytes); the rest was not read. */
  | { kind: 'response-too-large'; limitBytes: number; message: string };

/**
 * How a model failure is handled: retried (with an optional wait), or fatal with the run's reason
 * and a message that says what to fix.
 */
export type FailureClass =
  | { retryable: true; errorClass: string; message: string; retryAfterMs?: number }
  | { retryable: false; reason: Reason; errorClass: string; message: string };

/** Decides whether a model failure is worth retrying, and says what to fix when it is not. */
export function classifyModelFailure(failure: ModelFailure, spec: AgentRunSpec,
  endpoint?: ModelEndpointSpec): FailureClass {
  switch (failure.kind) {
    case 'timeout':
      return { retryable: true, errorClass: 'Timeout', message: failure.message };
    case 'connection':
      return { retryable: true, errorClass: 'ConnectionError', message: failure.message };
    case 'invalid-response':
      return { retryable: true, errorClass: 'InvalidResponse', message: failure.message };
    case 'api-key-unavailable':
      return { retryable: true, errorClass: 'APIKeyUnavailable', message: failure.message };
    case 'api-key-malformed': {
      const secret = endpoint?.apiKeySecretRef;
      return { retryable: false, reason: Reason.ModelAuthenticationFailed, errorClass: 'APIKeyMalformed',
        message: `The API key of ModelEndpoint ${spec.model.endpointRef.name} `
          + `(Secret ${secret?.name ?? '?'}, key ${secret?.key ?? '?'}) contains characters an HTTP header cannot `
          + 'carry (a line break, control or non-ASCII characters), so it was not sent. Its admin must put the key '
          + 'alone, on one line, in that Secret; then create the run again.' };
    }
    case 'response-too-large':
      return { retryable: false, reason: Reason.ModelResponseTooLarge, errorClass: 'ResponseTooLarge',
        message: `The model API's response exceeded ${failure.limitBytes} bytes (--max-model-response-bytes); `
          + 'the operator stopped reading it. Lower spec.model.maxTokens, or check what the endpoint answers.' };
    case 'http':
      return classifyHttp(failure, spec, endpoint);
  }
}

function classifyHttp(f: Extract<ModelFailure, { kind: 'http' }>, spec: AgentRunSpec,
  endpointSpec: ModelEndpointSpec | undefined): FailureClass {
  const said = `${f.status}${f.errorType ? ` ${f.errorType}` : ''}: ${f.message}`;
  const transient = (errorClass: string): FailureClass => ({
    retryable: true,
    errorClass,
    message: said,
    ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
  });
  if (f.status === 429) return transient('RateLimited');
  if (f.status === 529) return transient('Overloaded');
  if (f.status === 408 || f.status === 409) return transient('Timeout');
  if (f.status >= 500) return transient('ServerError');
  const endpoint = `ModelEndpoint ${spec.model.endpointRef.name}`;
  const secret = endpointSpec?.apiKeySecretRef;
  const keySecret = secret ? ` (Secret ${secret.name}, key ${secret.key})` : ' (it names no key Secret)';
  const keyWhere = `the API key of ${endpoint}${keySecret}`;
  switch (f.status) {
    case 401:
      return { retryable: false, reason: Reason.ModelAuthenticationFailed, errorClass: 'AuthenticationFailed',
        message: `The model API refused ${keyWhere} (${said}). The admin who manages ${endpoint} must put a valid `
          + 'API key in its Secret; then create the run again.' };
    case 403:
      return { retryable: false, reason: Reason.ModelPermissionDenied, errorClass: 'PermissionDenied',
        message: `The model API denied ${keyWhere} access to model ${spec.model.name} (${said}). `
          + 'Use a key with access or another spec.model.name.' };
    case 404:
      return { retryable: false, reason: Reason.ModelNotFound, errorClass: 'NotFound',
        message: `The model API of ${endpoint} does not know model ${spec.model.name} (${said}). `
          + "Check spec.model.name, and the endpoint's baseURL." };
    default:
      return { retryable: false, reason: Reason.ModelRequestInvalid, errorClass: 'InvalidRequest',
        message: `The model API refused the request (${said}). Check spec.model and the tools' inputSchema.` };
  }
}

/** Wait before retry `attempt` (1-based): exponential from the run's policy, never below retry-after. */
export function backoffMs(spec: AgentRunSpec, attempt: number, retryAfterMs?: number): number {
  const { initialBackoff, backoffFactor, maxBackoff } = spec.modelRetry;
  const exponential = parseDurationMs(initialBackoff) * backoffFactor ** Math.max(0, attempt - 1);
  const capped = Math.min(exponential, parseDurationMs(maxBackoff));
  return Math.max(capped, retryAfterMs ?? 0);
}

/** When the run must be finished by (ms since epoch). */
export function runDeadline(spec: AgentRunSpec, startTime: string): number {
  return Date.parse(startTime) + parseDurationMs(spec.limits.timeout);
}

/** A run limit that stops further model calls, and what to do about it. */
export type LimitReached = { reason: Reason; message: string };

/**
 * Why no further model call may start, or undefined when one may. Each approved extension grants
 * the run its limits once more (another maxTurns turns, another maxTotalTokens tokens).
 */
export function exhaustedLimit(spec: AgentRunSpec, turnsDone: number, tokensUsed: number, extensions = 0): LimitReached
  | undefined {
  const maxTurns = spec.limits.maxTurns * (1 + extensions);
  const extended = extensions ? ` with ${extensions} extensions` : '';
  if (turnsDone >= maxTurns) {
    return { reason: Reason.MaxTurnsReached,
      message: `The run made ${turnsDone} model calls (limits.maxTurns${extended}) without a final answer. `
        + 'Raise limits.maxTurns or narrow the task.' };
  }
  const budget = spec.limits.maxTotalTokens === undefined ? undefined : spec.limits.maxTotalTokens * (1 + extensions);
  if (budget !== undefined && tokensUsed >= budget) {
    return { reason: Reason.TokenBudgetExceeded,
      message: `The run used ${tokensUsed} tokens, reaching its token budget (${budget}, `
        + `limits.maxTotalTokens${extended}). Raise the budget or narrow the task.` };
  }
  return undefined;
}

/** What approving a budget extension grants, for the human who decides. */
export function extensionOffer(spec: AgentRunSpec): string {
  const tokens = spec.limits.maxTotalTokens;
  return `another ${spec.limits.maxTurns} turns${tokens !== undefined ? ` and ${tokens} tokens` : ''}`;
}
