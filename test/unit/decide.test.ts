/**
 * decide(observed) → { status, effects, requeueAfterMs }: table-driven tests of the whole agent
 * loop as a pure function. Every Observed is built by test/harness/builders.ts (fixed clock,
 * fake hash); `advance()` walks a run forward with decide() itself where the history matters.
 */
import { describe, expect, it } from 'vitest';
import type { AgentRunStatus } from '../../src/api/agent-run.ts';
import { FINALIZER } from '../../src/api/conditions.ts';
import { decide, OUTPUT_READ_RECHECK_MS, RESULT_CAPTURE_GRACE_MS } from '../../src/core/decide.ts';
import type { Decision } from '../../src/core/effects.ts';
import { planExecution } from '../../src/core/execution-plan.ts';
import type { ToolResultEntry } from '../../src/api/journal-entry.ts';
import { toolPodName } from '../../src/core/naming.ts';
import type { PodObservation } from '../../src/core/observed.ts';
import type { ModelFailure } from '../../src/core/policies.ts';
import {
  advance, at, call, digestOf, effectsOf, effectTypes, failure, finishedStatus, iso, journaled, journaledEntries, modelEntry, modelStep,
  observed, pod, podEnv, response, RUN_NAME, runningStatus, stepOf, succeededCondition, T0, text, toolResultEntry, toolStep, toolUse,
  WEB_FETCH_SCHEMA, type ObservedInit,
} from '../harness/builders.ts';

const HOUR = 3_600_000;
const POD_A1 = toolPodName(RUN_NAME, 2, 1); // research-s2-a1
const POD_A2 = toolPodName(RUN_NAME, 2, 2);

const FETCH_INPUT = { url: 'https://kubernetes.io/blog/2015/07/kubernetes-v1' };
const FETCH = toolUse('toolu_fetch', 'web_fetch', FETCH_INPUT);
const SHELL = toolUse('toolu_shell', 'shell', { cmd: 'date' });

/** A run whose first model call is in this process (state given), nothing journaled yet. */
function firstCallObserved(c: Parameters<typeof call.succeeded>[0] | null, extra: ObservedInit = {}): ObservedInit {
  return {
    status: runningStatus([modelStep(1, 1)]),
    now: at(10),
    ...(c ? { modelCalls: { 1: call.succeeded(c) } } : {}),
    ...extra,
  };
}

/** Turn 1 asked for one tool call (`tool`), whose step 2 is Running as attempt `attempt`. */
function toolRunning(tool: 'web_fetch' | 'shell', extra: ObservedInit & { attempt?: number } = {}): ObservedInit {
  const { attempt = 1, ...rest } = extra;
  const use = tool === 'web_fetch' ? { ...FETCH, id: 'toolu_1' } : { ...SHELL, id: 'toolu_1' };
  const entry = modelEntry(1, 1, response('tool_use', [text('Let me check.'), use]));
  return {
    status: runningStatus([
      journaled(modelStep(1, 1), entry, { stopReason: 'tool_use' }),
      toolStep(2, 1, tool, 'toolu_1', { phase: 'Running', attempt, podName: toolPodName(RUN_NAME, 2, attempt), startedAt: iso(at(5)) }),
    ]),
    journal: [entry],
    now: at(60),
    ...rest,
  };
}

function toolResultOf(d: Decision): ToolResultEntry {
  const entries = journaledEntries(d).filter((e): e is ToolResultEntry => e.kind === 'ToolResult');
  expect(entries).toHaveLength(1);
  const [entry] = entries;
  if (!entry) throw new Error('unreachable');
  return entry;
}

// ---------------------------------------------------------------------------------------------

describe('guards run in a fixed order: deleting → finished → cancelled → deadline → tools → in flight → next', () => {
  const rows: { name: string; init: ObservedInit; check: (d: Decision, o: ObservedInit) => void }[] = [
    {
      name: 'deleting beats finished: a Succeeded run being deleted still has its pods deleted, status untouched',
      init: { status: finishedStatus('Succeeded', at(50)), deletionTimestamp: iso(at(60)), now: at(61), pods: [pod.running(POD_A1)], spec: { cancel: true } },
      check: (d, o) => {
        expect(d.effects).toEqual([{ type: 'deletePod', name: POD_A1 }]);
        expect(d.status).toEqual(o.status);
        expect(d.requeueAfterMs).toBe(1000);
      },
    },
    {
      name: 'finished beats cancelled: cancelling a Succeeded run changes nothing',
      init: { status: finishedStatus('Succeeded', at(50)), finalizers: [], spec: { cancel: true }, now: at(60) },
      check: (d) => {
        expect(d.status.phase).toBe('Succeeded');
        expect(d.effects).toEqual([]);
      },
    },
    {
      name: 'cancelled beats the deadline',
      init: { status: runningStatus([modelStep(1, 1)]), modelCalls: { 1: call.inFlight() }, spec: { cancel: true }, now: T0 + 2 * HOUR },
      check: (d) => {
        expect(d.status.phase).toBe('Cancelled');
        expect(succeededCondition(d).reason).toBe('Cancelled');
      },
    },
    {
      name: 'the deadline beats unresolvable tools',
      init: {
        status: runningStatus([]), toolSnapshot: null, now: T0 + HOUR,
        spec: { tools: [{ name: 'fetch', toolRef: { name: 'web-fetch' } }] }, agentTools: { 'web-fetch': undefined },
      },
      check: (d) => {
        expect(d.status.phase).toBe('Failed');
        expect(succeededCondition(d).reason).toBe('DeadlineExceeded');
        expect(d.status.message).toContain('limits.timeout (1h)');
      },
    },
    {
      name: 'unresolvable tools beat steps in flight: a finished call is not recorded while tools are missing',
      init: {
        status: runningStatus([modelStep(1, 1)]), toolSnapshot: null, now: at(10), modelCalls: { 1: call.succeeded(response('end_turn', [text('done')])) },
        spec: { tools: [{ name: 'fetch', toolRef: { name: 'web-fetch' } }] }, agentTools: { 'web-fetch': undefined },
      },
      check: (d) => {
        expect(effectTypes(d)).toEqual(['event']);
        expect(d.status.phase).toBe('Running');
        expect(succeededCondition(d).reason).toBe('WaitingForAgentTool');
      },
    },
    {
      name: 'a step in flight holds the next step back',
      init: { status: runningStatus([modelStep(1, 1)]), modelCalls: { 1: call.inFlight() }, now: at(10) },
      check: (d) => {
        expect(d.effects).toEqual([]);
        expect(d.status.steps).toHaveLength(1);
        expect(d.status.waitingFor).toBe('model response');
        expect(d.requeueAfterMs).toBe(HOUR - 10_000);
      },
    },
    {
      name: 'with nothing in flight the next step starts',
      init: { status: runningStatus([]), now: at(10) },
      check: (d) => {
        expect(effectTypes(d)).toEqual(['startModelCall']);
        expect(d.status.steps).toMatchObject([{ id: 1, kind: 'Model', phase: 'Running' }]);
      },
    },
  ];
  it.each(rows)('$name', ({ init, check }) => {
    check(decide(observed(init)), init);
  });
});

// ---------------------------------------------------------------------------------------------

describe('first reconcile', () => {
  const d = decide(observed({ finalizers: [], now: T0 }));

  it('adds the finalizer, records the start, journals the tools and starts the first model call, in that order', () => {
    expect(effectTypes(d)).toEqual(['addFinalizer', 'event', 'writeJournal', 'startModelCall']);
    expect(effectsOf(d, 'event')[0]).toMatchObject({ eventType: 'Normal', reason: 'Started', message: 'Run started with model claude-test and 2 tools.' });
    const [tools] = effectsOf(d, 'writeJournal');
    expect(tools?.name).toBe('research-tools');
    expect(tools?.stepId).toBeUndefined();
    expect(tools?.entry.kind === 'Tools' && tools.entry.tools.map((t) => [t.name, t.idempotent, t.retries, t.timeoutSeconds])).toEqual([
      ['web_fetch', true, 2, 120], ['shell', false, 2, 600],
    ]);
    expect(tools?.digest).toBe(tools ? digestOf(tools.entry) : '');
    expect(effectsOf(d, 'startModelCall')).toMatchObject([{ stepId: 1, attempt: 1 }]);
  });

  it('sets startTime, one Running Model step and a Succeeded=Unknown condition', () => {
    expect(d.status).toMatchObject({
      phase: 'Running', startTime: iso(T0), currentTurn: 0, currentStep: '1 model', waitingFor: 'model response', observedGeneration: 1,
      usage: { totalTokens: 0 },
      steps: [{ id: 1, kind: 'Model', turn: 1, phase: 'Running', attempt: 1, startedAt: iso(T0) }],
    });
    expect(succeededCondition(d)).toMatchObject({ status: 'Unknown', reason: 'Running', lastTransitionTime: iso(T0) });
    expect(d.requeueAfterMs).toBe(HOUR);
  });

  it('asks the model with the prompt, the system prompt and the tools, cache breakpoints placed', () => {
    const request = effectsOf(d, 'startModelCall')[0]?.request;
    expect(request).toEqual({
      model: 'claude-test',
      max_tokens: 1024,
      system: [{ type: 'text', text: 'You are a careful research agent.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'When was Kubernetes 1.0 released?', cache_control: { type: 'ephemeral' } }] }],
      tools: [
        { name: 'web_fetch', description: 'Fetch a web page.', input_schema: WEB_FETCH_SCHEMA },
        { name: 'shell', description: 'Run a shell command.', input_schema: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] } },
      ],
    });
  });

  it('does not add a finalizer that is already there', () => {
    expect(effectTypes(decide(observed({ now: T0 })))).not.toContain('addFinalizer');
  });

  it('plans the finalizer first and starts the model call with the status write (the plan production runs)', () => {
    const plan = planExecution(d.effects);
    expect(plan.addFinalizer).toBe(true);
    expect(plan.journal.map((e) => e.entry.kind)).toEqual(['Tools']);
    expect(plan.start.map((e) => e.type)).toEqual(['startModelCall']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a model call that asks for tools', () => {
  const uses = [
    toolUse('toolu_a', 'web_fetch', { url: 'https://a.example' }),
    toolUse('toolu_b', 'web_fetch', { url: 'https://b.example' }),
    toolUse('toolu_c', 'shell', { cmd: 'uname -a' }),
  ];
  const r = response('tool_use', [text('Three things to check.'), ...uses], { input: 300, output: 40 });
  const o = observed(firstCallObserved(r, { spec: { limits: { maxParallelTools: 2 } } }));
  const d = decide(o);

  it('journals the response before the status records it (a BEFORE_STATUS effect, first)', () => {
    const entry = modelEntry(1, 1, r);
    expect(d.effects[0]).toEqual({ type: 'writeJournal', name: 'research-j1', stepId: 1, entry, digest: digestOf(entry) });
    const plan = planExecution(d.effects);
    expect(plan.journal).toEqual([d.effects[0]]);
    expect(plan.start.map((e) => e.type)).toEqual(['createPod', 'createPod']);
    expect(stepOf(d, 1)).toMatchObject({
      phase: 'Succeeded', outcome: 'Completed', stopReason: 'tool_use', finishedAt: iso(at(10)),
      usage: { inputTokens: 300, outputTokens: 40, totalTokens: 340 },
      journal: { name: 'research-j1', digest: digestOf(entry) },
    });
    expect(d.status.usage?.totalTokens).toBe(340);
    expect(d.status.currentTurn).toBe(1);
  });

  it('appends one Pending tool step per tool_use, in order, and starts limits.maxParallelTools of them', () => {
    expect(d.status.steps?.slice(1)).toMatchObject([
      { id: 2, kind: 'Tool', turn: 1, tool: 'web_fetch', toolUseId: 'toolu_a', phase: 'Running', attempt: 1, podName: 'research-s2-a1', startedAt: iso(at(10)) },
      { id: 3, kind: 'Tool', turn: 1, tool: 'web_fetch', toolUseId: 'toolu_b', phase: 'Running', attempt: 1, podName: 'research-s3-a1' },
      { id: 4, kind: 'Tool', turn: 1, tool: 'shell', toolUseId: 'toolu_c', phase: 'Pending', attempt: 1 },
    ]);
    expect(stepOf(d, 4).podName).toBeUndefined();
    const pods = effectsOf(d, 'createPod');
    expect(pods.map((p) => [p.stepId, p.pod.metadata?.name])).toEqual([[2, 'research-s2-a1'], [3, 'research-s3-a1']]);
    expect(pods.map((p) => podEnv(p).AGENTRUN_INPUT)).toEqual(['{"url":"https://a.example"}', '{"url":"https://b.example"}']);
    expect(effectTypes(d).indexOf('writeJournal')).toBeLessThan(effectTypes(d).indexOf('createPod'));
    expect(effectTypes(d)).not.toContain('startModelCall');
    expect(d.status).toMatchObject({ phase: 'Running', currentStep: '2 tool/web_fetch (+2)', waitingFor: 'tools: web_fetch, shell' });
  });

  it('starts the waiting tool once a running one is recorded, exactly once', () => {
    const next = advance(o, d, {
      now: at(20),
      podUpdates: [pod.exited('research-s2-a1', 0, at(19))],
      toolOutputs: { 2: { ok: true, text: 'page a', truncated: false } },
    });
    const d1 = decide(next);
    const d2 = decide(advance(next, d1, { now: at(21) }));
    expect(stepOf(d2, 4)).toMatchObject({ phase: 'Running', podName: 'research-s4-a1' });
    expect([...effectsOf(d1, 'createPod'), ...effectsOf(d2, 'createPod')].map((p) => p.pod.metadata?.name)).toEqual(['research-s4-a1']);
  });

  it('reuses a slot freed in the same decision instead of waiting for another reconcile', () => {
    const next = advance(o, d, {
      now: at(20),
      podUpdates: [pod.exited('research-s2-a1', 0, at(19))],
      toolOutputs: { 2: { ok: true, text: 'page a', truncated: false } },
    });
    const d2 = decide(next);
    expect(stepOf(d2, 2).phase).toBe('Succeeded');
    expect(stepOf(d2, 4)).toMatchObject({ phase: 'Running', podName: 'research-s4-a1' });
  });

  it('asks the model again with every result once all tools are recorded, in tool_use order', () => {
    let cur = advance(o, d, {
      now: at(20),
      podUpdates: [pod.exited('research-s3-a1', 1, at(19))],
      toolOutputs: { 3: { ok: true, text: 'b is down', truncated: false } },
    });
    let dn = decide(cur);
    cur = advance(cur, dn, { now: at(21) });
    dn = decide(cur); // starts step 4 if it did not start yet
    cur = advance(cur, dn, {
      now: at(30),
      podUpdates: [pod.exited('research-s2-a1', 0, at(29)), pod.exited('research-s4-a1', 0, at(29))],
      toolOutputs: { 2: { ok: true, text: 'page a', truncated: false }, 4: { ok: true, text: 'Linux', truncated: false } },
    });
    dn = decide(cur);
    const next = effectsOf(dn, 'startModelCall');
    expect(next).toHaveLength(1);
    expect(next[0]?.stepId).toBe(5);
    const last = next[0]?.request.messages.at(-1);
    expect(last?.role).toBe('user');
    expect(last?.content.map((b) => [b.tool_use_id, b.content, b.is_error ?? false])).toEqual([
      ['toolu_a', 'page a', false],
      ['toolu_b', 'Error: the tool exited with code 1.\nb is down', true],
      ['toolu_c', 'Linux', false],
    ]);
    expect(stepOf(dn, 5)).toMatchObject({ kind: 'Model', turn: 2, phase: 'Running', attempt: 1 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('each stop_reason', () => {
  const rows = [
    { stop: 'end_turn', phase: 'Succeeded', reason: 'Completed', status: 'True', result: 'Kubernetes 1.0 shipped on 21 July 2015.' },
    { stop: 'stop_sequence', phase: 'Succeeded', reason: 'Completed', status: 'True', result: 'Kubernetes 1.0 shipped on 21 July 2015.' },
    { stop: 'max_tokens', phase: 'Failed', reason: 'MaxTokensReached', status: 'False', message: 'model.maxTokens (1024)' },
    { stop: 'refusal', phase: 'Failed', reason: 'ModelRefused', status: 'False', message: 'The model declined the task: Kubernetes 1.0' },
    { stop: 'model_context_window_exceeded', phase: 'Failed', reason: 'ContextWindowExceeded', status: 'False', message: 'context window' },
    { stop: 'some_future_reason', phase: 'Failed', reason: 'UnexpectedStopReason', status: 'False', message: 'stop_reason some_future_reason' },
    { stop: null, phase: 'Failed', reason: 'UnexpectedStopReason', status: 'False', message: 'stop_reason null', stepStop: 'unknown' },
  ] as const;

  it.each(rows)('$stop → $phase ($reason)', (row) => {
    const r = response(row.stop, [text('Kubernetes 1.0'), text('shipped on 21 July 2015.')]);
    const d = decide(observed(firstCallObserved(r)));
    expect(journaledEntries(d)).toEqual([modelEntry(1, 1, r)]);
    expect(stepOf(d, 1)).toMatchObject({ phase: 'Succeeded', stopReason: 'stepStop' in row ? row.stepStop : row.stop });
    expect(d.status.phase).toBe(row.phase);
    expect(d.status.completionTime).toBe(iso(at(10)));
    expect(succeededCondition(d)).toMatchObject({ status: row.status, reason: row.reason });
    if ('result' in row) expect(d.status.result).toBe(row.result.replace('1.0 shipped', '1.0\nshipped'));
    else expect(d.status.result).toBeUndefined();
    if ('message' in row) expect(d.status.message).toContain(row.message);
    expect(effectTypes(d)).not.toContain('startModelCall');
    expect(d.status.waitingFor).toBeUndefined();
    expect(d.status.currentStep).toBeUndefined();
    expect(effectsOf(d, 'event').at(-1)).toMatchObject(row.phase === 'Succeeded' ? { eventType: 'Normal', reason: 'Succeeded' } : { eventType: 'Warning', reason: row.reason });
  });

  it('tool_use without a tool_use block → Failed UnexpectedStopReason', () => {
    const d = decide(observed(firstCallObserved(response('tool_use', [text('hmm')]))));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d).reason).toBe('UnexpectedStopReason');
    expect(d.status.steps).toHaveLength(1);
  });

  it('pause_turn → the run goes on: a new Model step continues the paused turn from the journal', () => {
    const paused = response('pause_turn', [text('Searching…'), { type: 'server_tool_use', id: 'srv_1', name: 'web_search', input: { query: 'k8s 1.0' } }]);
    const d = decide(observed(firstCallObserved(paused)));
    expect(d.status.phase).toBe('Running');
    expect(stepOf(d, 1)).toMatchObject({ phase: 'Succeeded', stopReason: 'pause_turn' });
    expect(stepOf(d, 2)).toMatchObject({ kind: 'Model', phase: 'Running', attempt: 1 });
    const [start] = effectsOf(d, 'startModelCall');
    expect(start?.stepId).toBe(2);
    const messages = start?.request.messages ?? [];
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[1]?.content.map((b) => b.type)).toEqual(['text', 'server_tool_use']);
    expect(messages[1]?.content.at(-1)?.cache_control).toEqual({ type: 'ephemeral' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('transient model failures are retried with backoff', () => {
  const rows: { name: string; failure: ModelFailure; attempt: number; errorClass: string; waitMs: number }[] = [
    { name: '429 with retry-after', failure: failure.http(429, { retryAfterMs: 30_000, errorType: 'rate_limit_error' }), attempt: 1, errorClass: 'RateLimited', waitMs: 30_000 },
    { name: '429 whose retry-after is shorter than the backoff', failure: failure.http(429, { retryAfterMs: 10 }), attempt: 3, errorClass: 'RateLimited', waitMs: 4000 },
    { name: '529 overloaded', failure: failure.http(529, { errorType: 'overloaded_error' }), attempt: 1, errorClass: 'Overloaded', waitMs: 1000 },
    { name: '500 server error, second attempt', failure: failure.http(500), attempt: 2, errorClass: 'ServerError', waitMs: 2000 },
    { name: '408 request timeout', failure: failure.http(408), attempt: 1, errorClass: 'Timeout', waitMs: 1000 },
    { name: 'client timeout', failure: failure.timeout(), attempt: 1, errorClass: 'Timeout', waitMs: 1000 },
    { name: 'connection reset, fourth attempt', failure: failure.connection(), attempt: 4, errorClass: 'ConnectionError', waitMs: 8000 },
    { name: 'backoff capped at modelRetry.maxBackoff', failure: failure.http(503), attempt: 9, errorClass: 'ServerError', waitMs: 100_000 },
  ];

  it.each(rows)('$name → retry recorded, attempt+1, requeued after $waitMs ms', ({ failure: f, attempt, errorClass, waitMs }) => {
    const o = observed({ status: runningStatus([modelStep(1, 1, { attempt })]), modelCalls: { 1: call.failed(f, attempt) }, now: at(10) });
    const d = decide(o);
    const nextRetryAt = iso(at(10) + waitMs);
    expect(stepOf(d, 1)).toMatchObject({ phase: 'Running', attempt: attempt + 1, retry: { attempt, errorClass, nextRetryAt } });
    expect(d.requeueAfterMs).toBe(waitMs);
    expect(effectTypes(d)).toEqual(['event']);
    expect(effectsOf(d, 'event')[0]).toMatchObject({ eventType: 'Warning', reason: 'ModelRetrying' });
    expect(d.status).toMatchObject({ phase: 'Running', waitingFor: `model retry (${errorClass})` });
    expect(succeededCondition(d)).toMatchObject({ status: 'Unknown', reason: 'ModelRetrying' });
    expect(d.status.message).toContain(`attempt ${attempt + 1} at ${nextRetryAt}`);
  });

  it('waits for nextRetryAt, then sends the same request as the next attempt', () => {
    const o = observed(firstCallObserved(null, { modelCalls: { 1: call.failed(failure.http(529)) } }));
    const d1 = decide(o);
    const early = decide(advance(o, d1, { now: at(10.5) }));
    expect(early.effects).toEqual([]);
    expect(early.requeueAfterMs).toBe(500);
    const due = decide(advance(o, d1, { now: at(11) }));
    const [start] = effectsOf(due, 'startModelCall');
    expect(start).toMatchObject({ stepId: 1, attempt: 2 });
    const original = effectsOf(decide(observed({ status: runningStatus([]), now: at(10) })), 'startModelCall')[0]?.request;
    expect(start?.request).toEqual(original);
    expect(due.status.steps).toHaveLength(1);
  });

  it('a retry that would pass the run deadline fails the run with DeadlineExceeded', () => {
    const d = decide(observed({
      spec: { limits: { timeout: '1m' } }, status: runningStatus([modelStep(1, 1)]), now: at(45),
      modelCalls: { 1: call.failed(failure.http(429, { retryAfterMs: 15_000 })) },
    }));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: 'DeadlineExceeded' });
    expect(d.status.message).toContain('RateLimited');
    expect(effectsOf(d, 'cancelModelCall')).toEqual([{ type: 'cancelModelCall', stepId: 1 }]);
    // One millisecond less and it is retried.
    const ok = decide(observed({ spec: { limits: { timeout: '1m' } }, status: runningStatus([modelStep(1, 1)]), now: at(45) - 1,
      modelCalls: { 1: call.failed(failure.http(429, { retryAfterMs: 15_000 })) } }));
    expect(ok.status.phase).toBe('Running');
  });
});

describe('terminal model failures fail the run with what to fix', () => {
  const rows = [
    { status: 400, reason: 'ModelRequestInvalid', errorClass: 'InvalidRequest', says: 'inputSchema' },
    { status: 401, reason: 'ModelAuthenticationFailed', errorClass: 'AuthenticationFailed', says: 'the API key of ModelEndpoint anthropic' },
    { status: 403, reason: 'ModelPermissionDenied', errorClass: 'PermissionDenied', says: 'model claude-test' },
    { status: 404, reason: 'ModelNotFound', errorClass: 'NotFound', says: 'spec.model.name' },
    { status: 413, reason: 'ModelRequestInvalid', errorClass: 'InvalidRequest', says: '413' },
  ];
  it.each(rows)('$status → Failed $reason', (row) => {
    const d = decide(observed({ status: runningStatus([modelStep(1, 1)]), modelCalls: { 1: call.failed(failure.http(row.status)) }, now: at(10) }));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: row.reason });
    expect(d.status.message).toContain(row.says);
    expect(stepOf(d, 1)).toMatchObject({ phase: 'Failed', retry: { attempt: 1, errorClass: row.errorClass } });
    expect(stepOf(d, 1).retry?.nextRetryAt).toBeUndefined();
    expect(effectTypes(d)).not.toContain('startModelCall');
    expect(journaledEntries(d)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('recovery after a crash', () => {
  it('a Running model step whose response is journaled completes from the journal, without a new call', () => {
    const r = response('tool_use', [FETCH]);
    const entry = modelEntry(1, 1, r, 2);
    const d = decide(observed({ status: runningStatus([modelStep(1, 1, { attempt: 2 })]), journal: [entry], now: at(30) }));
    expect(effectTypes(d)).not.toContain('startModelCall');
    expect(journaledEntries(d)).toEqual([]);
    expect(stepOf(d, 1)).toMatchObject({ phase: 'Succeeded', attempt: 2, journal: { name: 'research-j1', digest: digestOf(entry) } });
    expect(effectsOf(d, 'createPod').map((p) => p.pod.metadata?.name)).toEqual(['research-s2-a1']);
  });

  it('a Running model step with neither a call nor a journal entry is asked again, same attempt', () => {
    const step = modelStep(1, 1, { attempt: 3, retry: { attempt: 2, errorClass: 'Overloaded', errorMessage: '529', nextRetryAt: iso(at(20)) } });
    const d = decide(observed({ status: runningStatus([step]), now: at(25) }));
    expect(effectsOf(d, 'startModelCall')).toMatchObject([{ stepId: 1, attempt: 3 }]);
    expect(d.status.steps).toHaveLength(1);
    expect(stepOf(d, 1).attempt).toBe(3);
  });

  it('a Running tool step whose result is journaled completes from the journal and its pod is released', () => {
    const init = toolRunning('shell');
    const result = toolResultEntry(2, 'shell', 'toolu_1', 'Thu Jan 1', { exitCode: 0, podName: POD_A1 });
    const d = decide(observed({ ...init, journal: [...(init.journal ?? []), result], pods: [pod.exited(POD_A1, 0, at(50))] }));
    expect(journaledEntries(d)).toEqual([]);
    expect(effectTypes(d)).not.toContain('createPod');
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Succeeded', journal: { digest: digestOf(result) } });
    expect(effectsOf(d, 'releasePod')).toEqual([{ type: 'releasePod', name: POD_A1 }]);
    expect(effectsOf(d, 'startModelCall')[0]?.request.messages.at(-1)?.content[0]).toMatchObject({ tool_use_id: 'toolu_1', content: 'Thu Jan 1' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('tool pods', () => {
  const out = (t: string) => ({ 2: { ok: true as const, text: t, truncated: false } });

  it('exit 0 → Completed result journaled, pod deleted, model asked again with the output', () => {
    const d = decide(observed(toolRunning('web_fetch', { pods: [pod.exited(POD_A1, 0, at(50))], toolOutputs: out('<html>v1</html>') })));
    expect(toolResultOf(d)).toEqual({
      kind: 'ToolResult', stepId: 2, tool: 'web_fetch', toolUseId: 'toolu_1', attempt: 1, output: '<html>v1</html>',
      isError: false, outcome: 'Completed', exitCode: 0, truncated: false, podName: POD_A1,
    });
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', message: 'exit code 0', journal: { name: 'research-j2' } });
    // The ended pod only loses its finalizer (one request); it stays for `kubectl logs` until the run ends.
    expect(effectsOf(d, 'releasePod')).toEqual([{ type: 'releasePod', name: POD_A1 }]);
    expect(effectsOf(d, 'deletePod')).toEqual([]);
    expect(effectsOf(d, 'startModelCall')).toMatchObject([{ stepId: 3, attempt: 1 }]);
  });

  it('a succeeded step is an Event only with --step-events; a failed one always is', () => {
    const ok = { pods: [pod.exited(POD_A1, 0, at(50))], toolOutputs: out('<html>v1</html>') };
    const reasons = (d: Decision) => effectsOf(d, 'event').map((e) => e.reason);
    expect(reasons(decide(observed(toolRunning('web_fetch', ok))))).toEqual([]);
    expect(reasons(decide(observed(toolRunning('web_fetch', { ...ok, stepEvents: true }))))).toEqual(['ToolSucceeded']);
    expect(reasons(decide(observed(toolRunning('web_fetch', { pods: [pod.exited(POD_A1, 2, at(50))], toolOutputs: out('boom') }))))).toEqual(['ToolFailed']);
    const answered = { ...firstCallObserved(null), modelCalls: { 1: call.succeeded(response('tool_use', [FETCH])) } };
    expect(reasons(decide(observed(answered)))).toEqual([]);
    expect(reasons(decide(observed({ ...answered, stepEvents: true })))).toEqual(['ModelResponded']);
  });

  it('exit 0 with a termination message → the message is the result', () => {
    const d = decide(observed(toolRunning('web_fetch', { pods: [pod.exited(POD_A1, 0, at(50), { terminationMessage: 'summary' })], toolOutputs: out('long log') })));
    expect(toolResultOf(d).output).toBe('summary');
  });

  it('exit 1 → ToolError result the model sees as an error; the run goes on', () => {
    const d = decide(observed(toolRunning('shell', { pods: [pod.exited(POD_A1, 1, at(50))], toolOutputs: out('date: bad format') })));
    expect(toolResultOf(d)).toMatchObject({ isError: true, outcome: 'ToolError', exitCode: 1, output: 'Error: the tool exited with code 1.\ndate: bad format' });
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'ToolError' });
    expect(d.status.phase).toBe('Running');
    expect(effectsOf(d, 'startModelCall')).toHaveLength(1);
  });

  it('DeadlineExceeded → TimedOut with the output so far', () => {
    const p = pod.exited(POD_A1, 137, at(50), { reason: 'DeadlineExceeded', terminationReason: 'Error', phase: 'Failed' });
    const r = toolResultOf(decide(observed(toolRunning('web_fetch', { pods: [p], toolOutputs: out('partial') }))));
    expect(r).toMatchObject({ isError: true, outcome: 'TimedOut' });
    expect(r.output).toBe('Error: the tool did not finish within its timeout (120s) and was stopped.\nOutput so far:\npartial');
  });

  it('a Failed pod that ran but reports no container state is classified, not waited for forever', () => {
    const p: PodObservation = { name: POD_A1, exists: true, phase: 'Failed', started: true, reason: 'DeadlineExceeded', deleting: false };
    const d = decide(observed(toolRunning('web_fetch', { pods: [p], now: at(60) + 10 * RESULT_CAPTURE_GRACE_MS })));
    expect(toolResultOf(d)).toMatchObject({ isError: true, outcome: 'TimedOut' });
  });

  it.each(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull'])('a pending pod waiting with %s fails the step at once (ImagePullFailed), naming the image; the pod goes', (reason) => {
    const p: PodObservation = { name: POD_A1, exists: true, phase: 'Pending', started: false, deleting: false, finalizerHeld: true,
      waiting: { reason, message: 'Back-off pulling image "curlimages/curl:nope"' } };
    const d = decide(observed(toolRunning('web_fetch', { pods: [p] })));
    const r = toolResultOf(d);
    expect(r).toMatchObject({ isError: true, outcome: 'ImagePullFailed', attempt: 1 });
    expect(r.output).toContain('"curlimages/curl"');
    expect(r.output).toContain(reason);
    expect(r.output).toContain('the tool did not run');
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'ImagePullFailed' });
    expect(effectsOf(d, 'deletePod')).toEqual([{ type: 'deletePod', name: POD_A1 }]);
    expect(effectTypes(d)).not.toContain('createPod');
    expect(effectsOf(d, 'startModelCall')).toHaveLength(1);
  });

  it('CreateContainerConfigError (a missing Secret key) fails the step at once (ContainerConfigError) with the kubelet\'s message', () => {
    const p: PodObservation = { name: POD_A1, exists: true, phase: 'Pending', started: false, deleting: false,
      waiting: { reason: 'CreateContainerConfigError', message: 'secret "token" not found' } };
    const r = toolResultOf(decide(observed(toolRunning('shell', { pods: [p] }))));
    expect(r).toMatchObject({ isError: true, outcome: 'ContainerConfigError' });
    expect(r.output).toBe('Error: the tool\'s container could not be configured (CreateContainerConfigError: secret "token" not found); the tool did not run.');
  });

  it('RunContainerError (the runtime would not start the command) is a pod that failed before its tool ran: retried, then RetriesExhausted', () => {
    const waiting = { reason: 'RunContainerError', message: 'exec: "/no/such/tool": stat /no/such/tool: no such file or directory' };
    const first: PodObservation = { name: POD_A1, exists: true, phase: 'Pending', started: false, deleting: false, finalizerHeld: true, waiting };
    const d1 = decide(observed(toolRunning('shell', { pods: [first] })));
    expect(journaledEntries(d1)).toEqual([]);
    expect(stepOf(d1, 2)).toMatchObject({ phase: 'Running', attempt: 2, podName: POD_A2 });
    expect(effectsOf(d1, 'deletePod')).toEqual([{ type: 'deletePod', name: POD_A1 }]);
    expect(effectsOf(d1, 'event')[0]?.message).toContain('failed before its tool ran (RunContainerError: exec: "/no/such/tool"');
    const a3 = toolPodName(RUN_NAME, 2, 3);
    const d2 = decide(observed(toolRunning('shell', { attempt: 3, pods: [{ ...first, name: a3 }] })));
    const r = toolResultOf(d2);
    expect(r).toMatchObject({ isError: true, outcome: 'RetriesExhausted', attempt: 3, podName: a3 });
    expect(r.output).toContain('RunContainerError');
  });

  it('ContainerCreating is just waiting; an unschedulable pod waits and says why', () => {
    const creating: PodObservation = { name: POD_A1, exists: true, phase: 'Pending', started: false, deleting: false, waiting: { reason: 'ContainerCreating' } };
    const d1 = decide(observed(toolRunning('shell', { pods: [creating] })));
    expect(journaledEntries(d1)).toEqual([]);
    expect(stepOf(d1, 2)).toMatchObject({ phase: 'Running' });
    const unschedulable: PodObservation = { name: POD_A1, exists: true, phase: 'Pending', started: false, deleting: false,
      unschedulable: '0/1 nodes are available: 1 node(s) didn\'t match Pod\'s node affinity/selector.' };
    const d2 = decide(observed(toolRunning('shell', { pods: [unschedulable] })));
    expect(journaledEntries(d2)).toEqual([]);
    expect(d2.status.waitingFor).toBe(`pod ${POD_A1} to be scheduled (Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.)`);
    expect(d2.status.message).toContain('Unschedulable');
  });

  it('OOMKilled, idempotent tool → attempt 2 in a new pod', () => {
    const d = decide(observed(toolRunning('web_fetch', { pods: [pod.exited(POD_A1, 137, at(50), { terminationReason: 'OOMKilled' })] })));
    expect(journaledEntries(d)).toEqual([]);
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 2, podName: POD_A2 });
    expect(POD_A2).toBe('research-s2-a2');
    expect(effectsOf(d, 'releasePod')).toEqual([{ type: 'releasePod', name: POD_A1 }]);
    const [create] = effectsOf(d, 'createPod');
    expect(create?.pod.metadata?.name).toBe(POD_A2);
    expect(podEnv(create ?? (undefined as never))).toMatchObject({ AGENTRUN_ATTEMPT: '2', AGENTRUN_STEP: '2' });
    expect(effectsOf(d, 'event').map((e) => e.reason)).toContain('ToolRetrying');
  });

  it('OOMKilled, not idempotent → PodLost error result, no second pod', () => {
    const d = decide(observed(toolRunning('shell', { pods: [pod.exited(POD_A1, 137, at(50), { terminationReason: 'OOMKilled' })], toolOutputs: out('half') })));
    expect(toolResultOf(d)).toMatchObject({ isError: true, outcome: 'PodLost', exitCode: 137, output: 'Error: the tool ran out of memory and was killed.\nOutput so far:\nhalf' });
    expect(effectTypes(d)).not.toContain('createPod');
  });

  it('OOMKilled, idempotent but out of retries → PodLost error result', () => {
    const pods = [pod.exited(toolPodName(RUN_NAME, 2, 3), 137, at(50), { terminationReason: 'OOMKilled' })];
    const d = decide(observed(toolRunning('web_fetch', { attempt: 3, pods, toolOutputs: out('') })));
    expect(toolResultOf(d)).toMatchObject({ outcome: 'PodLost', attempt: 3 });
  });

  it('vanished after it started, idempotent → attempt 2 as <run>-s<N>-a2', () => {
    const d = decide(observed(toolRunning('web_fetch', { pods: [pod.vanished(POD_A1, true)] })));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 2, podName: 'research-s2-a2' });
    expect(effectsOf(d, 'createPod').map((p) => p.pod.metadata?.name)).toEqual(['research-s2-a2']);
    expect(effectTypes(d)).not.toContain('deletePod');
    expect(effectsOf(d, 'event')[0]?.message).toContain('was deleted; starting attempt 2');
  });

  it('vanished after it started, not idempotent → PodLost, never run again', () => {
    const d = decide(observed(toolRunning('shell', { pods: [pod.vanished(POD_A1, true)] })));
    const r = toolResultOf(d);
    expect(r).toMatchObject({ isError: true, outcome: 'PodLost', attempt: 1 });
    expect(r.output).toContain('not idempotent');
    expect(effectTypes(d)).not.toContain('createPod');
    expect(effectsOf(d, 'startModelCall')).toHaveLength(1);
  });

  it('vanished before it started → retried even when not idempotent', () => {
    const d = decide(observed(toolRunning('shell', { pods: [pod.vanished(POD_A1, false)] })));
    expect(effectsOf(d, 'createPod').map((p) => p.pod.metadata?.name)).toEqual(['research-s2-a2']);
  });

  it('never started → retried; after tool.retries retries → RetriesExhausted', () => {
    const first = decide(observed(toolRunning('shell', { pods: [pod.neverStarted(POD_A1)] })));
    expect(effectsOf(first, 'releasePod')).toEqual([{ type: 'releasePod', name: POD_A1 }]);
    expect(effectsOf(first, 'createPod').map((p) => p.pod.metadata?.name)).toEqual(['research-s2-a2']);
    expect(effectsOf(first, 'event')[0]?.message).toContain('failed before its tool ran (StartError');

    const a3 = toolPodName(RUN_NAME, 2, 3);
    const last = decide(observed(toolRunning('shell', { attempt: 3, pods: [pod.neverStarted(a3)] })));
    expect(toolResultOf(last)).toMatchObject({ isError: true, outcome: 'RetriesExhausted', attempt: 3, podName: a3 });
    expect(toolResultOf(last).output).toContain('on each of 3 attempts');
    expect(effectTypes(last)).not.toContain('createPod');
  });

  it('pod never seen (intent recorded, creation lost) → createPod again, same name', () => {
    const d = decide(observed(toolRunning('web_fetch', { pods: [] })));
    expect(effectsOf(d, 'createPod').map((p) => p.pod.metadata?.name)).toEqual([POD_A1]);
    expect(stepOf(d, 2)).toMatchObject({ attempt: 1, podName: POD_A1, phase: 'Running' });
  });

  it.each([
    ['pending', pod.pending(POD_A1)],
    ['running', pod.running(POD_A1)],
    ['being deleted', pod.running(POD_A1, { deleting: true })],
  ])('a %s pod is waited for: no effects', (_name, p) => {
    const d = decide(observed(toolRunning('web_fetch', { pods: [p] })));
    expect(d.effects).toEqual([]);
    expect(d.status.waitingFor).toBe('tools: web_fetch');
  });

  describe('output not readable yet', () => {
    const finished = at(50);
    const unreadable = { 2: { ok: false as const, error: 'container not found' } };
    it('a read in flight is waited for, however long ago the pod ended (the read enqueues the run), without a status write', () => {
      const init = toolRunning('web_fetch', { pods: [pod.exited(POD_A1, 0, finished)], now: finished + 10 * RESULT_CAPTURE_GRACE_MS });
      const d = decide(observed(init));
      expect(d.effects).toEqual([]);
      // The same status as while the pod ran: nothing to write.
      const stillRunning = decide(observed({ ...init, pods: [pod.running(POD_A1)] }));
      expect(d.status).toEqual(stillRunning.status);
      expect(d.status.waitingFor).toBe('tools: web_fetch');
      expect(d.requeueAfterMs).toBe(OUTPUT_READ_RECHECK_MS);
    });
    it('a failed read is retried while within RESULT_CAPTURE_GRACE_MS of the pod finishing', () => {
      const d = decide(observed(toolRunning('web_fetch', { pods: [pod.exited(POD_A1, 0, finished)], now: finished + RESULT_CAPTURE_GRACE_MS - 1, toolOutputs: unreadable })));
      expect(d.effects).toEqual([]);
      expect(d.status.waitingFor).toBe(`output of pod ${POD_A1}`);
      expect(d.requeueAfterMs).toBe(2000);
    });
    it('after the grace, falls back to the termination message', () => {
      const p = pod.exited(POD_A1, 0, finished, { terminationMessage: 'from the message' });
      expect(toolResultOf(decide(observed(toolRunning('web_fetch', { pods: [p], now: finished + RESULT_CAPTURE_GRACE_MS, toolOutputs: unreadable })))))
        .toMatchObject({ isError: false, outcome: 'Completed', output: 'from the message' });
    });
    it('a pod gone with its unread log (deleted, evicted): an idempotent tool runs again at once, a non-idempotent one waits out the grace', () => {
      const gone = { ...pod.exited(POD_A1, 0, finished), deleting: true };
      const d = decide(observed(toolRunning('web_fetch', { pods: [gone], now: finished + 1000, toolOutputs: unreadable })));
      expect(journaledEntries(d)).toEqual([]);
      expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 2, podName: POD_A2 });
      expect(effectsOf(d, 'event').map((e) => e.reason)).toContain('ToolRetrying');
      const shell = decide(observed(toolRunning('shell', { pods: [{ ...gone, name: POD_A1 }], now: finished + 1000, toolOutputs: unreadable })));
      expect(effectTypes(shell)).not.toContain('createPod');
      expect(shell.status.waitingFor).toBe(`output of pod ${POD_A1}`);
    });
    it('after the grace, without a message → ResultUnavailable saying why', () => {
      const d = decide(observed(toolRunning('web_fetch', {
        pods: [pod.exited(POD_A1, 0, finished)], now: finished + RESULT_CAPTURE_GRACE_MS, toolOutputs: { 2: { ok: false, error: 'logs rotated' } },
      })));
      expect(toolResultOf(d)).toMatchObject({ isError: true, outcome: 'ResultUnavailable', exitCode: 0 });
      expect(toolResultOf(d).output).toContain('logs rotated');
    });
  });

  it('output beyond limits.maxToolOutputBytes is truncated and the model is told', () => {
    const d = decide(observed(toolRunning('web_fetch', { spec: { limits: { maxToolOutputBytes: 1024 } }, pods: [pod.exited(POD_A1, 0, at(50))], toolOutputs: out('x'.repeat(3000)) })));
    const r = toolResultOf(d);
    expect(r.truncated).toBe(true);
    expect(r.output).toBe(`${'x'.repeat(1024)}\n[output truncated to the first 1024 bytes]`);
    expect(stepOf(d, 2).message).toBe('exit code 0, output truncated');
  });
});

// ---------------------------------------------------------------------------------------------

describe('tool calls refused before any pod exists', () => {
  it('an unknown tool → UnknownTool error result, and the model is asked again in the same decision', () => {
    const r = response('tool_use', [toolUse('toolu_x', 'rm_rf', { path: '/' })]);
    const d = decide(observed(firstCallObserved(r)));
    expect(effectTypes(d)).not.toContain('createPod');
    expect(toolResultOf(d)).toMatchObject({ stepId: 2, isError: true, outcome: 'UnknownTool', output: 'Error: there is no tool named "rm_rf". Available tools: web_fetch, shell.' });
    expect(toolResultOf(d).podName).toBeUndefined();
    const [start] = effectsOf(d, 'startModelCall');
    expect(start?.stepId).toBe(3);
    expect(start?.request.messages.at(-1)?.content[0]).toMatchObject({ type: 'tool_result', tool_use_id: 'toolu_x', is_error: true });
  });

  it.each([
    ['a missing required property', {}, "must have required property 'url'"],
    ['a pattern mismatch', { url: 'ftp://x' }, 'must match pattern'],
    ['an unexpected property', { url: 'https://x', depth: 3 }, 'must NOT have additional properties'],
  ])('input with %s → InvalidInput error result, no pod', (_name, input, says) => {
    const r = response('tool_use', [toolUse('toolu_bad', 'web_fetch', input), SHELL]);
    const d = decide(observed(firstCallObserved(r)));
    const bad = journaledEntries(d).find((e) => e.kind === 'ToolResult');
    expect(bad).toMatchObject({ stepId: 2, isError: true, outcome: 'InvalidInput' });
    expect(bad?.kind === 'ToolResult' && bad.output).toContain(says);
    expect(effectsOf(d, 'createPod').map((p) => p.stepId)).toEqual([3]);
    expect(stepOf(d, 2).phase).toBe('Failed');
    expect(stepOf(d, 3).phase).toBe('Running');
  });
});

// ---------------------------------------------------------------------------------------------

describe('limits', () => {
  const entry = modelEntry(1, 1, response('tool_use', [FETCH], { input: 500, output: 100 }));
  const result = toolResultEntry(2, 'web_fetch', 'toolu_fetch', 'page');
  const doneTurn = (usage: number): ObservedInit => ({
    status: runningStatus([journaled(modelStep(1, 1), entry), journaled(toolStep(2, 1, 'web_fetch', 'toolu_fetch'), result)],
      { usage: { inputTokens: usage, outputTokens: 0, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, totalTokens: usage } }),
    journal: [entry, result],
    now: at(30),
  });

  it('maxTurns reached → Failed MaxTurnsReached, no call', () => {
    const d = decide(observed({ ...doneTurn(600), spec: { limits: { maxTurns: 1 } } }));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d).reason).toBe('MaxTurnsReached');
    expect(d.status.message).toContain('1 model calls');
    expect(effectTypes(d)).not.toContain('startModelCall');
  });

  it.each([
    [600, 600, 'TokenBudgetExceeded'],
    [600, 601, 'TokenBudgetExceeded'],
    [600, 599, undefined],
  ])('maxTotalTokens %i, %i used → %s', (budget, used, reason) => {
    const d = decide(observed({ ...doneTurn(used), spec: { limits: { maxTotalTokens: budget } } }));
    if (reason) {
      expect(d.status.phase).toBe('Failed');
      expect(succeededCondition(d).reason).toBe(reason);
      expect(effectTypes(d)).not.toContain('startModelCall');
    } else {
      expect(effectsOf(d, 'startModelCall')).toHaveLength(1);
      expect(d.status.phase).toBe('Running');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('suspend', () => {
  it('with nothing in flight: nothing new starts, phase Suspended', () => {
    const entry = modelEntry(1, 1, response('tool_use', [FETCH]));
    const result = toolResultEntry(2, 'web_fetch', 'toolu_fetch', 'page');
    const d = decide(observed({
      spec: { suspend: true }, now: at(30), journal: [entry, result],
      status: runningStatus([journaled(modelStep(1, 1), entry), journaled(toolStep(2, 1, 'web_fetch', 'toolu_fetch'), result)]),
    }));
    expect(d.effects).toEqual([]);
    expect(d.status).toMatchObject({ phase: 'Suspended', waitingFor: 'spec.suspend=false' });
    expect(succeededCondition(d)).toMatchObject({ status: 'Unknown', reason: 'Suspended' });
  });

  it('a model call in flight finishes; its tool calls wait; Suspended once nothing is in flight', () => {
    const o = observed({ ...firstCallObserved(null), spec: { suspend: true }, modelCalls: { 1: call.inFlight() } });
    const d1 = decide(o);
    expect(d1.status.phase).toBe('Running');
    expect(d1.effects).toEqual([]);
    const d2 = decide(advance(o, d1, { now: at(20), modelCalls: { 1: call.succeeded(response('tool_use', [FETCH])) } }));
    expect(stepOf(d2, 2).phase).toBe('Pending');
    expect(effectTypes(d2)).toEqual(['writeJournal']);
    expect(d2.status.phase).toBe('Suspended');
  });

  it('a running tool pod finishes and is recorded; the next model call waits', () => {
    const d = decide(observed(toolRunning('web_fetch', { spec: { suspend: true }, pods: [pod.exited(POD_A1, 0, at(50))], toolOutputs: { 2: { ok: true, text: 'p', truncated: false } } })));
    expect(toolResultOf(d).outcome).toBe('Completed');
    expect(effectTypes(d)).not.toContain('startModelCall');
    expect(d.status.phase).toBe('Suspended');
  });

  it('resuming starts the waiting tool calls', () => {
    const o = observed(firstCallObserved(response('tool_use', [FETCH]), { spec: { suspend: true } }));
    const d1 = decide(o);
    const d2 = decide(advance(o, d1, { now: at(20), suspend: false }));
    expect(effectsOf(d2, 'createPod').map((p) => p.pod.metadata?.name)).toEqual(['research-s2-a1']);
    expect(d2.status.phase).toBe('Running');
  });
});

// ---------------------------------------------------------------------------------------------

describe('cancel', () => {
  it('a model call in flight is cancelled and the run ends Cancelled; no pods → finalizer removed at once', () => {
    const d = decide(observed({ ...firstCallObserved(null), modelCalls: { 1: call.inFlight() }, spec: { cancel: true } }));
    expect(d.status).toMatchObject({ phase: 'Cancelled', completionTime: iso(at(10)) });
    expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: 'Cancelled' });
    expect(stepOf(d, 1)).toMatchObject({ phase: 'Failed', outcome: 'Cancelled' });
    expect(effectsOf(d, 'cancelModelCall')).toEqual([{ type: 'cancelModelCall', stepId: 1 }]);
    expect(effectTypes(d)).toContain('removeFinalizer');
    expect(effectTypes(d)).not.toContain('startModelCall');
  });

  it('tool pods are deleted (once), the finalizer stays until they are gone', () => {
    const r = response('tool_use', [toolUse('t1', 'web_fetch', { url: 'https://a' }), toolUse('t2', 'web_fetch', { url: 'https://b' })]);
    const entry = modelEntry(1, 1, r);
    const o = observed({
      spec: { cancel: true }, now: at(40), journal: [entry],
      status: runningStatus([
        journaled(modelStep(1, 1), entry),
        toolStep(2, 1, 'web_fetch', 't1', { phase: 'Running', podName: 'research-s2-a1' }),
        toolStep(3, 1, 'web_fetch', 't2', { phase: 'Running', podName: 'research-s3-a1' }),
      ]),
      pods: [pod.running('research-s2-a1'), pod.running('research-s3-a1', { deleting: true }), pod.vanished('research-s9-a1', true)],
    });
    const d = decide(o);
    expect(d.status.phase).toBe('Cancelled');
    expect(effectsOf(d, 'deletePod')).toEqual([{ type: 'deletePod', name: 'research-s2-a1' }]);
    expect(effectsOf(d, 'releasePod')).toEqual([{ type: 'releasePod', name: 'research-s3-a1' }]);
    expect(effectTypes(d)).not.toContain('removeFinalizer');
    expect(effectTypes(d)).not.toContain('cancelModelCall');
    expect([stepOf(d, 2), stepOf(d, 3)].map((s) => [s.phase, s.outcome])).toEqual([['Failed', 'Cancelled'], ['Failed', 'Cancelled']]);

    const later = advance(o, d, { now: at(41) });
    const waiting = decide(later);
    expect(waiting.effects).toEqual([]);
    expect(waiting.requeueAfterMs).toBe(1000);
    const gone = decide(advance(o, d, { now: at(45), pods: [] }));
    expect(gone.effects).toEqual([{ type: 'removeFinalizer' }]);
    expect(gone.status.phase).toBe('Cancelled');
  });

  it('a run cancelled before it started never calls the model', () => {
    const d = decide(observed({ finalizers: [], spec: { cancel: true } }));
    expect(d.status.phase).toBe('Cancelled');
    expect(effectTypes(d)).not.toContain('startModelCall');
  });
});

// ---------------------------------------------------------------------------------------------

describe('ttlSecondsAfterFinished', () => {
  const finished = (now: number): ObservedInit => ({ spec: { ttlSecondsAfterFinished: 60 }, status: finishedStatus('Succeeded', at(100)), finalizers: [], now });

  it('before it is due: requeue for the moment it is', () => {
    const d = decide(observed(finished(at(130))));
    expect(d.effects).toEqual([]);
    expect(d.requeueAfterMs).toBe(30_000);
  });

  it('when due: deleteRun', () => {
    expect(decide(observed(finished(at(160)))).effects).toEqual([{ type: 'deleteRun' }]);
    expect(decide(observed(finished(at(999)))).effects).toEqual([{ type: 'deleteRun' }]);
  });

  it('a run finishing now is requeued for its TTL', () => {
    const d = decide(observed({ ...firstCallObserved(response('end_turn', [text('ok')])), spec: { ttlSecondsAfterFinished: 5 } }));
    expect(d.status.phase).toBe('Succeeded');
    expect(d.requeueAfterMs).toBe(5000);
  });

  it('without a TTL a finished run is left alone', () => {
    const d = decide(observed({ status: finishedStatus('Failed', at(100)), finalizers: [], now: at(5000) }));
    expect(d.effects).toEqual([]);
    expect(d.requeueAfterMs).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

describe('deletion', () => {
  const status = runningStatus([modelStep(1, 1)]);
  const deleting = (pods: PodObservation[], finalizers = [FINALIZER]): ObservedInit =>
    ({ status, modelCalls: { 1: call.inFlight() }, deletionTimestamp: iso(at(30)), now: at(31), pods, finalizers });

  it('stops the model call and deletes live pods; the finalizer stays while any pod exists', () => {
    const init = deleting([pod.running('research-s2-a1'), pod.running('research-s3-a1', { deleting: true }), pod.vanished('research-s4-a1', true)]);
    const d = decide(observed(init));
    expect(d.effects).toEqual([{ type: 'cancelModelCall', stepId: 1 }, { type: 'deletePod', name: 'research-s2-a1' }, { type: 'releasePod', name: 'research-s3-a1' }]);
    expect(d.requeueAfterMs).toBe(1000);
    expect(d.status).toEqual(status);
  });

  it('removes the finalizer once no pod is left', () => {
    const d = decide(observed(deleting([pod.vanished('research-s2-a1', true)])));
    expect(d.effects).toEqual([{ type: 'cancelModelCall', stepId: 1 }, { type: 'removeFinalizer' }]);
    expect(d.requeueAfterMs).toBeUndefined();
  });

  it('does nothing more once the finalizer is gone', () => {
    const d = decide(observed({ ...deleting([], []), modelCalls: {}, status: finishedStatus('Succeeded', at(10)) }));
    expect(d.effects).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('status byte budget', () => {
  it('a status over budget fails the run with StatusTooLarge, keeping the newest step records', () => {
    const steps = Array.from({ length: 40 }, (_, i) => i % 2 === 0
      ? modelStep(i + 1, i / 2 + 1, { phase: 'Succeeded', stopReason: 'tool_use', journal: { name: `research-j${i + 1}`, digest: `sha256:${'0'.repeat(64)}` } })
      : toolStep(i + 1, (i + 1) / 2, 'web_fetch', `toolu_${i}`, { phase: 'Succeeded', journal: { name: `research-j${i + 1}`, digest: `sha256:${'0'.repeat(64)}` } }));
    const d = decide(observed({ spec: { suspend: true }, status: runningStatus(steps), now: at(30), statusByteBudget: 4000 }));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: 'StatusTooLarge' });
    expect(d.status.message).toContain('over its budget of 4000');
    expect(d.status.steps?.map((s) => s.id)).toEqual([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
  });

  it('a run stopped for its size starts nothing: no pod, no model call in the same decision', () => {
    const r = response('tool_use', [FETCH, { ...FETCH, id: 'toolu_2' }]);
    const d = decide(observed(firstCallObserved(r, { statusByteBudget: 1200 })));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d).reason).toBe('StatusTooLarge');
    expect(effectTypes(d)).not.toContain('createPod');
    expect(effectTypes(d)).not.toContain('startModelCall');
    // Nothing is in flight or awaited any more.
    expect(d.status.currentStep).toBeUndefined();
    expect(d.status.waitingFor).toBeUndefined();
    // The response that was paid for is still journaled.
    expect(journaledEntries(d).map((e) => e.kind)).toEqual(['ModelResponse']);
  });

  it('the budget is in bytes (UTF-8, as the apiserver and etcd count), not UTF-16 code units', () => {
    // A transient failure whose message is 1000 "€": 1 code unit, 3 bytes each.
    const init = { status: runningStatus([modelStep(1, 1)]), now: at(10), modelCalls: { 1: call.failed(failure.http(529, { message: '€'.repeat(1000) })) } };
    const unlimited = JSON.stringify(decide(observed(init)).status);
    const bytes = new TextEncoder().encode(unlimited).length;
    expect(bytes - unlimited.length).toBeGreaterThan(2000);
    expect(decide(observed({ ...init, statusByteBudget: bytes })).status.phase).toBe('Running');
    const d = decide(observed({ ...init, statusByteBudget: bytes - 1 }));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d).reason).toBe('StatusTooLarge');
  });

  it('a run that ends in the decision that goes over budget reports one outcome: phase and condition agree', () => {
    const d = decide(observed(firstCallObserved(response('end_turn', [text('x'.repeat(3000))]), { statusByteBudget: 2500 })));
    expect(['Succeeded', 'Failed']).toContain(d.status.phase);
    if (d.status.phase === 'Succeeded') expect(succeededCondition(d)).toMatchObject({ status: 'True', reason: 'Completed' });
    else expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: 'StatusTooLarge', message: d.status.message });
  });
});

// ---------------------------------------------------------------------------------------------

describe('a toolRef to an AgentTool that does not exist', () => {
  const refSpec = { tools: [{ name: 'fetch', toolRef: { name: 'web-fetch' } }] };
  const message = 'Waiting for AgentTool web-fetch in namespace agents: create it, or fix the toolRef.';
  const waiting = (status: AgentRunStatus = runningStatus([])): ObservedInit =>
    ({ spec: refSpec, status, toolSnapshot: null, agentTools: { 'web-fetch': undefined }, now: at(5) });

  it('WaitingForAgentTool: no effects but an Event', () => {
    const d = decide(observed(waiting()));
    expect(d.effects).toEqual([{ type: 'event', eventType: 'Warning', reason: 'WaitingForAgentTool', message }]);
    expect(d.status).toMatchObject({ message, waitingFor: 'AgentTool web-fetch', steps: [] });
    expect(succeededCondition(d)).toMatchObject({ status: 'Unknown', reason: 'WaitingForAgentTool', message });
    expect(d.requeueAfterMs).toBe(30_000);
  });

  it('the Event is not repeated while the message stands', () => {
    const first = decide(observed(waiting()));
    expect(decide(observed(waiting(first.status))).effects).toEqual([]);
  });

  it('once the AgentTool exists its definition is journaled and the run starts', () => {
    const d = decide(observed({ ...waiting(), agentTools: { 'web-fetch': { description: 'Fetch.', inputSchema: { type: 'object' }, container: { image: 'curl' }, idempotent: true } } }));
    const [tools] = effectsOf(d, 'writeJournal');
    expect(tools?.entry).toMatchObject({ kind: 'Tools', tools: [{ name: 'fetch', description: 'Fetch.', idempotent: true, source: 'web-fetch' }] });
    expect(effectsOf(d, 'startModelCall')[0]?.request.tools).toEqual([{ name: 'fetch', description: 'Fetch.', input_schema: { type: 'object' } }]);
  });

  it('an AgentTool deleted mid-run does not matter: the journaled snapshot is used', () => {
    const snapshot = [{ name: 'fetch', inputSchema: { type: 'object' }, container: { image: 'curl' }, timeoutSeconds: 600, requiresApproval: false, idempotent: false, retries: 2, source: 'web-fetch' }];
    const d = decide(observed({ ...waiting(), toolSnapshot: snapshot }));
    expect(effectTypes(d)).toEqual(['startModelCall']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('conditions', () => {
  it("lastTransitionTime only changes when the condition's status does", () => {
    const o1 = observed({ finalizers: [], now: T0 });
    const d1 = decide(o1);
    expect(succeededCondition(d1)).toMatchObject({ status: 'Unknown', reason: 'Running', lastTransitionTime: iso(T0) });

    const o2 = advance(o1, d1, { now: at(5), modelCalls: { 1: call.failed(failure.http(529)) } });
    const d2 = decide(o2);
    expect(succeededCondition(d2)).toMatchObject({ status: 'Unknown', reason: 'ModelRetrying', lastTransitionTime: iso(T0) });

    const o3 = advance(o2, d2, { now: at(7) });
    const d3 = decide(o3);
    expect(effectsOf(d3, 'startModelCall')).toMatchObject([{ attempt: 2 }]);
    expect(succeededCondition(d3).lastTransitionTime).toBe(iso(T0));

    const o4 = advance(o3, d3, { now: at(20), modelCalls: { 1: call.succeeded(response('end_turn', [text('ok')]), 2) } });
    const d4 = decide(o4);
    expect(succeededCondition(d4)).toMatchObject({ status: 'True', reason: 'Completed', lastTransitionTime: iso(at(20)), observedGeneration: 1 });

    const d5 = decide(advance(o4, d4, { now: at(90) }));
    expect(succeededCondition(d5).lastTransitionTime).toBe(iso(at(20)));
  });

  it('deciding again with nothing new gives the same status and no effects', () => {
    const o = observed(toolRunning('web_fetch', { pods: [pod.running(POD_A1)] }));
    const d1 = decide(o);
    const d2 = decide(advance(o, d1, { now: at(70) }));
    expect(d2.effects).toEqual([]);
    expect(d2.status).toEqual(d1.status);
  });

  it('decide() does not mutate what it observed', () => {
    const o = observed(firstCallObserved(response('tool_use', [FETCH])));
    const before = structuredClone(o.run);
    decide(o);
    expect(o.run).toEqual(before);
  });
});
