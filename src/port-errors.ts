/**
 * The typed errors the ports throw. Adapters map what their clients throw (HTTP 404, 409, 413,
 * 422 from the apiserver) to these in one place (adapters/kube/errors.ts `kubeCall`); the
 * reconciler tells cases apart by class, never by status code or by the client library's types.
 */

/**
 * An API call failed with an HTTP status; the message is short and never quotes a request body.
 * Statuses the operator treats alike (5xx, 403, 429...) stay this class: retried with backoff.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** The object does not exist (HTTP 404). */
export class NotFoundError extends ApiError {
  override name = 'NotFoundError';
}

/** An object of that name exists already (HTTP 409, reason AlreadyExists). */
export class AlreadyExistsError extends ApiError {
  override name = 'AlreadyExistsError';
}

/** The object changed since it was read (HTTP 409, a failed compare-and-swap). */
export class StaleWriteError extends ApiError {
  override name = 'StaleWriteError';
}

/**
 * The apiserver refused a write as too large (413) or invalid (422). The same write can never
 * succeed, so it must not be retried as if the failure were transient.
 */
export class WriteRejectedError extends ApiError {
  override name = 'WriteRejectedError';
}

/** A model call was cancelled by the operator (run cancelled, deleted, or the operator stopping). */
export class ModelCallAbortedError extends Error {
  override name = 'ModelCallAbortedError';
}

/**
 * An MCP server could not be reached before any request got to it: a header's Secret could not
 * be read (`cause: 'secret'`), or connecting and initialize failed (`cause: 'connect'`).
 */
export class MCPUnreachableError extends Error {
  override name = 'MCPUnreachableError';
  readonly reason: 'secret' | 'connect';
  constructor(reason: 'secret' | 'connect', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** Whether `error` says the object does not exist. */
export const isNotFound = (error: unknown): boolean => error instanceof NotFoundError;
/** Whether `error` says an object of that name exists already. */
export const isAlreadyExists = (error: unknown): boolean => error instanceof AlreadyExistsError;
/** Whether `error` is a failed compare-and-swap (the object changed since it was read). */
export const isConflict = (error: unknown): boolean => error instanceof StaleWriteError;
/** The write refusal behind `error` (413 or 422), or undefined for anything else. */
export const writeRejection = (error: unknown): WriteRejectedError | undefined =>
  error instanceof WriteRejectedError ? error : undefined;

/** A short description of an error for logs and messages (adapters put the apiserver's message in it). */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
