/** Maps client-node errors to the few cases the operator treats differently. */
import { ApiException } from '@kubernetes/client-node';

export function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}
export const isNotFound = (error: unknown): boolean => statusOf(error) === 404;
export const isAlreadyExists = (error: unknown): boolean => statusOf(error) === 409 && reasonOf(error) === 'AlreadyExists';
export const isConflict = (error: unknown): boolean => statusOf(error) === 409 && reasonOf(error) !== 'AlreadyExists';

/**
 * The apiserver refused a write as too large (413) or invalid (422). The same write can never
 * succeed, so it must not be retried as if the failure were transient.
 */
export class WriteRejectedError extends Error {
  override name = 'WriteRejectedError';
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** The write refusal behind `error` (413 or 422), as a typed error; undefined for anything else (transient or not a refusal). */
export function writeRejection(error: unknown): WriteRejectedError | undefined {
  if (error instanceof WriteRejectedError) return error;
  const status = statusOf(error);
  if (status !== 413 && status !== 422) return undefined;
  return new WriteRejectedError(status, describeApiError(error).slice(0, 512), { cause: error });
}

function reasonOf(error: unknown): string | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const body: unknown = error.body;
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { reason?: string } | null;
    return parsed?.reason;
  } catch {
    return undefined;
  }
}

/** A short description of an API error for logs and messages (never includes request bodies). */
export function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = error.body;
    try {
      const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string } | null;
      if (parsed?.message) return `${error.code}: ${parsed.message}`;
    } catch { /* not JSON */ }
    return `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}
