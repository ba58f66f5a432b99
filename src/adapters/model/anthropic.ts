/**
 * Calls the Messages API through @anthropic-ai/sdk with the SDK's own retries off: the
 * controller owns retries (recorded in status, bounded by the run deadline). Failures are
 * reported as data for the core to classify; nothing here decides whether to retry.
 */
import Anthropic, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from '@anthropic-ai/sdk';
import type { ModelRequest } from '../../core/conversation.ts';
import { modelResponse } from '../../core/journal.ts';
import type { ModelCallOutcome, ModelClient } from '../../ports.ts';

export const DEFAULT_BASE_URL = 'https://api.anthropic.com';

/** The call was cancelled by the operator (run cancelled, deleted, or the operator stopping). */
export class ModelCallAbortedError extends Error {
  override name = 'ModelCallAbortedError';
}

export class AnthropicModelClient implements ModelClient {
  private readonly clients = new Map<string, Anthropic>();
  private readonly timeoutMs: number;
  constructor(options: { timeoutMs: number }) { this.timeoutMs = options.timeoutMs; }

  async call(request: ModelRequest, options: { apiKey: string | undefined; baseURL: string | undefined; signal: AbortSignal }): Promise<ModelCallOutcome> {
    const client = this.clientFor(options.apiKey, options.baseURL ?? DEFAULT_BASE_URL);
    let raw: unknown;
    try {
      raw = await client.messages.create(request as unknown as Anthropic.MessageCreateParamsNonStreaming, { signal: options.signal });
    } catch (error) {
      if (error instanceof APIUserAbortError || options.signal.aborted) throw new ModelCallAbortedError('model call aborted');
      if (error instanceof APIConnectionTimeoutError) return { ok: false, failure: { kind: 'timeout', message: `no response within ${this.timeoutMs} ms` } };
      if (error instanceof APIConnectionError) return { ok: false, failure: { kind: 'connection', message: error.message } };
      if (error instanceof APIError && typeof error.status === 'number') {
        const retryAfterMs = retryAfter(error.headers as Headers | undefined);
        return {
          ok: false,
          failure: {
            kind: 'http', status: error.status, message: error.apiMessage ?? error.message,
            ...(error.type ? { errorType: error.type } : {}),
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
            ...(error.requestID ? { requestId: error.requestID } : {}),
          },
        };
      }
      return { ok: false, failure: { kind: 'connection', message: error instanceof Error ? error.message : String(error) } };
    }
    const parsed = modelResponse.safeParse(raw);
    if (!parsed.success) return { ok: false, failure: { kind: 'invalid-response', message: `the model API answered something that is not a message: ${parsed.error.message.slice(0, 300)}` } };
    return { ok: true, response: parsed.data };
  }

  private clientFor(apiKey: string | undefined, baseURL: string): Anthropic {
    const id = `${baseURL}\u0000${apiKey ?? ''}`;
    let client = this.clients.get(id);
    if (!client) {
      // apiKey and baseURL always explicit: otherwise the SDK reads env variables and profile files.
      client = new Anthropic({ apiKey: apiKey ?? 'no-key-configured', baseURL, maxRetries: 0, timeout: this.timeoutMs });
      this.clients.set(id, client);
    }
    return client;
  }
}

function retryAfter(headers: Headers | undefined): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
