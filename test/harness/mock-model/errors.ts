/**
 * API error answers: the error type each HTTP status carries, and error outcomes.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject } from './request-parsing.ts';
import type { ApiErrorType, FailureSpec } from './types.ts';

const ERROR_TYPE_BY_STATUS: ReadonlyMap<number, ApiErrorType> = new Map([
  [400, 'invalid_request_error'],
  [401, 'authentication_error'],
  [402, 'billing_error'],
  [403, 'permission_error'],
  [404, 'not_found_error'],
  [413, 'request_too_large'],
  [429, 'rate_limit_error'],
  [504, 'timeout_error'],
  [529, 'overloaded_error'],
]);

const DEFAULT_ERROR_MESSAGES: Readonly<Partial<Record<ApiErrorType, string>>> = {
  rate_limit_error: 'mock-model-server: rate limit exceeded',
  overloaded_error: 'Overloaded',
  api_error: 'Internal server error',
  authentication_error: 'invalid x-api-key',
};

function errorTypeFor(status: number): ApiErrorType {
  return ERROR_TYPE_BY_STATUS.get(status) ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** What the server decided to answer, before any hold or latency. */
export interface Outcome {
  status: number;
  body: JsonObject;
  headers: Record<string, string>;
  latencyMs: number | undefined;
}

/** The error answer for an injected failure: the API's error body and the retry headers the SDK reads. */
export function errorOutcome(requestId: string, failure: FailureSpec, latencyMs?: number): Outcome {
  const type = failure.type ?? errorTypeFor(failure.status);
  const headers: Record<string, string> = {};
  if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
  if (failure.retryAfterMs !== undefined) headers['retry-after-ms'] = String(failure.retryAfterMs);
  if (failure.shouldRetry !== undefined) headers['x-should-retry'] = String(failure.shouldRetry);
  const message = failure.message ?? DEFAULT_ERROR_MESSAGES[type] ?? `mock-model-server: injected ${failure.status}`;
  return { status: failure.status, body: { type: 'error', error: { type, message }, request_id: requestId }, headers, latencyMs };
}

/** A random id with a prefix, like the real API's `msg_…` ids. */
export function newId(prefix: string): string {
  return `${prefix}_mock_${randomBytes(12).toString('hex')}`;
}
