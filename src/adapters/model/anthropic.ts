/**
 * Calls the Messages API through @anthropic-ai/sdk with the SDK's own retries off: the
 * controller owns retries (recorded in status, bounded by the run deadline). Failures are
 * reported as data for the core to classify; nothing here decides whether to retry.
 */
import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type { ModelRequest } from '../../core/conversation.ts';
import { modelResponse } from '../../api/journal-entry.ts';
import type { ModelCallOutcome, ModelClient } from '../../ports.ts';
import { ModelCallAbortedError } from '../../port-errors.ts';
import { boundedFetch, responseTooLargeIn } from './bounded-fetch.ts';
import { isHeaderSafeKey, sanitizeEndpointText } from './sanitize.ts';

/** The Messages API's base URL when a ModelEndpoint names none. */
export const DEFAULT_BASE_URL = 'https://api.anthropic.com';
/** Default for --max-model-response-bytes: far above a real response (128k tokens of output is ~600 KB). */
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** Calls the Messages API; every failure comes back as data (`ModelCallOutcome`), never as a retry. */
export class AnthropicModelClient implements ModelClient {
  private readonly clients = new Map<string, Anthropic>();
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  constructor(options: { timeoutMs: number; maxResponseBytes?: number; fetch?: typeof fetch }) {
    this.timeoutMs = options.timeoutMs;
    this.fetch = boundedFetch(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, options.fetch);
  }

  async call(
    request: ModelRequest,
    options: { apiKey: string | undefined; baseURL: string | undefined; signal: AbortSignal },
  ): Promise<ModelCallOutcome> {
    // The SDK would throw a header error that quotes the key: refuse it here, saying nothing of it.
    if (options.apiKey !== undefined && !isHeaderSafeKey(options.apiKey)) {
      const message = 'the API key cannot be sent in an HTTP header';
      return { ok: false, failure: { kind: 'api-key-malformed', message } };
    }
    const client = this.clientFor(options.apiKey, options.baseURL ?? DEFAULT_BASE_URL);
    let raw: unknown;
    try {
      const params = request as unknown as Anthropic.MessageCreateParamsNonStreaming;
      raw = await client.messages.create(params, { signal: options.signal });
    } catch (error) {
      if (error instanceof APIUserAbortError || options.signal.aborted) {
        throw new ModelCallAbortedError('model call aborted');
      }
      const tooLarge = responseTooLargeIn(error);
      if (tooLarge) {
        const { limitBytes, message } = tooLarge;
        return { ok: false, failure: { kind: 'response-too-large', limitBytes, message } };
      }
      if (error instanceof APIConnectionTimeoutError) {
        return { ok: false, failure: { kind: 'timeout', message: `no response within ${this.timeoutMs} ms` } };
      }
      if (error instanceof APIConnectionError) {
        return { ok: false, failure: { kind: 'connection', message: sanitizeEndpointText(connectionCause(error)) } };
      }
      if (error instanceof APIError && typeof error.status === 'number') {
        const retryAfterMs = retryAfter(error.headers as Headers | undefined);
        return {
          ok: false,
          failure: {
            // Only the message of an Anthropic error envelope is shown, sanitized: any other body
            // (an internal service's data) is never copied into status or Events.
            kind: 'http',
            status: error.status,
            message: error.apiMessage
              ? sanitizeEndpointText(error.apiMessage) :
              'the response body is not an Anthropic API error; not shown',
            ...(error.type ? { errorType: sanitizeEndpointText(error.type).slice(0, 64) } : {}),
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
            ...(error.requestID ? { requestId: error.requestID } : {}),
          },
        };
      }
      const message = sanitizeEndpointText(error instanceof Error ? error.message : String(error));
      return { ok: false, failure: { kind: 'connection', message } };
    }
    const parsed = modelResponse.safeParse(raw);
    // zod's message quotes the values it saw: say only which fields were wrong.
    if (!parsed.success) {
      const fields = parsed.error.issues.slice(0, 5).map((i) => i.path.join('.') || '(root)').join(', ');
      const message = sanitizeEndpointText(
        `the model API answered something that is not a message (wrong or missing: ${fields})`,
      );
      return { ok: false, failure: { kind: 'invalid-response', message } };
    }
    return { ok: true, response: parsed.data };
  }

  private clientFor(apiKey: string | undefined, baseURL: string): Anthropic {
    const id = `${baseURL}\u0000${apiKey ?? ''}`;
    let client = this.clients.get(id);
    if (!client) {
      // apiKey and baseURL always explicit: otherwise the SDK reads env variables and profile files.
      // logLevel off: the SDK's own logging would bypass the operator's redaction.
      client = new Anthropic({
        apiKey: apiKey ?? 'no-key-configured',
        baseURL,
        maxRetries: 0,
        timeout: this.timeoutMs,
        fetch: this.fetch,
        logLevel: 'off',
      });
      this.clients.set(id, client);
    }
    return client;
  }
}

/** What went wrong with the connection: the SDK's message is generic, its cause says what happened. */
function connectionCause(error: APIConnectionError): string {
  const cause = error.cause;
  return cause instanceof Error && cause.message ? `${error.message} (${cause.message})` : error.message;
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
