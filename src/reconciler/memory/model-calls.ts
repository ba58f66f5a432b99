/**
 * Model calls in flight, outside the reconcile workers: a call may take minutes, and a worker
 * must not wait for it. When a call ends, its outcome is kept in the run's memory and the run is
 * enqueued. After a restart a call in flight is simply made again (the one extra call a crash
 * can cost), and a finished one is already in the journal.
 */
import type { ModelCallObservation } from '../../core/observed.ts';
import type { ModelRequest } from '../../core/conversation.ts';
import { redactSecret } from '../../core/redact.ts';
import { ModelCallAbortedError } from '../../port-errors.ts';
import type { ModelCallOutcome, ModelClient } from '../../ports.ts';
import { cancelFlight, outcomes, startOnce } from './in-flight.ts';
import { RunMemory } from './run-memory.ts';

/** One model call to start: which run, step and attempt, what to send, and whom to tell when done. */
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

/** Default for --max-concurrent-model-calls. */
export const DEFAULT_MAX_CONCURRENT_MODEL_CALLS = 32;

/** Starts model calls once per (run, step, attempt) and keeps their outcomes in the run's memory. */
export class ModelCalls {
  private readonly client: ModelClient;
  private readonly onCallFinished: ((outcome: 'succeeded' | 'failed', ms: number) => void) | undefined;
  private readonly slots: Slots;
  private readonly memory: RunMemory;
  /**
   * `maxConcurrent` bounds the calls on the wire at once, and so the response bodies in memory
   * (each at most --max-model-response-bytes): 1,000 runs cannot hold 1,000 bodies at a time.
   */
  constructor(client: ModelClient, onCallFinished?: (outcome: 'succeeded' | 'failed', ms: number) => void,
    options: { maxConcurrent?: number; memory?: RunMemory } = {}) {
    this.client = client;
    this.onCallFinished = onCallFinished;
    this.slots = new Slots(options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_MODEL_CALLS);
    this.memory = options.memory ?? new RunMemory();
  }

  /** Starts the call unless this attempt is already in flight or done. */
  start(call: StartCall): void {
    const pending: ModelCallObservation = { state: 'in-flight', attempt: call.attempt };
    startOnce(this.memory.of(call.runUid).modelCalls, call.stepId, call.attempt, pending, async (signal) => {
      const started = Date.now();
      const outcome = await this.call(call, signal);
      if (outcome) this.onCallFinished?.(outcome.state === 'succeeded' ? 'succeeded' : 'failed', Date.now() - started);
      return outcome;
    }, call.onDone);
  }

  /** The call's outcome; undefined when it was aborted. */
  private async call(call: StartCall, signal: AbortSignal): Promise<ModelCallObservation | undefined> {
    let key: string | undefined;
    try {
      const { apiKey, baseURL } = await call.credentials().catch((error: unknown) => {
        throw new CredentialsError(error instanceof Error ? error.message : String(error));
      });
      key = apiKey;
      await this.slots.acquire(signal);
      let outcome: ModelCallOutcome;
      try {
        outcome = await this.client.call(call.request, { apiKey, baseURL, signal });
      } finally {
        this.slots.release();
      }
      return outcome.ok
        ? { state: 'succeeded', attempt: call.attempt, response: outcome.response }
        : { state: 'failed', attempt: call.attempt,
          failure: { ...outcome.failure, message: redactSecret(outcome.failure.message, key) } };
    } catch (error) {
      if (error instanceof ModelCallAbortedError || signal.aborted) return undefined;
      // Whatever threw may quote the key (the SDK's header errors do): it never leaves here.
      const message = redactSecret((error instanceof Error ? error.message : String(error)).slice(0, 1024), key);
      return { state: 'failed', attempt: call.attempt,
        failure: error instanceof CredentialsError
          ? { kind: 'api-key-unavailable', message } :
          { kind: 'connection', message } };
    }
  }

  /** What this process knows about the run's calls, by step id. */
  observe(runUid: string): Map<number, ModelCallObservation> {
    const flights = this.memory.peek(runUid)?.modelCalls;
    return flights ? outcomes(flights) : new Map<number, never>();
  }

  /** Aborts a step's call and forgets it. */
  cancel(runUid: string, stepId: number): void {
    const flights = this.memory.peek(runUid)?.modelCalls;
    if (flights) cancelFlight(flights, stepId);
  }

  /** Forgets a step's call once its outcome is recorded (the run's memory forgets the rest). */
  forget(runUid: string, stepId: number): void {
    this.memory.peek(runUid)?.modelCalls.delete(stepId);
  }

  /** Calls started and not yet ended, across all runs. */
  inFlight(): number {
    let n = 0;
    for (const run of this.memory.all()) {
      for (const f of run.modelCalls.values()) if (f.outcome.state === 'in-flight') n++;
    }
    return n;
  }

  /** Aborts every call (the operator stops or lost its lease). */
  abortAll(): void {
    for (const run of this.memory.all()) for (const f of run.modelCalls.values()) f.abort.abort();
  }
}

class CredentialsError extends Error {}

/** A counting semaphore whose waiters leave when their call is aborted. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }

  async acquire(signal: AbortSignal): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(take);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new ModelCallAbortedError('model call aborted while waiting for a slot'));
      };
      const take = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiting.push(take);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next(); else this.free++;
  }
}
