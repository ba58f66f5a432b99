// Drives the Messages API stand-in through the real @anthropic-ai/sdk, so that what the tests of
// the operator rely on (wire format, error classes, headers, determinism, caching) is checked
// against the client the operator actually uses.
import Anthropic, { APIError, AuthenticationError, BadRequestError, OverloadedError, RateLimitError } from '@anthropic-ai/sdk';
import type { ContentBlock, Message, MessageCreateParamsNonStreaming, MessageParam, Tool } from '@anthropic-ai/sdk/resources/messages';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SCRIPT_KEY,
  startMockModelServer,
  text,
  toolUse,
  type MockModelServer,
} from '../harness/mock-model-server.ts';

const MODEL = 'claude-mock-1';

const readFileTool: Tool = {
  name: 'read_file',
  description: 'Reads a file',
  input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
};

let server: MockModelServer;

beforeAll(async () => {
  server = await startMockModelServer();
});

afterEach(() => {
  server.reset();
});

afterAll(async () => {
  await server.close();
});

function client(apiKey = 'test-key', maxRetries = 0): Anthropic {
  return new Anthropic({ apiKey, baseURL: server.url, maxRetries });
}

function request(messages: MessageParam[], extra: Partial<MessageCreateParamsNonStreaming> = {}): MessageCreateParamsNonStreaming {
  return { model: MODEL, max_tokens: 1024, tools: [readFileTool], messages, ...extra };
}

/** The user message answering every tool_use of `reply`, in order. */
function toolResultsFor(reply: Message, output = (id: string) => `contents for ${id}`): MessageParam {
  const toolUses = reply.content.filter((b): b is Extract<ContentBlock, { type: 'tool_use' }> => b.type === 'tool_use');
  return { role: 'user', content: toolUses.map((b) => ({ type: 'tool_result', tool_use_id: b.id, content: output(b.id) })) };
}

/** The rejection of `promise` as an SDK APIError (fails the test if it resolves). */
async function apiErrorOf(promise: Promise<unknown>): Promise<APIError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(APIError);
  return error as APIError;
}

describe('mock model server: scripted conversations through the real SDK', () => {
  it('answers a 2-turn conversation with parallel tool_use blocks and the tool_result round trip', async () => {
    server.script('[task-parallel]', [
      { content: [text('Reading both files.'), toolUse('read_file', { path: 'a.txt' }), toolUse('read_file', { path: 'b.txt' })] },
      { content: [text('Both files read.')] },
    ]);
    const task: MessageParam = { role: 'user', content: 'Summarise a.txt and b.txt [task-parallel]' };

    const first = await client().messages.create(request([task]));
    expect(first).toMatchObject({ type: 'message', role: 'assistant', model: MODEL, stop_reason: 'tool_use', stop_sequence: null });
    expect(first.id).toMatch(/^msg_/);
    expect(first._request_id).toMatch(/^req_/);
    expect(first.content).toEqual([
      { type: 'text', text: 'Reading both files.', citations: null },
      { type: 'tool_use', id: 'toolu_task-parallel_0_0', name: 'read_file', input: { path: 'a.txt' }, caller: { type: 'direct' } },
      { type: 'tool_use', id: 'toolu_task-parallel_0_1', name: 'read_file', input: { path: 'b.txt' }, caller: { type: 'direct' } },
    ]);

    const second = await client().messages.create(request([task, { role: 'assistant', content: first.content }, toolResultsFor(first)]));
    expect(second.stop_reason).toBe('end_turn');
    expect(second.content).toEqual([{ type: 'text', text: 'Both files read.', citations: null }]);

    expect(server.calls('[task-parallel]')).toBe(2);
    expect(server.totalCalls()).toBe(2);
    const [seenFirst, seenSecond] = server.requests('[task-parallel]');
    expect(seenFirst).toMatchObject({ status: 200, turnIndex: 0, apiKey: 'test-key', anthropicVersion: '2026-10-21', requestId: first._request_id });
    expect(seenSecond?.turnIndex).toBe(1);
    expect(seenSecond?.body?.messages).toHaveLength(3);
  });

  it('gives the same conversation the same answer, whenever it is re-sent (crash recovery)', async () => {
    server.script('[task-determinism]', [
      { content: [toolUse('read_file', { path: 'x' })] },
      { content: [text('done')] },
    ]);
    const task: MessageParam = { role: 'user', content: 'Go [task-determinism]' };
    const first = await client().messages.create(request([task]));
    const second = await client().messages.create(request([task, { role: 'assistant', content: first.content }, toolResultsFor(first)]));

    const firstAgain = await client().messages.create(request([task]));
    const secondAgain = await client().messages.create(request([task, { role: 'assistant', content: first.content }, toolResultsFor(first)]));

    const answer = (m: Message) => ({ content: m.content, stop_reason: m.stop_reason, usage: m.usage, model: m.model });
    expect(answer(firstAgain)).toEqual(answer(first));
    expect(answer(secondAgain)).toEqual(answer(second));
    expect(answer(second)).not.toEqual(answer(first));
    expect(firstAgain.id).not.toBe(first.id); // like the real API, every response gets its own id
  });

  it('computes a turn from the request with a function turn or the default script', async () => {
    server.script('[task-echo]', [
      { content: [toolUse('read_file', { path: 'p' })] },
      (req) => ({ content: [text(`turn ${req.turnIndex} saw: ${req.toolResults.map((r) => `${r.toolUseId}=${r.text}`).join(',')}`)] }),
    ]);
    server.defaultScript((req) => ({ content: [text(`default turn ${req.turnIndex}`)] }));

    const task: MessageParam = { role: 'user', content: 'Echo [task-echo]' };
    const first = await client().messages.create(request([task]));
    const second = await client().messages.create(request([task, { role: 'assistant', content: first.content }, toolResultsFor(first, () => 'hello')]));
    expect(second.content).toEqual([{ type: 'text', text: 'turn 1 saw: toolu_task-echo_0_0=hello', citations: null }]);

    const unscripted = await client().messages.create(request([{ role: 'user', content: 'no marker here' }]));
    expect(unscripted.content).toEqual([{ type: 'text', text: 'default turn 0', citations: null }]);
    expect(server.calls(DEFAULT_SCRIPT_KEY)).toBe(1);
  });
});

describe('mock model server: errors and outages', () => {
  it('surfaces an injected 529 with retry-after as the SDK OverloadedError, then recovers', async () => {
    server.script('[task-529]', [{ content: [text('ok')] }]);
    server.failNext(1, { status: 529, retryAfterSeconds: 7 }, '[task-529]');
    const body = request([{ role: 'user', content: 'Hi [task-529]' }]);

    const error = await apiErrorOf(client().messages.create(body));
    expect(error).toBeInstanceOf(OverloadedError);
    expect(error.status).toBe(529);
    expect(error.type).toBe('overloaded_error');
    expect(error.headers?.get('retry-after')).toBe('7');
    expect(error.requestID).toMatch(/^req_/);
    expect(error.error).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });

    const recovered = await client().messages.create(body);
    expect(recovered.content).toEqual([{ type: 'text', text: 'ok', citations: null }]);
    expect(server.requests('[task-529]').map((r) => r.status)).toEqual([529, 200]);
    expect(server.calls('[task-529]')).toBe(1);
  });

  it('lets the SDK retry loop do its work on 429s (retry-after-ms keeps it fast)', async () => {
    server.script('[task-429]', [{ content: [text('after retries')] }]);
    server.failNext(2, { status: 429, retryAfterMs: 1 });

    const reply = await client('test-key', 2).messages.create(request([{ role: 'user', content: 'Hi [task-429]' }]));
    expect(reply.content).toEqual([{ type: 'text', text: 'after retries', citations: null }]);
    expect(server.requests('[task-429]').map((r) => r.status)).toEqual([429, 429, 200]);

    server.failNext(1, { status: 429 });
    expect(await apiErrorOf(client().messages.create(request([{ role: 'user', content: 'Hi [task-429]' }])))).toBeInstanceOf(RateLimitError);
  });

  it('fails only the named script with failNext(…, scriptKey)', async () => {
    server.script('[task-a]', [{ content: [text('a')] }]);
    server.script('[task-b]', [{ content: [text('b')] }]);
    server.failNext(1, { status: 500, message: 'boom' }, '[task-b]');

    await expect(client().messages.create(request([{ role: 'user', content: '[task-a]' }]))).resolves.toMatchObject({ stop_reason: 'end_turn' });
    const error = await apiErrorOf(client().messages.create(request([{ role: 'user', content: '[task-b]' }])));
    expect(error.status).toBe(500);
    expect(error.type).toBe('api_error');
    expect(error.apiMessage).toBe('boom');
  });

  it('fails every request during an outage and answers again once it ends', async () => {
    server.script('[task-outage]', [{ content: [text('back')] }]);
    const body = request([{ role: 'user', content: '[task-outage]' }]);

    server.outage({ durationMs: 60_000 });
    expect((await apiErrorOf(client().messages.create(body))).status).toBe(529);
    expect((await apiErrorOf(client().messages.create(body))).status).toBe(529);
    server.endOutage();
    await expect(client().messages.create(body)).resolves.toMatchObject({ stop_reason: 'end_turn' });

    server.outage({ status: 500, untilMs: Date.now() - 1 }); // already over
    await expect(client().messages.create(body)).resolves.toMatchObject({ stop_reason: 'end_turn' });
    expect(server.requests('[task-outage]').map((r) => r.status)).toEqual([529, 529, 200, 200]);
  });

  it('answers 401 authentication_error to an API key it does not know', async () => {
    const guarded = await startMockModelServer({ apiKeys: ['good-key'] });
    try {
      guarded.script('[task-auth]', [{ content: [text('welcome')] }]);
      const body = request([{ role: 'user', content: '[task-auth]' }]);
      const sdk = (apiKey: string) => new Anthropic({ apiKey, baseURL: guarded.url, maxRetries: 0 });

      const error = await apiErrorOf(sdk('wrong-key').messages.create(body));
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error.error).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
      await expect(sdk('good-key').messages.create(body)).resolves.toMatchObject({ stop_reason: 'end_turn' });
      expect(guarded.requests('[task-auth]').map((r) => [r.apiKey, r.status])).toEqual([['wrong-key', 401], ['good-key', 200]]);
    } finally {
      await guarded.close();
    }
  });
});

describe('mock model server: validation like the real API', () => {
  const task: MessageParam = { role: 'user', content: 'Validate [task-validate]' };
  const askedForTool: MessageParam = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: { path: 'a' } }] };
  const cached = { type: 'ephemeral' } as const;

  const cases: { name: string; body: MessageCreateParamsNonStreaming; message: RegExp }[] = [
    {
      name: 'an unanswered tool_use',
      body: request([task, askedForTool, { role: 'user', content: 'I did not run it' }]),
      message: /messages\.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1/,
    },
    {
      name: 'a conversation that ends on an assistant tool_use',
      body: request([task, askedForTool]),
      message: /messages\.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1/,
    },
    {
      name: 'a tool_result for an unknown tool_use id',
      body: request([task, askedForTool, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'x' }, { type: 'tool_result', tool_use_id: 'toolu_9', content: 'y' }] }]),
      message: /messages\.2\.content\.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9/,
    },
    {
      name: 'two user messages in a row',
      body: request([task, { role: 'user', content: 'again' }]),
      message: /roles must alternate between "user" and "assistant"/,
    },
    {
      name: 'a conversation that starts with the assistant',
      body: request([{ role: 'assistant', content: 'hi' }, task]),
      message: /first message must use the "user" role/,
    },
    { name: 'no messages', body: request([]), message: /messages: at least one message is required/ },
    { name: 'an empty model', body: request([task], { model: '' }), message: /^model:/ },
    { name: 'max_tokens that is not a positive integer', body: request([task], { max_tokens: 1.5 }), message: /max_tokens: Input should be a valid integer/ },
    {
      name: 'an invalid tool name',
      body: request([task], { tools: [{ ...readFileTool, name: 'read file' }] }),
      message: /tools\.0\.name: String should match pattern/,
    },
    { name: 'duplicate tool names', body: request([task], { tools: [readFileTool, readFileTool] }), message: /Tool names must be unique/ },
    {
      name: 'five cache_control breakpoints',
      body: request([{ role: 'user', content: ['a', 'b', 'c', 'd', 'e [task-validate]'].map((t) => ({ type: 'text' as const, text: t, cache_control: cached })) }]),
      message: /A maximum of 4 blocks with cache_control may be provided\. Found 5\./,
    },
  ];

  it.each(cases)('rejects $name with 400 invalid_request_error', async ({ body, message }) => {
    server.script('[task-validate]', [{ content: [toolUse('read_file', { path: 'a' })] }, { content: [text('done')] }]);
    const error = await apiErrorOf(client().messages.create(body));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.type).toBe('invalid_request_error');
    expect(error.apiMessage).toMatch(message);
    expect(server.calls()).toBe(0);
  });

  it('accepts what those cases get wrong once it is right (the checks are not blanket refusals)', async () => {
    server.script('[task-validate]', [{ content: [toolUse('read_file', { path: 'a' })] }, { content: [text('done')] }]);
    const reply = await client().messages.create(request([task, askedForTool, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'x', cache_control: cached }] }]));
    expect(reply.content).toEqual([{ type: 'text', text: 'done', citations: null }]);
  });

  it('says loudly when the test script, not the client, is at fault', async () => {
    server.script('[task-short]', [{ content: [toolUse('read_file', { path: 'a' })] }]);
    server.script('[task-undefined-tool]', [{ content: [toolUse('write_file', { path: 'a' })] }]);
    const first = await client().messages.create(request([{ role: 'user', content: '[task-short]' }]));

    const pastTheEnd = await apiErrorOf(client().messages.create(request([{ role: 'user', content: '[task-short]' }, { role: 'assistant', content: first.content }, toolResultsFor(first)])));
    expect(pastTheEnd.apiMessage).toMatch(/mock script \[task-short\] has no turn 1/);
    expect(pastTheEnd.headers?.get('x-should-retry')).toBe('false');

    const unknown = await apiErrorOf(client().messages.create(request([{ role: 'user', content: 'no marker' }])));
    expect(unknown.apiMessage).toMatch(/no mock script matches.*\[task-short\], \[task-undefined-tool\]/);

    const undefinedTool = await apiErrorOf(client().messages.create(request([{ role: 'user', content: '[task-undefined-tool]' }])));
    expect(undefinedTool.apiMessage).toMatch(/calls tool "write_file", which the request does not define \(tools: read_file\)/);
  });
});

describe('mock model server: prompt cache accounting', () => {
  const system = 'You are a careful agent. '.repeat(40);

  it('reads the previous turn’s prefix from the cache when the breakpoint moves to the last block', async () => {
    server.script('[task-cache]', [
      { content: [toolUse('read_file', { path: 'a' })] },
      { content: [text('done')] },
    ]);
    const taskText = 'Read a [task-cache]';
    const withBreakpoint = { role: 'user', content: [{ type: 'text', text: taskText, cache_control: { type: 'ephemeral' } }] } satisfies MessageParam;
    const first = await client().messages.create(request([withBreakpoint], { system }));
    expect(first.usage.cache_read_input_tokens).toBe(0);
    expect(first.usage.cache_creation_input_tokens).toBeGreaterThan(200);
    expect(first.usage.cache_creation?.ephemeral_5m_input_tokens).toBe(first.usage.cache_creation_input_tokens);

    const results = toolResultsFor(first);
    const lastResult = Array.isArray(results.content) ? results.content.at(-1) : undefined;
    if (lastResult?.type !== 'tool_result') throw new Error('expected a tool_result block');
    const movedBreakpoint: MessageParam = { role: 'user', content: [{ ...lastResult, cache_control: { type: 'ephemeral' } }] };
    const second = await client().messages.create(request([
      { role: 'user', content: [{ type: 'text', text: taskText }] },
      { role: 'assistant', content: first.content },
      movedBreakpoint,
    ], { system }));

    expect(second.usage.cache_read_input_tokens).toBe(first.usage.cache_creation_input_tokens);
    expect(second.usage.cache_creation_input_tokens).toBeGreaterThan(0);
    expect(second.usage.input_tokens).toBe(0); // everything is behind the last breakpoint
  });

  it('does not share cached prefixes across API keys or bill uncached requests as cached', async () => {
    server.script('[task-cache-keys]', [{ content: [text('ok')] }]);
    const body = request([{ role: 'user', content: [{ type: 'text', text: 'Hi [task-cache-keys]', cache_control: { type: 'ephemeral' } }] }], { system });

    const writer = await client('key-1').messages.create(body);
    const otherKey = await client('key-2').messages.create(body);
    const sameKey = await client('key-1').messages.create(body);
    expect(otherKey.usage.cache_read_input_tokens).toBe(0);
    expect(sameKey.usage.cache_read_input_tokens).toBe(writer.usage.cache_creation_input_tokens);

    const uncached = await client('key-1').messages.create(request([{ role: 'user', content: 'Hi [task-cache-keys]' }], { system }));
    expect(uncached.usage).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: 0 });
    expect(uncached.usage.input_tokens).toBeGreaterThan(200);
  });
});

describe('mock model server: holding a call in flight', () => {
  it('holds responses for a script until released, and says when the request has arrived', async () => {
    server.script('[task-held]', [{ content: [text('released')] }]);
    server.script('[task-free]', [{ content: [text('free')] }]);
    const release = server.hold('[task-held]');

    let settled = false;
    const held = client().messages.create(request([{ role: 'user', content: '[task-held]' }])).finally(() => { settled = true; });
    const [arrived] = await server.waitForRequest('[task-held]', 1);
    expect(arrived?.status).toBeUndefined();
    // A whole round trip for another script: had the hold leaked, the held call would be answered by now.
    await expect(client().messages.create(request([{ role: 'user', content: '[task-free]' }]))).resolves.toMatchObject({ stop_reason: 'end_turn' });
    expect(settled).toBe(false);
    expect(server.requests('[task-held]').map((r) => r.status)).toEqual([undefined]);

    release();
    await expect(held).resolves.toMatchObject({ content: [{ type: 'text', text: 'released', citations: null }] });
    expect(server.calls('[task-held]')).toBe(1);
  });

  it('records a held call whose client went away as 499, not as answered', async () => {
    server.script('[task-abandoned]', [{ content: [text('nobody listens')] }]);
    server.hold('[task-abandoned]'); // never released: the client leaving ends the request
    const abort = new AbortController();

    const call = client().messages.create(request([{ role: 'user', content: '[task-abandoned]' }]), { signal: abort.signal });
    await server.waitForRequest('[task-abandoned]');
    abort.abort();
    await expect(call).rejects.toThrow(/aborted/i);
    await server.idle();

    expect(server.requests('[task-abandoned]').map((r) => r.status)).toEqual([499]);
    expect(server.calls('[task-abandoned]')).toBe(0);
  });

  it('rejects waitForRequest with a clear message when the request never comes', async () => {
    await expect(server.waitForRequest('[task-never]', 1, { timeoutMs: 20 })).rejects.toThrow(/waited 20ms for 1 request\(s\) for script \[task-never\]; 0 arrived/);
  });
});
