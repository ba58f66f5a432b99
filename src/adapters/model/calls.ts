/**
 * Model calls in flight, outside the reconcile workers: a call may take minutes, and a worker
 * must not wait for it. When a call ends, its outcome is kept here and the run is enqueued.
 * This memory is per process by design: after a restart a call in flight is simply made again
 * (the one extra call a crash can cost), and a finished one is already in the journal.
 */
import type { ModelCallObservation } from '../../core/observed.ts';
import type { ModelRequest } from '../../core/conversation.ts';
import type { ModelCallOutcome, ModelClient } from '../../ports.ts';
import { ModelCallAbortedError } from './anthropic.ts';
import { redactSecret } from './sanitize.ts';

interface Call { attempt: number; observation: ModelCallObservation; abort: AbortController }

export interface StartCall {
  readonly runUid: string;
  readonly stepId: number;
  readonly attempt: number;
  readonly request: ModelRequest;
  /** Resolves the API key and base URL when the call starts (the key is never stored here). */
  readonly credentials: () => Promise<{ apiKey: string | undefined; baseURL: string | undefined }>;
  /** Called once the outcome is recorded, to enqueue the run. */
  readonly onDone: () => void;
}

export class ModelCalls {
  private readonly calls = new Map<string, Call>();
  private readonly client: ModelClient;
  private readonly onCallFinished: ((outcome: 'succeeded' | 'failed', ms: number) => void) | undefined;
  private readonly slots: Slots;
  /**
   * `maxConcurrent` bounds the calls on the wire at once, and so the response bodies in memory
   * (each at most --max-model-response-bytes): 1,000 runs cannot hold 1,000 bodies at a time.
   */
  constructor(client: ModelClient, onCallFinished?: (outcome: 'succeeded' | 'failed', ms: number) => void, options: { maxConcurrent?: number } = {}) {
    this.client = client;
    this.onCallFinished = onCallFinished;
    this.slots = new Slots(options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_MODEL_CALLS);
  }

  /** Starts the call unless this attempt is already in flight or done. */
  start(call: StartCall): void {
    const id = key(call.runUid, call.stepId);
    const existing = this.calls.get(id);
    if (existing && existing.attempt === call.attempt) return;
    existing?.abort.abort();
    const abort = new AbortController();
    const record: Call = { attempt: call.attempt, observation: { state: 'in-flight', attempt: call.attempt }, abort };
    this.calls.set(id, record);
    const started = Date.now();
    void (async () => {
      let key: string | undefined;
      try {
        const { apiKey, baseURL } = await call.credentials().catch((error: unknown) => {
          throw new CredentialsError(error instanceof Error ? error.message : String(error));
        });
        key = apiKey;
        await this.slots.acquire(abort.signal);
        let outcome: ModelCallOutcome;
        try { outcome = await this.client.call(call.request, { apiKey, baseURL, signal: abort.signal }); } finally { this.slots.release(); }
        record.observation = outcome.ok
          ? { state: 'succeeded', attempt: call.attempt, response: outcome.response }
          : { state: 'failed', attempt: call.attempt, failure: { ...outcome.failure, message: redactSecret(outcome.failure.message, key) } };
      } catch (error) {
        if (error instanceof ModelCallAbortedError || abort.signal.aborted) return;
        // Whatever threw may quote the key (the SDK's header errors do): it never leaves here.
        const message = redactSecret((error instanceof Error ? error.message : String(error)).slice(0, 1024), key);
        record.observation = { state: 'failed', attempt: call.attempt,
          failure: error instanceof CredentialsError ? { kind: 'api-key-unavailable', message } : { kind: 'connection', message } };
      }
      this.onCallFinished?.(record.observation.state === 'succeeded' ? 'succeeded' : 'failed', Date.now() - started);
      if (this.calls.get(id) === record) call.onDone();
    })();
  }

  /** What this process knows about the run's calls, by step id. */
  observe(runUid: string): Map<number, ModelCallObservation> {
    const out = new Map<number, ModelCallObservation>();
    const prefix = `${runUid}/`;
    for (const [id, call] of this.calls) {
      if (id.startsWith(prefix)) out.set(Number(id.slice(prefix.length)), call.observation);
    }
    return out;
  }

  cancel(runUid: string, stepId: number): void {
    const id = key(runUid, stepId);
    this.calls.get(id)?.abort.abort();
    this.calls.delete(id);
  }

  /** Forgets a step's call once its outcome is journaled, or all of a run's calls. */
  forget(runUid: string, stepId?: number): void {
    if (stepId !== undefined) { this.calls.delete(key(runUid, stepId)); return; }
    for (const id of [...this.calls.keys()]) if (id.startsWith(`${runUid}/`)) this.cancel(runUid, Number(id.split('/')[1]));
  }

  inFlight(): number {
    let n = 0;
    for (const call of this.calls.values()) if (call.observation.state === 'in-flight') n++;
    return n;
  }

  abortAll(): void {
    for (const call of this.calls.values()) call.abort.abort();
  }
}

class CredentialsError extends Error {}

/** Default for --max-concurrent-model-calls. */
export const DEFAULT_MAX_CONCURRENT_MODEL_CALLS = 32;

/** A counting semaphore whose waiters leave when their call is aborted. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) { this.free = size; }

  async acquire(signal: AbortSignal): Promise<void> {
    if (this.free > 0) { this.free--; return; }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(take);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new ModelCallAbortedError('model call aborted while waiting for a slot'));
      };
      const take = (): void => { signal.removeEventListener('abort', onAbort); resolve(); };
      this.waiting.push(take);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next(); else this.free++;
  }
}

function key(runUid: string, stepId: number): string {
  return `${runUid}/${stepId}`;
}
