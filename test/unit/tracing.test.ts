/** Tracing: ids, spans derived from recorded state, the tracer's once-per-process export, the OTLP sink. */
import { describe, expect, it } from 'vitest';
import type { AgentRunStatus, StepRecord } from '../../src/api/agent-run.ts';
import { loadConfig } from '../../src/config.ts';
import type { JournalEntry } from '../../src/api/journal-entry.ts';
import { formatTraceparent, parseTraceparent, runSpanId, runTraceId, stepSpanId, TRACEPARENT_ANNOTATION } from '../../src/observability/tracing/ids.ts';
import { NO_TRACING, createRunTracer } from '../../src/observability/tracing/index.ts';
import { createOtlpSink, resourceAttributes, samplerFromEnv, toReadableSpan } from '../../src/observability/tracing/otlp.ts';
import { REEXPORT_WINDOW_MS, SinkRunTracer, type SpanSink, type TracedRun } from '../../src/observability/tracing/run-tracer.ts';
import { runSpans, type SpanData } from '../../src/observability/tracing/spans.ts';
import { withTraceparent } from '../../src/reconciler/tracing-hooks.ts';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ExportResultCode } from '@opentelemetry/core';

const UID = '7f1c2a9e-0000-4000-8000-000000000001';
const T0 = Date.parse('2026-12-06T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const run = (annotations?: Record<string, string>): TracedRun => ({
  metadata: { name: 'fix-bug', namespace: 'team-a', uid: UID, creationTimestamp: at(0), ...(annotations ? { annotations } : {}) },
  spec: { model: { name: 'claude-test', maxTokens: 1024 } },
});
const usage = { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 3, cacheCreationInputTokens: 2, totalTokens: 20 };
const model1: StepRecord = {
  id: 1, kind: 'Model', turn: 1, phase: 'Succeeded', attempt: 2, startedAt: at(1), finishedAt: at(3), stopReason: 'tool_use', usage,
  outcome: 'Completed', retry: { attempt: 1, errorClass: 'Overloaded', errorMessage: '529', nextRetryAt: at(2) },
};
const tool2: StepRecord = {
  id: 2, kind: 'Tool', turn: 1, phase: 'Succeeded', attempt: 1, tool: 'shell', toolUseId: 'toolu_1', podName: 'fix-bug-s2-a1',
  startedAt: at(10), finishedAt: at(12), outcome: 'Completed',
  approval: { decision: 'Approved', by: 'alice', at: at(10), requestedAt: at(4), comment: 'ok' },
};
const model3: StepRecord = { id: 3, kind: 'Model', turn: 2, phase: 'Running', attempt: 1, startedAt: at(13) };
const journal = new Map<number, JournalEntry>([
  [1, { kind: 'ModelResponse', stepId: 1, turn: 1, attempt: 2, response: {
    id: 'msg_1', model: 'claude-test', stop_reason: 'tool_use', usage: { input_tokens: 10, output_tokens: 5 },
    content: [{ type: 'tool_use', id: 'toolu_1', name: 'shell', input: { command: 'ls' } }],
  } }],
  [2, { kind: 'ToolResult', stepId: 2, tool: 'shell', toolUseId: 'toolu_1', attempt: 1, output: 'a b', isError: false, outcome: 'Completed', exitCode: 0, truncated: false }],
]);

class Sink implements SpanSink {
  readonly spans: SpanData[] = [];
  sampled = true;
  sample(): boolean { return this.sampled; }
  export(spans: readonly SpanData[]): void { this.spans.push(...spans); }
  shutdown(): Promise<void> { return Promise.resolve(); }
}

function started(tracer: SinkRunTracer, steps: StepRecord[], extra: Partial<AgentRunStatus> = {}): AgentRunStatus {
  return { ...tracer.stamp(run(), undefined, { phase: 'Running', startTime: at(0) }).status, steps, ...extra };
}

describe('trace ids and traceparent', () => {
  it('derives the same ids from the same run, step and attempt, and different ones otherwise', () => {
    expect(runTraceId(UID)).toMatch(/^[0-9a-f]{32}$/);
    expect(runTraceId(UID)).toBe(runTraceId(UID));
    expect(stepSpanId(UID, 2, 1)).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set([stepSpanId(UID, 2, 1), stepSpanId(UID, 2, 2), stepSpanId(UID, 3, 1), runSpanId(UID, 'root'), stepSpanId('other', 2, 1)]).size).toBe(5);
  });

  it('parses W3C traceparent and explains what is wrong with anything else', () => {
    const good = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    expect(parseTraceparent(good)).toEqual({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true });
    expect(parseTraceparent(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`)).toMatchObject({ sampled: false });
    expect(parseTraceparent(`01-${'a'.repeat(32)}-${'b'.repeat(16)}-01-future`)).toMatchObject({ traceId: 'a'.repeat(32) });
    for (const bad of ['', 'nonsense', good.toUpperCase(), `00-${'0'.repeat(32)}-${'b'.repeat(16)}-01`, `00-${'a'.repeat(32)}-${'0'.repeat(16)}-01`,
      `ff-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, `${good}-extra`, `${good}${'x'.repeat(600)}`]) {
      expect(parseTraceparent(bad), bad.slice(0, 80)).toHaveProperty('error');
    }
    expect(formatTraceparent('a'.repeat(32), 'b'.repeat(16), false)).toBe(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`);
  });
});

describe('spans of a run', () => {
  it('derives invoke_agent, chat, execute_tool and await_approval spans with gen_ai attributes and no content by default', () => {
    const tracer = new SinkRunTracer(new Sink(), { content: false });
    const status = { ...started(tracer, [model1, tool2]), phase: 'Succeeded' as const, completionTime: at(20), usage };
    const context = status.trace;
    if (!context) throw new Error('no trace');
    const spans = runSpans({ run: { name: 'fix-bug', namespace: 'team-a', uid: UID, model: 'claude-test', maxTokens: 1024, creationTimestamp: at(0) },
      status, context, journal, content: false });
    expect(spans.map((s) => s.name)).toEqual(['chat claude-test', 'await_approval shell', 'execute_tool shell', 'invoke_agent fix-bug']);
    const [chat, approval, toolSpan, root] = spans;
    expect(root).toMatchObject({ spanId: runSpanId(UID, 'root'), traceId: runTraceId(UID), startMs: T0, endMs: T0 + 20_000 });
    expect(root?.parentSpanId).toBeUndefined();
    for (const s of [chat, approval, toolSpan]) expect(s?.parentSpanId).toBe(root?.spanId);
    expect(chat).toMatchObject({ kind: 'client', spanId: stepSpanId(UID, 1, 2), startMs: T0 + 1000, endMs: T0 + 3000 });
    expect(chat?.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': 'claude-test', 'gen_ai.response.id': 'msg_1',
      'gen_ai.response.finish_reasons': ['tool_use'], 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 5,
      'gen_ai.usage.cache_read.input_tokens': 3, 'gen_ai.usage.cache_creation.input_tokens': 2, 'agentrun.step.attempt': 2,
      'agentrun.retry.failed_attempts': 1,
    });
    expect(chat?.events).toEqual([{ name: 'retry', timeMs: T0 + 2000, attributes: { 'agentrun.retry.attempt': 1, 'error.type': 'Overloaded' } }]);
    expect(toolSpan?.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'shell', 'gen_ai.tool.call.id': 'toolu_1', 'k8s.pod.name': 'fix-bug-s2-a1',
      'agentrun.step.outcome': 'Completed', 'agentrun.tool.exit_code': 0,
    });
    expect(approval).toMatchObject({ startMs: T0 + 4000, endMs: T0 + 10_000 });
    expect(approval?.attributes).toMatchObject({ 'agentrun.approval.decision': 'Approved', 'agentrun.approval.by': 'alice', 'agentrun.approval.wait_ms': 6000 });
    const all = JSON.stringify(spans);
    for (const secret of ['gen_ai.tool.call.result', 'gen_ai.tool.call.arguments', 'gen_ai.output.messages', 'approval.comment']) expect(all).not.toContain(secret);
  });

  it('marks an MCP tool step with its method and MCPServer (and no pod)', () => {
    const tracer = new SinkRunTracer(new Sink(), { content: false });
    const { podName: _pod, ...mcpTool } = { ...tool2, mcpServer: 'everything' };
    const status = started(tracer, [model1, mcpTool]);
    const context = status.trace;
    if (!context) throw new Error('no trace');
    const spans = runSpans({ run: { name: 'fix-bug', namespace: 'team-a', uid: UID, model: 'claude-test', maxTokens: 1024 }, status, context, journal, content: false });
    const attributes = spans.find((s) => s.name === 'execute_tool shell')?.attributes;
    expect(attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'agentrun.mcp.server': 'everything', 'gen_ai.tool.call.id': 'toolu_1' });
    expect(attributes).not.toHaveProperty('k8s.pod.name');
  });

  it('records answers, tool inputs and outputs only when content is on', () => {
    const tracer = new SinkRunTracer(new Sink(), { content: true });
    const status = started(tracer, [model1, tool2]);
    const context = status.trace;
    if (!context) throw new Error('no trace');
    const spans = runSpans({ run: { name: 'fix-bug', namespace: 'team-a', uid: UID, model: 'claude-test', maxTokens: 1024 }, status, context, journal, content: true });
    expect(spans.find((s) => s.name === 'execute_tool shell')?.attributes).toMatchObject({ 'gen_ai.tool.call.result': 'a b', 'gen_ai.tool.call.arguments': '{"command":"ls"}' });
    expect(spans.find((s) => s.name === 'chat claude-test')?.attributes['gen_ai.output.messages']).toContain('toolu_1');
  });
});

describe('the run tracer', () => {
  it('records the trace context once; a traceparent annotation joins the caller, a bad one is a warning', () => {
    const sink = new Sink();
    const tracer = new SinkRunTracer(sink, { content: false });
    const own = tracer.stamp(run(), undefined, { phase: 'Running' });
    expect(own.status.trace).toEqual({ traceId: runTraceId(UID), spanId: runSpanId(UID, 'root'), sampled: true });
    expect(tracer.stamp(run(), own.status, own.status).status).toBe(own.status);
    const caller = `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`;
    expect(tracer.stamp(run({ [TRACEPARENT_ANNOTATION]: caller }), undefined, {}).status.trace)
      .toEqual({ traceId: 'c'.repeat(32), spanId: runSpanId(UID, 'root'), parentSpanId: 'd'.repeat(16), sampled: true });
    const bad = tracer.stamp(run({ [TRACEPARENT_ANNOTATION]: 'not-a-traceparent' }), undefined, {});
    expect(bad.status.trace?.traceId).toBe(runTraceId(UID));
    expect(bad.warning).toMatch(/agentrun.dev\/traceparent is not version-traceid-spanid-flags.*ignored/);
    // A run that finished before tracing was turned on gets no trace.
    expect(tracer.stamp(run(), { phase: 'Succeeded' }, { phase: 'Succeeded' }).status.trace).toBeUndefined();
    sink.sampled = false;
    expect(tracer.stamp(run(), undefined, {}).status.trace?.sampled).toBe(false);
  });

  it('exports each span once per process, when its step ends, and nothing for an unsampled run', () => {
    const sink = new Sink();
    const tracer = new SinkRunTracer(sink, { content: false, now: () => T0 + 15_000 });
    const s1 = started(tracer, [{ ...model1, phase: 'Running', finishedAt: undefined }]);
    tracer.observe(run(), undefined, s1, journal);
    expect(sink.spans).toEqual([]);
    const s2 = { ...s1, steps: [model1, tool2] };
    tracer.observe(run(), s1, s2, journal);
    tracer.observe(run(), s2, s2, journal);
    expect(sink.spans.map((s) => s.key)).toEqual(['step/1', 'approval/2', 'step/2']);
    tracer.observe(run(), s2, { ...s2, phase: 'Succeeded', completionTime: at(20) }, journal);
    expect(sink.spans.map((s) => s.key)).toEqual(['step/1', 'approval/2', 'step/2', 'root']);
    const quiet = new Sink();
    const off = new SinkRunTracer(quiet, { content: false });
    off.observe(run(), undefined, { ...s2, trace: { ...s2.trace, sampled: false } as AgentRunStatus['trace'] }, journal);
    expect(quiet.spans).toEqual([]);
  });

  it('a process that takes a run over re-exports identical spans and ends the interrupted call, marked', () => {
    const first = new Sink();
    const a = new SinkRunTracer(first, { content: false, now: () => T0 + 13_500 });
    const before = started(a, [model1, tool2, model3]);
    a.observe(run(), undefined, before, journal);
    const second = new Sink();
    const b = new SinkRunTracer(second, { content: false, now: () => T0 + 30_000 });
    b.observe(run(), before, before, journal);
    // The same bytes for the same span: the backend folds the copies into one.
    expect(second.spans.filter((s) => s.key.startsWith('step/') || s.key.startsWith('approval/'))).toEqual(first.spans);
    const interrupted = second.spans.find((s) => s.key === 'interrupted/3/1');
    expect(interrupted).toMatchObject({ name: 'chat claude-test', startMs: T0 + 13_000, endMs: T0 + 30_000, parentSpanId: runSpanId(UID, 'root') });
    expect(interrupted?.attributes['agentrun.interrupted']).toBe(true);
    expect(interrupted?.error).toMatch(/interrupted/);
    expect(interrupted?.spanId).not.toBe(stepSpanId(UID, 3, 1));
    // The step's own span, once it ends, says the operator restarted during it.
    b.observe(run(), before, { ...before, steps: [model1, tool2, { ...model3, phase: 'Succeeded', finishedAt: at(31) }] }, journal);
    expect(second.spans.at(-1)).toMatchObject({ key: 'step/3', spanId: stepSpanId(UID, 3, 1) });
    expect(second.spans.at(-1)?.attributes['agentrun.operator_restarted']).toBe(true);
  });

  it('does not export again runs that finished long before the process started', () => {
    const sink = new Sink();
    const tracer = new SinkRunTracer(sink, { content: false, now: () => T0 + 20_000 + REEXPORT_WINDOW_MS + 1 });
    const done = { ...started(tracer, [model1, tool2]), phase: 'Succeeded' as const, completionTime: at(20) };
    tracer.observe(run(), done, done, journal);
    expect(sink.spans).toEqual([]);
    const recent = new Sink();
    new SinkRunTracer(recent, { content: false, now: () => T0 + 25_000 }).observe(run(), done, done, journal);
    expect(recent.spans.map((s) => s.key)).toContain('root');
  });

  it('gives tool pods a TRACEPARENT naming their execute_tool span', () => {
    const tracer = new SinkRunTracer(new Sink(), { content: false });
    const status = started(tracer, [tool2]);
    const traceparent = tracer.podTraceparent(UID, status, 2);
    expect(traceparent).toBe(`00-${runTraceId(UID)}-${stepSpanId(UID, 2, 1)}-01`);
    const pod = { metadata: { name: 'p' }, spec: { containers: [{ name: 'tool', env: [{ name: 'TRACEPARENT', value: 'planted' }, { name: 'A', value: '1' }] }] } };
    expect(withTraceparent(pod, traceparent).spec?.containers[0]?.env).toEqual([{ name: 'A', value: '1' }, { name: 'TRACEPARENT', value: traceparent }]);
    expect(pod.spec.containers[0]?.env[0]?.value).toBe('planted');
    expect(withTraceparent(pod, undefined)).toBe(pod);
    expect(NO_TRACING.podTraceparent(UID, status, 2)).toBeUndefined();
  });
});

describe('configuration and the OTLP sink', () => {
  it('is off by default and loads nothing; --tracing and --trace-content turn it on', async () => {
    expect(loadConfig([], {})).toMatchObject({ tracing: false, traceContent: false });
    expect(loadConfig(['--tracing=true'], { AGENTRUN_TRACE_CONTENT: 'true' })).toMatchObject({ tracing: true, traceContent: true });
    expect(() => loadConfig(['--tracing=yes'], {})).toThrow(/--tracing: must be true or false/);
    expect(await createRunTracer({ enabled: false, content: false }, {})).toBe(NO_TRACING);
    expect(await createRunTracer({ enabled: true, content: false }, { OTEL_SDK_DISABLED: 'true' })).toBe(NO_TRACING);
    const on = await createRunTracer({ enabled: true, content: false }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
    expect(on).toBeInstanceOf(SinkRunTracer);
    await on.shutdown();
  });

  it('samples as OTEL_TRACES_SAMPLER says, following the caller\'s flag under parentbased_*', () => {
    const id = 'a'.repeat(32);
    const decide = (env: NodeJS.ProcessEnv, parent?: { spanId: string; sampled: boolean }) =>
      createOtlpSink({ env, exporter: collecting([]) }).sample(id, parent);
    expect(decide({})).toBe(true);
    expect(decide({}, { spanId: 'b'.repeat(16), sampled: false })).toBe(false);
    expect(decide({ OTEL_TRACES_SAMPLER: 'always_off' })).toBe(false);
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' })).toBe(false);
    expect(decide({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, { spanId: 'b'.repeat(16), sampled: true })).toBe(true);
    expect(() => samplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toThrow(/not supported/);
  });

  it('hands the SDK finished spans with the derived ids, times, status and events', async () => {
    const exported: ReadableSpan[] = [];
    const sink = createOtlpSink({ env: { OTEL_SERVICE_NAME: 'ops-agents' }, exporter: collecting(exported) });
    const tracer = new SinkRunTracer(sink, { content: false });
    const status = { ...started(tracer, [model1, { ...tool2, phase: 'Failed' as const, outcome: 'ToolError', message: 'exit 2' }]), phase: 'Failed' as const, completionTime: at(20) };
    tracer.observe(run(), undefined, status, journal);
    await tracer.shutdown();
    expect(exported.map((s) => s.name).sort()).toEqual(['await_approval shell', 'chat claude-test', 'execute_tool shell', 'invoke_agent fix-bug']);
    const chat = exported.find((s) => s.name === 'chat claude-test');
    expect(chat?.spanContext()).toMatchObject({ traceId: runTraceId(UID), spanId: stepSpanId(UID, 1, 2) });
    expect(chat?.parentSpanContext?.spanId).toBe(runSpanId(UID, 'root'));
    expect(chat?.startTime).toEqual([Math.floor(T0 / 1000) + 1, 0]);
    expect(chat?.events[0]?.name).toBe('retry');
    expect(chat?.resource.attributes['service.name']).toBe('ops-agents');
    expect(resourceAttributes({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=a%20b,bad', OTEL_SERVICE_NAME: '' }))
      .toEqual({ 'service.name': 'agentrun-operator', 'deployment.environment': 'prod', team: 'a b' });
    expect(exported.find((s) => s.name === 'execute_tool shell')?.status).toEqual({ code: 2, message: 'exit 2' });
    const readable = toReadableSpan({ key: 'k', name: 'n', kind: 'internal', traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), startMs: 1500, endMs: 2750, attributes: {}, events: [] },
      resourceFromAttributes({}));
    expect(readable).toMatchObject({ startTime: [1, 500_000_000], endTime: [2, 750_000_000], duration: [1, 250_000_000], ended: true });
  });
});

function collecting(into: ReadableSpan[]): SpanExporter {
  return {
    export: (spans, done) => { into.push(...spans); done({ code: ExportResultCode.SUCCESS }); },
    shutdown: () => Promise.resolve(),
  };
}
