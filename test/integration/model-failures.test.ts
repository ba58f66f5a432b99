/**
 * How a run meets a model API that fails, refuses, pauses or runs out of budget: real apiserver,
 * the operator as a child process, the model stand-in driven through the real SDK. Every run has
 * its own name and script key, so the tests run concurrently in one namespace.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { clients, eventually } from '../harness/kube.ts';
import { startMockModelServer, text, toolUse, type MockModelServer } from '../harness/mock-model-server.ts';
import { createRun, runEvents, startAgentEnv, waitForRun, type AgentEnv, endpointFor } from '../harness/agent-env.ts';
import { createApiKeySecret, endedWith, gapsMs, lastBlockOf, messagesOf, modelSteps, okTool, succeeded, waitForEvent } from '../harness/model-scenarios.ts';

let env: AgentEnv;
/** A server of its own for the outage: an outage fails every request the server gets. */
let outageModel: MockModelServer;
/** A server that accepts only these keys, as the real API does. */
let authModel: MockModelServer;
const VALID_KEY = `sk-ant-test-${randomBytes(16).toString('hex')}`;
const LATE_KEY = `sk-ant-late-${randomBytes(16).toString('hex')}`;
const WRONG_KEY = `sk-ant-wrong-${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  env = await startAgentEnv('model-failures');
  outageModel = await startMockModelServer();
  authModel = await startMockModelServer({ apiKeys: [VALID_KEY, LATE_KEY] });
});
afterAll(async () => {
  await env.close();
  await outageModel.close();
  await authModel.close();
});

/** The run's model, through a ModelEndpoint for `baseURL` (and an API-key Secret) created on first use. */
const modelAt = async (baseURL: string, extra: { apiKeySecretRef?: { name: string; key?: string }; maxTokens?: number } = {}) => ({
  name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, baseURL, extra.apiKeySecretRef) },
  ...(extra.maxTokens !== undefined ? { maxTokens: extra.maxTokens } : {}),
});

describe.concurrent('model failures and stop reasons', () => {
  it('rides out a 20 s overload outage (529, retry-after 1 s) and then succeeds', async ({ expect }) => {
    const KEY = '[mf-outage]';
    const name = 'outage';
    outageModel.script(KEY, [{ content: [text('Recovered: the answer is 7.')] }]);
    const outageEnds = Date.now() + 20_000;
    outageModel.outage({ status: 529, durationMs: 20_000, retryAfterSeconds: 1 });
    await createRun(env.namespace, name, {
      model: await modelAt(outageModel.url), prompt: `${KEY} what is the answer?`,
      modelRetry: { initialBackoff: '500ms', maxBackoff: '2s' },
    });

    // While the outage lasts, the run says it is retrying, why, and when it tries next.
    const during = await waitForRun(env.namespace, name, 'the model step to record an Overloaded retry',
      (r) => modelSteps(r)[0]?.retry?.errorClass === 'Overloaded' && succeeded(r)?.reason === 'ModelRetrying', 15_000);
    expect(Date.now()).toBeLessThan(outageEnds);
    const step = modelSteps(during)[0];
    expect(step?.phase).toBe('Running');
    expect(step?.retry?.attempt).toBeGreaterThanOrEqual(1);
    expect(step?.retry?.errorClass).toBe('Overloaded');
    expect(step?.retry?.errorMessage).toContain('529');
    expect(step?.attempt).toBe((step?.retry?.attempt ?? 0) + 1);
    expect(Number.isNaN(Date.parse(step?.retry?.nextRetryAt ?? ''))).toBe(false);
    expect(during.status?.phase).toBe('Running');
    expect(succeeded(during)).toMatchObject({ status: 'Unknown', reason: 'ModelRetrying' });
    expect(succeeded(during)?.message).toContain('Overloaded');
    expect(during.status?.waitingFor).toMatch(/model retry/);
    const warning = await waitForEvent(env.namespace, name, 'ModelRetrying');
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain('Overloaded');
    expect(Date.now()).toBeLessThan(outageEnds);

    // Once the API recovers, the run completes with the model's answer.
    const done = await waitForRun(env.namespace, name, 'the run to succeed after the outage', endedWith('Succeeded', 'Completed'), 45_000);
    expect(done.status?.result).toBe('Recovered: the answer is 7.');
    const requests = outageModel.requests(KEY);
    const failed = requests.slice(0, -1);
    expect(failed.length).toBeGreaterThanOrEqual(5);
    expect(failed.every((r) => r.status === 529)).toBe(true);
    expect(requests.at(-1)?.status).toBe(200);
    // The first success came once the outage was over (the mock's end is a few µs after outageEnds).
    expect(requests.at(-1)?.receivedAt).toBeGreaterThanOrEqual(outageEnds - 100);
    // retry-after (1 s) is a floor, modelRetry.maxBackoff (2 s) a ceiling: no hammering, no long sleeps.
    for (const gap of gapsMs(requests)) {
      expect(gap).toBeGreaterThanOrEqual(1000);
      expect(gap).toBeLessThan(2000 + 3000);
    }
    const finalStep = modelSteps(done)[0];
    expect(finalStep).toMatchObject({ phase: 'Succeeded', attempt: requests.length, stopReason: 'end_turn' });
    await waitForEvent(env.namespace, name, 'Succeeded');
    const retryEvents = (await runEvents(env.namespace, name)).filter((e) => e.reason === 'ModelRetrying');
    expect(retryEvents).toHaveLength(failed.length);
  });

  it('honours retry-after on 429: the next attempt waits at least that long', async ({ expect }) => {
    const KEY = '[mf-429]';
    const name = 'rate-limited';
    env.model.script(KEY, [{ content: [text('Served after the rate limit.')] }]);
    env.model.failNext(1, { status: 429, retryAfterSeconds: 2 }, KEY);
    // The run's own backoff is far shorter than retry-after, so only retry-after can explain the wait.
    await createRun(env.namespace, name, {
      model: await modelAt(env.model.url), prompt: `${KEY} go`, modelRetry: { initialBackoff: '100ms', maxBackoff: '200ms' },
    });
    const during = await waitForRun(env.namespace, name, 'a RateLimited retry', (r) => modelSteps(r)[0]?.retry?.errorClass === 'RateLimited', 15_000);
    const [first] = env.model.requests(KEY);
    expect(first?.status).toBe(429);
    expect(Date.parse(modelSteps(during)[0]?.retry?.nextRetryAt ?? '')).toBeGreaterThanOrEqual((first?.receivedAt ?? Infinity) + 2000);

    const done = await waitForRun(env.namespace, name, 'the run to succeed', endedWith('Succeeded', 'Completed'), 20_000);
    expect(done.status?.result).toBe('Served after the rate limit.');
    const requests = env.model.requests(KEY);
    expect(requests.map((r) => r.status)).toEqual([429, 200]);
    expect(gapsMs(requests)[0]).toBeGreaterThanOrEqual(2000);
    expect(modelSteps(done)[0]).toMatchObject({ attempt: 2, phase: 'Succeeded' });
  });

  it('fails on 401 with ModelAuthenticationFailed, naming the Secret and what to do, without retrying', async ({ expect }) => {
    const KEY = '[mf-401]';
    const name = 'auth-refused';
    authModel.script(KEY, [{ content: [text('never sent')] }]);
    await createApiKeySecret(env.namespace, 'wrong-model-key', WRONG_KEY);
    await createRun(env.namespace, name, {
      model: await modelAt(authModel.url, { apiKeySecretRef: { name: 'wrong-model-key' } }), prompt: `${KEY} go`,
      modelRetry: { initialBackoff: '100ms', maxBackoff: '200ms' },
    });
    const run = await waitForRun(env.namespace, name, 'the run to fail', (r) => r.status?.phase === 'Failed', 20_000);
    const condition = succeeded(run);
    expect(condition).toMatchObject({ status: 'False', reason: 'ModelAuthenticationFailed' });
    expect(condition?.message).toContain('Secret wrong-model-key');
    expect(condition?.message).toContain('must put a valid API key in its Secret');
    expect(run.status?.message).toBe(condition?.message);
    expect(modelSteps(run)[0]).toMatchObject({ phase: 'Failed', retry: { errorClass: 'AuthenticationFailed' } });
    expect(modelSteps(run)[0]?.retry?.nextRetryAt).toBeUndefined();
    const requests = authModel.requests(KEY);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ status: 401, apiKey: WRONG_KEY });
    expect(JSON.stringify(run)).not.toContain(WRONG_KEY);
    expect(await waitForEvent(env.namespace, name, 'ModelAuthenticationFailed')).toMatchObject({ type: 'Warning' });
    expect((await runEvents(env.namespace, name)).some((e) => e.reason === 'ModelRetrying')).toBe(false);
  });

  it('fails on 404 with ModelNotFound and on 400 with ModelRequestInvalid, each after one request', async ({ expect }) => {
    const cases = [
      { KEY: '[mf-404]', name: 'model-not-found', status: 404, reason: 'ModelNotFound', hint: 'Check spec.model.name' },
      { KEY: '[mf-400]', name: 'request-invalid', status: 400, reason: 'ModelRequestInvalid', hint: 'Check spec.model' },
    ];
    await Promise.all(cases.map(async ({ KEY, name, status, reason, hint }) => {
      env.model.script(KEY, [{ content: [text('never sent')] }]);
      env.model.failNext(1, { status, message: `injected ${status}` }, KEY);
      await createRun(env.namespace, name, {
        model: await modelAt(env.model.url), prompt: `${KEY} go`, modelRetry: { initialBackoff: '100ms', maxBackoff: '200ms' },
      });
      const run = await waitForRun(env.namespace, name, `the run to fail (${status})`, (r) => r.status?.phase === 'Failed', 20_000);
      expect(succeeded(run), name).toMatchObject({ status: 'False', reason });
      expect(succeeded(run)?.message, name).toContain(`injected ${status}`);
      expect(succeeded(run)?.message, name).toContain(hint);
      expect(env.model.requests(KEY).map((r) => r.status), name).toEqual([status]);
      expect(await waitForEvent(env.namespace, name, reason), name).toMatchObject({ type: 'Warning' });
    }));
  });

  it('sends the API key from the referenced Secret and never shows it in status, Events, journal or logs', async ({ expect }) => {
    const KEY = '[mf-secret-key]';
    const name = 'key-from-secret';
    authModel.script(KEY, [{ content: [text('Authenticated answer.')] }]);
    await createApiKeySecret(env.namespace, 'model-key', VALID_KEY, 'anthropic');
    await createRun(env.namespace, name, {
      model: await modelAt(authModel.url, { apiKeySecretRef: { name: 'model-key', key: 'anthropic' } }), prompt: `${KEY} go`,
    });
    const run = await waitForRun(env.namespace, name, 'the run to succeed', endedWith('Succeeded', 'Completed'), 20_000);
    expect(run.status?.result).toBe('Authenticated answer.');
    const requests = authModel.requests(KEY);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.apiKey).toBe(VALID_KEY);

    expect(JSON.stringify(run)).not.toContain(VALID_KEY);
    await waitForEvent(env.namespace, name, 'Succeeded');
    expect(JSON.stringify(await runEvents(env.namespace, name))).not.toContain(VALID_KEY);
    const configMaps = await clients().core.listNamespacedConfigMap({ namespace: env.namespace });
    expect(JSON.stringify(configMaps.items)).not.toContain(VALID_KEY);
    // Logs are checked line by line, so a failure shows only the offending lines.
    expect(env.operator.logs().length).toBeGreaterThan(0);
    expect(env.operator.logs().filter((line) => JSON.stringify(line).includes(VALID_KEY))).toEqual([]);
    expect(env.operator.tail(Number.MAX_SAFE_INTEGER).split('\n').filter((line) => line.includes(VALID_KEY))).toEqual([]);
  });

  it('waits for a missing API-key Secret, saying to create it, and completes once it exists', async ({ expect }) => {
    const KEY = '[mf-late-secret]';
    const name = 'late-secret';
    authModel.script(KEY, [{ content: [text('Worth the wait.')] }]);
    await createRun(env.namespace, name, {
      model: await modelAt(authModel.url, { apiKeySecretRef: { name: 'late-model-key' } }), prompt: `${KEY} go`,
      modelRetry: { initialBackoff: '500ms', maxBackoff: '1s' },
    });
    // It keeps waiting (a second attempt failed the same way) rather than failing.
    const waiting = await waitForRun(env.namespace, name, 'the run to wait for its Secret',
      (r) => modelSteps(r)[0]?.retry?.errorClass === 'APIKeyUnavailable' && (modelSteps(r)[0]?.retry?.attempt ?? 0) >= 2, 20_000);
    const retry = modelSteps(waiting)[0]?.retry;
    expect(retry?.errorMessage).toContain(`Secret ${env.namespace}/late-model-key does not exist`);
    expect(retry?.errorMessage).toMatch(/create it/);
    expect(retry?.nextRetryAt).toBeDefined();
    expect(waiting.status?.phase).toBe('Running');
    expect(succeeded(waiting)).toMatchObject({ status: 'Unknown', reason: 'ModelRetrying' });
    expect(succeeded(waiting)?.message).toContain('late-model-key');
    expect(authModel.requests(KEY)).toHaveLength(0);

    await createApiKeySecret(env.namespace, 'late-model-key', LATE_KEY);
    const done = await waitForRun(env.namespace, name, 'the run to succeed once the Secret exists', endedWith('Succeeded', 'Completed'), 20_000);
    expect(done.status?.result).toBe('Worth the wait.');
    expect(authModel.requests(KEY).map((r) => [r.status, r.apiKey])).toEqual([[200, LATE_KEY]]);
  });

  it('fails with MaxTokensReached when a response is cut off at max_tokens', async ({ expect }) => {
    const KEY = '[mf-max-tokens]';
    const name = 'stop-max-tokens';
    env.model.script(KEY, [{ content: [text('The answer is a very long')], stopReason: 'max_tokens' }, { content: [text('never')] }]);
    await createRun(env.namespace, name, { model: await modelAt(env.model.url, { maxTokens: 64 }), prompt: `${KEY} go` });
    const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 20_000);
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'MaxTokensReached' });
    expect(succeeded(run)?.message).toContain('model.maxTokens (64)');
    expect(run.status?.phase).toBe('Failed');
    expect(modelSteps(run)).toHaveLength(1);
    expect(modelSteps(run)[0]?.stopReason).toBe('max_tokens');
    expect(env.model.requests(KEY)).toHaveLength(1);
  });

  it('fails with ModelRefused when the model declines', async ({ expect }) => {
    const KEY = '[mf-refusal]';
    const name = 'stop-refusal';
    env.model.script(KEY, [{ content: [text('I cannot help with that.')], stopReason: 'refusal' }, { content: [text('never')] }]);
    await createRun(env.namespace, name, { model: await modelAt(env.model.url), prompt: `${KEY} go` });
    const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 20_000);
    expect(run.status?.phase).toBe('Failed');
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'ModelRefused' });
    expect(succeeded(run)?.message).toContain('I cannot help with that.');
    expect(modelSteps(run)[0]?.stopReason).toBe('refusal');
    expect(env.model.requests(KEY)).toHaveLength(1);
  });

  it('succeeds on stop_sequence', async ({ expect }) => {
    const KEY = '[mf-stop-sequence]';
    const name = 'stop-sequence';
    env.model.script(KEY, [{ content: [text('Answer: 7')], stopReason: 'stop_sequence', stopSequence: '###' }]);
    await createRun(env.namespace, name, { model: await modelAt(env.model.url), prompt: `${KEY} go` });
    const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 20_000);
    expect(run.status?.phase).toBe('Succeeded');
    expect(succeeded(run)).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(run.status?.result).toBe('Answer: 7');
    expect(modelSteps(run)[0]?.stopReason).toBe('stop_sequence');
  });

  it('continues a paused turn (pause_turn), twice, by sending the paused content back, then completes', async ({ expect }) => {
    const KEY = '[mf-pause-turn]';
    const name = 'stop-pause-turn';
    env.model.script(KEY, [
      { content: [text('Searching the archives for the answer.')], stopReason: 'pause_turn' },
      { content: [text('Still searching: the second shelf.')], stopReason: 'pause_turn' },
      { content: [text('Found it: the answer is 42.')] },
    ]);
    await createRun(env.namespace, name, { model: await modelAt(env.model.url), prompt: `${KEY} find the answer` });
    await env.model.waitForRequest(KEY, 3, { timeoutMs: 20_000 });
    const requests = env.model.requests(KEY);
    // The continuation is the same conversation with the paused assistant content as its last message:
    // that is how the Messages API resumes a paused turn ("provide the response back as-is").
    const answer = (i: number) => (requests[i]?.response as { content?: Record<string, unknown>[] } | undefined)?.content ?? [];
    const withoutMarker = (m: { content: Record<string, unknown>[] } | undefined) => m?.content.map(({ cache_control: _marker, ...block }) => block);
    const continued = messagesOf(requests[1]);
    expect(continued.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(withoutMarker(continued[1])).toEqual(answer(0));
    // Paused again: still one assistant turn, both paused answers in order (the API would merge two).
    const again = messagesOf(requests[2]);
    expect(again.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(withoutMarker(again[1])).toEqual([...answer(0), ...answer(1)]);
    expect(requests.map((r) => r.turnIndex)).toEqual([0, 1, 2]);

    const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 20_000);
    expect(succeeded(run), JSON.stringify(run.status?.message)).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(run.status?.result).toBe('Found it: the answer is 42.');
    expect(modelSteps(run).map((s) => s.stopReason)).toEqual(['pause_turn', 'pause_turn', 'end_turn']);
    expect(env.model.requests(KEY).map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('fails with MaxTurnsReached after exactly limits.maxTurns model calls', async ({ expect }) => {
    const KEY = '[mf-max-turns]';
    const name = 'max-turns';
    const again = { content: [toolUse('probe', {})] };
    env.model.script(KEY, [again, again, again, again]);
    await createRun(env.namespace, name, {
      model: await modelAt(env.model.url), prompt: `${KEY} go`, tools: [okTool('probe')], limits: { maxTurns: 2 },
    });
    const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 30_000);
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'MaxTurnsReached' });
    expect(succeeded(run)?.message).toContain('limits.maxTurns');
    expect(run.status?.phase).toBe('Failed');
    expect(env.model.requests(KEY)).toHaveLength(2);
    expect(modelSteps(run)).toHaveLength(2);
    expect((run.status?.steps ?? []).map((s) => `${s.kind}:${s.phase}`)).toEqual(['Model:Succeeded', 'Tool:Succeeded', 'Model:Succeeded', 'Tool:Succeeded']);
  });

  it('fails with TokenBudgetExceeded once limits.maxTotalTokens is used up', async ({ expect }) => {
    const KEY = '[mf-token-budget]';
    const name = 'token-budget';
    const usage = { input_tokens: 700, output_tokens: 400, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    env.model.script(KEY, [{ content: [toolUse('probe', {})], usage }, { content: [text('never')] }]);
    await createRun(env.namespace, name, {
      model: await modelAt(env.model.url), prompt: `${KEY} go`, tools: [okTool('probe')], limits: { maxTotalTokens: 1000 },
    });
    const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 30_000);
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'TokenBudgetExceeded' });
    expect(succeeded(run)?.message).toContain('limits.maxTotalTokens');
    expect(succeeded(run)?.message).toContain('1000');
    expect(run.status?.usage?.totalTokens).toBe(1100);
    expect(env.model.requests(KEY)).toHaveLength(1);
  });

  it('fails with DeadlineExceeded when limits.timeout passes during a model call, and abandons the call', async ({ expect }) => {
    const KEY = '[mf-deadline]';
    const name = 'deadline';
    env.model.script(KEY, [{ content: [text('too late')] }]);
    const release = env.model.hold(KEY);
    try {
      await createRun(env.namespace, name, { model: await modelAt(env.model.url), prompt: `${KEY} go`, limits: { timeout: '3s' } });
      await env.model.waitForRequest(KEY, 1, { timeoutMs: 15_000 });
      const run = await waitForRun(env.namespace, name, 'the run to finish', (r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? ''), 20_000);
      expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'DeadlineExceeded' });
      expect(succeeded(run)?.message).toContain('limits.timeout (3s)');
      expect(run.status?.phase).toBe('Failed');
      const elapsed = Date.parse(run.status?.completionTime ?? '') - Date.parse(run.status?.startTime ?? '');
      expect(elapsed).toBeGreaterThanOrEqual(3000);
      expect(elapsed).toBeLessThan(3000 + 5000);
      expect(modelSteps(run)[0]).toMatchObject({ phase: 'Failed', outcome: 'Cancelled' });
      // The operator stopped waiting for the answer: the held request lost its client.
      await eventually('the held model call to be abandoned', () => Promise.resolve(env.model.requests(KEY)[0]?.status === 499 ? true : undefined), 10_000);
    } finally {
      release();
    }
  });

  it('marks the end of the conversation for the prompt cache, and reads the cache on later turns', async ({ expect }) => {
    const KEY = '[mf-cache]';
    const name = 'prompt-cache';
    env.model.script(KEY, [
      { content: [toolUse('probe', { turn: 1 })] },
      { content: [toolUse('probe', { turn: 2 })] },
      { content: [text('Three turns done.')] },
    ]);
    await createRun(env.namespace, name, {
      model: await modelAt(env.model.url), systemPrompt: 'You are a prompt-cache test agent.', prompt: `${KEY} go`, tools: [okTool('probe')],
    });
    const run = await waitForRun(env.namespace, name, 'the run to succeed', endedWith('Succeeded', 'Completed'), 30_000);
    expect(run.status?.result).toBe('Three turns done.');
    const requests = env.model.requests(KEY);
    expect(requests).toHaveLength(3);
    for (const i of [1, 2]) {
      expect(lastBlockOf(requests[i]), `request ${i + 1}`).toMatchObject({ type: 'tool_result', cache_control: { type: 'ephemeral' } });
      // Exactly one breakpoint in the conversation: it moves to the end instead of piling up.
      const marked = messagesOf(requests[i]).flatMap((m) => m.content).filter((b) => b.cache_control !== undefined);
      expect(marked, `request ${i + 1}`).toHaveLength(1);
      const usage = (requests[i]?.response as { usage?: { cache_read_input_tokens?: number } } | undefined)?.usage;
      expect(usage?.cache_read_input_tokens, `request ${i + 1}`).toBeGreaterThan(0);
    }
    expect(run.status?.usage?.cacheReadInputTokens).toBeGreaterThan(0);
    const perStep = modelSteps(run).reduce((sum, s) => sum + (s.usage?.cacheReadInputTokens ?? 0), 0);
    expect(run.status?.usage?.cacheReadInputTokens).toBe(perStep);
  });
});
