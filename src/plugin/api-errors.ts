/**
 * Errors of API requests, in the apiserver's own words: a Forbidden from RBAC or from the approval
 * admission policy explains what is missing, so it is shown as the apiserver wrote it.
 */
import { ApiException } from '@kubernetes/client-node';
import { PluginError } from './errors.ts';

interface ApiStatus {
  message?: string;
  reason?: string;
  code?: number;
}

/** The Status body of a refused API request, if it has one. */
export function apiStatus(error: unknown): ApiStatus | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const body: unknown = error.body;
  try {
    const parsed: unknown = typeof body === 'string' ? JSON.parse(body) : body;
    if (parsed !== null && typeof parsed === 'object') return parsed;
  } catch { /* not JSON */ }
  return undefined;
}

/** HTTP status of a refused API request, if it is one. */
export function httpStatus(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Gone',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

/**
 * One line that says what went wrong, as kubectl would say it:
 * `Error from server (Forbidden): agentruns.agentrun.dev "x" is forbidden: User "eve" cannot ...`.
 */
export function describeError(error: unknown, server?: string): string {
  if (error instanceof PluginError) return `error: ${error.message}`;
  if (error instanceof ApiException) {
    const status = apiStatus(error);
    const reason = status?.reason ?? REASONS[error.code] ?? `HTTP ${error.code}`;
    const message = status?.message ??
      (error.code === 401
        ? 'you must be logged in to the server (the credentials of this kubeconfig were refused)'
        : `the server answered HTTP ${error.code}`);
    return `Error from server (${reason}): ${oneLine(message)}`;
  }
  if (error instanceof Error) {
    // fetch reports "fetch failed" and keeps the reason (refused, DNS, TLS) in its cause.
    const cause = innermostCause(error);
    if (cause !== error || error.message === 'fetch failed') {
      return `error: unable to connect to the server${server ? ` at ${server}` : ''}: ${oneLine(cause.message)}`;
    }
    return `error: ${oneLine(error.message)}`;
  }
  return `error: ${oneLine(String(error))}`;
}

function innermostCause(error: Error): Error {
  let current = error;
  for (let i = 0; i < 5 && current.cause instanceof Error; i++) current = current.cause;
  return current;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
