/**
 * Errors a reconciler throws to tell the controller what to do with the key. Any other error is
 * treated as transient and retried with per-key exponential backoff.
 */

/**
 * Marks a failure that retrying cannot fix (invalid spec, missing permission that only an admin can
 * grant): the controller logs it, resets the key's backoff and does not requeue the key. A later
 * change to the object enqueues it again as usual.
 */
export class TerminalError extends Error {
  override readonly name: string = 'TerminalError';
}

/** Options of a {@link RequeueError}. */
export interface RequeueErrorOptions extends ErrorOptions {
  /** How long to wait before the next attempt; 0 (the default) requeues at once. */
  readonly retryAfterMs?: number;
}

/**
 * Asks for another attempt after a fixed delay instead of the exponential backoff, without counting
 * as a failure (the key's backoff is neither grown nor reset). Use it when the reconciler knows when
 * retrying makes sense, e.g. from a `Retry-After` header.
 */
export class RequeueError extends Error {
  override readonly name: string = 'RequeueError';
  /** Milliseconds to wait before the key is reconciled again. */
  readonly retryAfterMs: number;

  constructor(message: string, options: RequeueErrorOptions = {}) {
    super(message, options);
    this.retryAfterMs = options.retryAfterMs ?? 0;
  }
}

/**
 * Reports an optimistic-concurrency conflict (HTTP 409 on a write with a stale resourceVersion): the
 * object changed under us, so the key is requeued at once to be reconciled from fresh state.
 *
 * A reconciler that reads from an informer cache may still see the old version on that immediate
 * retry and conflict again until the watch event arrives; pass a small `retryAfterMs` (tens of
 * milliseconds) if that matters more than latency.
 */
export class ConflictError extends RequeueError {
  override readonly name: string = 'ConflictError';
}
