/**
 * The model adapter against a hostile endpoint (the mock server's hostile mode) and hostile API
 * keys: a response is never read past its cap, an endpoint's data never reaches a message, and
 * the key never appears in what a failure says, whatever bytes it is made of.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ModelRequest } from '../../src/core/conversation.ts';
import { classifyModelFailure, type ModelFailure } from '../../src/core/policies.ts';
import { AnthropicModelClient } from '../../src/adapters/model/anthropic.ts';
import { ModelCalls } from '../../src/reconciler/memory/model-calls.ts';
import { sanitizeEndpointText } from '../../src/adapters/model/sanitize.ts';
import { redactSecret } from '../../src/core/redact.ts';
import type { ModelCallOutcome, ModelClient } from '../../src/ports.ts';
import { startMockModelServer, type MockModelServer } from '../harness/mock-model-server.ts';
import { ANY_MODEL_ENDPOINT, spec } from '../harness/builders.ts';

const MiB = 1024 * 1024;
let server: MockModelServer;
beforeAll(async () => { server = await startMockModelServer(); });
afterEach(() => { server.reset(); });
afterAll(async () => { await server.close(); });

const request = (marker: string): ModelRequest => ({
  model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: `task ${marker}` }] }],
}) as unknown as ModelRequest;

async function callWith(marker: string, client = new AnthropicModelClient({ timeoutMs: 30_000, maxResponseBytes: 4 * MiB }), apiKey = 'sk-ant-test'): Promise<ModelCallOutcome> {
  return client.call(request(marker), { apiKey, baseURL: server.url, signal: new AbortController().signal });
}

function failureOf(outcome: ModelCallOutcome): ModelFailure {
  if (outcome.ok) throw new Error('expected a failure');
  return outcome.failure;
}

/** Hostile API keys: every byte sequence a Secret can hold that is not a plain key. */
const HOSTILE_KEYS = [
  'sk-ant-api03-firstline\nsk-ant-secondline-0123456789',
  'sk-ant-api03-with\r\ncrlf-and\u0000nul-0123456789',
  'sk-ant-api03-ключ-🔑-unicode-0123456789',
  'sk-ant-api03-"quoted"\\backslash\u2028sep-0123456789',
  'sk-ant-api03-\u001b[31mansi\u007f-0123456789',
];

/** Every piece of the key long enough to mean something. */
function fragmentsOf(key: string): string[] {
  return key.split(/[\u0000-\u001f\u007f\u2028"\\]+/u).filter((p) => p.length >= 8);
}

describe('a hostile endpoint', () => {
  it('a 150 MB response is cut at the cap without being buffered: ModelResponseTooLarge, RSS barely moves', async () => {
    server.hostile('HUGE', { kind: 'oversized', bytes: 150 * MiB });
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const failure = failureOf(await callWith('HUGE'));
    expect(failure).toMatchObject({ kind: 'response-too-large', limitBytes: 4 * MiB });
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * MiB);
    expect(performance.now() - started).toBeLessThan(10_000);
    const classified = classifyModelFailure(failure, spec(), { ...ANY_MODEL_ENDPOINT, apiKeySecretRef: { name: 'anthropic', key: 'api-key' } });
    expect(classified).toMatchObject({ retryable: false, reason: 'ModelResponseTooLarge' });
    expect(classified.message).toContain('Lower spec.model.maxTokens');
  });

  it('an error body of 10 MB is read only to its first 64 KiB, and none of it is shown', async () => {
    server.hostile('BIGERR', { kind: 'raw-error', status: 500, body: `{"type":"error","error":{"type":"api_error","message":"${'e'.repeat(10 * MiB)}"}}` });
    const failure = failureOf(await callWith('BIGERR'));
    expect(failure).toMatchObject({ kind: 'http', status: 500, message: 'the response body is not an Anthropic API error; not shown' });
  });

  it('a 200 response whose Content-Length is over the cap is refused before it is read', async () => {
    server.hostile('BIGOK', { kind: 'raw-error', status: 200, body: 'o'.repeat(5 * MiB) });
    expect(failureOf(await callWith('BIGOK'))).toMatchObject({ kind: 'response-too-large' });
  });

  it('an internal service\'s error body (data, not an API error) is never copied into the message', async () => {
    const body = JSON.stringify({ users: [{ email: 'alice@corp.example', ssn: '123-45-6789', token: 'tok_live_abcdefghijklmnopqrstuvwxyz0123' }] });
    server.hostile('INTERNAL', { kind: 'raw-error', status: 500, body });
    const failure = failureOf(await callWith('INTERNAL'));
    expect(failure).toMatchObject({ kind: 'http', status: 500 });
    expect(failure.message).not.toMatch(/alice|123-45|tok_live/u);
    expect(failure.message).toContain('not shown');
  });

  it('an API error whose message carries credentials and control characters is sanitized and bounded', async () => {
    const message = `invalid key sk-ant-api03-LEAKEDLEAKEDLEAKED for account {"email":"bob@corp.example"}\u0000\u001b[2J Bearer abc.def.ghi ${'x'.repeat(5000)}`;
    server.hostile('ENVELOPE', { kind: 'raw-error', status: 400, body: JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message } }) });
    const failure = failureOf(await callWith('ENVELOPE'));
    expect(failure.message).not.toMatch(/LEAKED|bob@|abc\.def|[\u0000-\u001f]/u);
    expect(failure.message.length).toBeLessThanOrEqual(300);
    expect(failure.message).toContain('invalid key');
  });

  it('a malformed body is an invalid response whose message quotes nothing of it', async () => {
    server.hostile('BROKEN', { kind: 'malformed' });
    const failure = failureOf(await callWith('BROKEN'));
    expect(['invalid-response', 'connection']).toContain(failure.kind);
    expect(failure.message).not.toContain('cut off');
  });
});

describe('hostile API keys never appear in a failure', () => {
  it.each(HOSTILE_KEYS.map((k) => [JSON.stringify(k), k]))('key %s: refused before it is sent, and the message says what to fix', async (_name, key) => {
    const outcome = await callWith('ANY', undefined, key);
    const failure = failureOf(outcome);
    expect(failure.kind).toBe('api-key-malformed');
    expect(server.requests()).toEqual([]); // it never left the operator
    const classified = classifyModelFailure(failure, spec(), { ...ANY_MODEL_ENDPOINT, apiKeySecretRef: { name: 'anthropic', key: 'api-key' } });
    expect(classified).toMatchObject({ retryable: false, reason: 'ModelAuthenticationFailed' });
    for (const text of [failure.message, classified.message]) for (const piece of fragmentsOf(key)) expect(text).not.toContain(piece);
    expect(classified.message).toContain('Secret anthropic');
  });

  it.each(HOSTILE_KEYS.map((k) => [JSON.stringify(k), k]))('key %s: an error that quotes it (verbatim, JSON-escaped, line by line) is redacted', async (_name, key) => {
    const quoting: ModelClient = {
      call: () => Promise.reject(new TypeError(`Headers.append: "${key}" is an invalid header value. (${JSON.stringify(key)}) ${encodeURIComponent(key)}`)),
    };
    let done!: () => void;
    const finished = new Promise<void>((resolve) => { done = resolve; });
    const calls = new ModelCalls(quoting);
    calls.start({ runUid: 'u', stepId: 1, attempt: 1, request: request('x'), credentials: () => Promise.resolve({ apiKey: key, baseURL: undefined }), onDone: () => { done(); } });
    await finished;
    const observation = calls.observe('u').get(1);
    if (observation?.state !== 'failed') throw new Error('expected a failed call');
    for (const piece of fragmentsOf(key)) expect(observation.failure.message).not.toContain(piece);
    expect(observation.failure.message).toContain('[redacted]');
  });

  it('redactSecret and sanitizeEndpointText hold for arbitrary text around the key', () => {
    const key = HOSTILE_KEYS[0] ?? '';
    expect(redactSecret(`a ${key} b ${key.split('\n')[1] ?? ''} c`, key)).toBe('a [redacted] b [redacted] c');
    expect(sanitizeEndpointText('x-api-key: sk-ant-123 password=hunter2 eyJhbGciOi.eyJzdWIi.sig')).not.toMatch(/sk-ant-123|hunter2|eyJ/u);
  });
});

describe('model calls on the wire are bounded', () => {
  it('with --max-concurrent-model-calls 2, five calls reach the endpoint two at a time and all complete', async () => {
    server.script('[slots]', [{ content: [{ type: 'text', text: 'ok' }] }]);
    const release = server.hold('[slots]');
    const calls = new ModelCalls(new AnthropicModelClient({ timeoutMs: 30_000 }), undefined, { maxConcurrent: 2 });
    let done = 0;
    for (let step = 1; step <= 5; step++) {
      calls.start({ runUid: 'u', stepId: step, attempt: 1, request: request('[slots]'), credentials: () => Promise.resolve({ apiKey: 'sk-ant-test', baseURL: server.url }), onDone: () => { done++; } });
    }
    await server.waitForRequest('[slots]', 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(server.requests('[slots]')).toHaveLength(2);
    expect(calls.inFlight()).toBe(5);
    // A call aborted while it waits for a slot leaves the queue and never reaches the endpoint.
    calls.cancel('u', 5);
    release();
    await expect.poll(() => done, { timeout: 10_000 }).toBe(4);
    expect(server.requests('[slots]')).toHaveLength(4);
    expect([...calls.observe('u').values()].every((o) => o.state === 'succeeded')).toBe(true);
  });
});
