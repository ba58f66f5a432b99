/**
 * The one place that maps what client-node throws to the ports' typed errors (src/port-errors.ts):
 * 404 → NotFoundError, 409 → AlreadyExistsError or StaleWriteError, 413/422 → WriteRejectedError,
 * any other status → ApiError. Every Kubernetes call of an adapter goes through `kubeCall`.
 */
import { ApiException } from '@kubernetes/client-node';
import {
  AlreadyExistsError,
  ApiError,
  NotFoundError,
  StaleWriteError,
  WriteRejectedError,
} from '../../port-errors.ts';

/** Longest apiserver message a write refusal carries (it reaches status). */
const MAX_REJECTION_MESSAGE = 512;

/** The port error for `error`: typed by HTTP status for an API failure, unchanged for anything else. */
export function toPortError(error: unknown): unknown {
  if (!(error instanceof ApiException)) return error;
  const status = error.code;
  const message = describeApiError(error);
  const options = { cause: error };
  switch (status) {
    case 404:
      return new NotFoundError(status, message, options);
    case 409:
      return reasonOf(error) === 'AlreadyExists'
        ? new AlreadyExistsError(status, message, options) :
        new StaleWriteError(status, message, options);
    case 413:
    case 422:
      return new WriteRejectedError(status, message.slice(0, MAX_REJECTION_MESSAGE), options);
    default:
      return new ApiError(status, message, options);
  }
}

/** Runs one Kubernetes API call, throwing the port's typed error when it fails. */
export async function kubeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toPortError(error);
  }
}

function reasonOf(error: ApiException<unknown>): string | undefined {
  const body: unknown = error.body;
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { reason?: string } | null;
    return parsed?.reason;
  } catch {
    return undefined;
  }
}

/** A short description of an API error for logs and messages (never includes request bodies). */
function describeApiError(error: ApiException<unknown>): string {
  const body: unknown = error.body;
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string } | null;
    if (parsed?.message) return `${error.code}: ${parsed.message}`;
  } catch { /* not JSON */ }
  return `HTTP ${error.code}`;
}
