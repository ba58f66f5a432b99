/**
 * Run traces against a real Jaeger v2 (OTLP HTTP in, query API out): one trace per run with the
 * GenAI span tree, a trace that stays whole when the operator is SIGKILLed mid-run, a caller's
 * traceparent joined, tool pods given TRACEPARENT, and no exporter traffic with tracing off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { approveKey } from '../../src/api/approval.ts';
import { runSpanId, runTraceId, stepSpanId, TRACEPARENT_ANNOTATION } from '../../src/observability/tracing/ids.ts';
import { hostScratchDir, userKubeconfig } from '../harness/control-plane.ts';
import { startJaeger, type Jaeger, type QueriedSpan } from '../harness/jaeger.ts';
import { clients, cluster, eventually, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { waitForFileSnippet } from '../harness/test-node.ts';
import { createRun, finished, recordingTool, runEvents, startAgentEnv, waitForRun, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';

let env: AgentEnv;
let jaeger: Jaeger;
let traced: OperatorProcess;
let alice = '';
let gates = '';
const cleanups: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  jaeger = await startJaeger();
  cleanups.unshift(() => jaeger.stop());
  env = await startAgentEnv('tracing', { startOperator: false });
  cleanups.unshift(() => env.close());
  traced = new OperatorProcess({
    kubeconfig: cluster().kubeconfig, namespaces: [env.namespace], extraArgs: ['--tracing=true'],
    // A short batch delay: spans reach Jaeger within a second, and a SIGKILL can still lose some.
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpUrl, OTEL_BSP_SCHEDULE_DELAY: '300', OTEL_SERVICE_NAME: 'agentrun-test' },
  });
  cleanups.unshift(() => traced.stop());
  alice = await userKubeconfig(cluster(), 'alice', ['approvers']);
  await kubectl(['create', 'rolebinding', 'approvers', '-n', env.namespace, '--clusterrole=agentrun-approver', '--group=approvers']);
  gates = hostScratchDir('test-gates', env.namespace);
  await mkdir(gates, { recursive: true });
}, 120_000);
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const model = { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } };

async function runWith(name: string, spec: Record<string, unknown>, annotations?: Record<string, string>): Promise<void> {
  if (!annotations) { await createRun(env.namespace, name, spec); return; }
  await clients().custom.createNamespacedCustomObject({
    group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace: env.namespace,
    body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name, annotations }, spec },
  });
}

const done = (name: string): Promise<AgentRun> => waitForRun(env.namespace, name, `${name} to finish`, finished, 90_000);

/**
 * The trace once Jaeger stores `count` distinct spans of it, the run's root among them (exported
 * last, after every copy a restarted operator sends again), read once through the adjusters.
 */
async function traceOf(traceId: string, rootSpanId: string, count: number): Promise<QueriedSpan[]> {
  let last: QueriedSpan[] = [];
  try {
    await eventually(`${String(count)} spans of trace ${traceId} in Jaeger`, async () => {
      last = await jaeger.trace(traceId, { raw: true });
      return last.some((s) => s.spanId === rootSpanId) && new Set(last.map((s) => s.spanId)).size >= count ? true : undefined;
    }, 20_000);
  } catch (error) {
    throw new Error(`${String(error)}\nspans: ${last.map((s) => s.name).join(', ')}\noperator:\n${traced.output().slice(-2000)}`);
  }
  // The batch that holds the root may still be on its way through Jaeger's own batching.
  await new Promise((r) => setTimeout(r, 500));
  return jaeger.trace(traceId);
}

/** Each test can run alone (-t): the traced operator runs unless a test stopped it. */
async function tracedOperator(): Promise<void> {
  if (!traced.running) await traced.start();
}

const named = (spans: readonly QueriedSpan[], name: string): QueriedSpan[] => spans.filter((s) => s.name === name);
const one = (spans: readonly QueriedSpan[], name: string): QueriedSpan => {
  const found = named(spans, name);
  expect(found.map((s) => s.name), `exactly one ${name} in ${spans.map((s) => s.name).join(', ')}`).toEqual([name]);
  return found[0] as QueriedSpan;
};
const isError = (s: QueriedSpan) => s.status.code === 2 || s.status.code === 'STATUS_CODE_ERROR';

describe('run traces in Jaeger', () => {
  it('one trace per run: invoke_agent over chat (with its retry), await_approval and execute_tool, with gen_ai attributes', async () => {
    await tracedOperator();
    const key = '[trace-full]';
    env.model.script(key, [
      { content: [text('Listing.'), toolUse('shell', { command: 'ls' })], usage: { input_tokens: 120, output_tokens: 30 } },
      { content: [text('All listed.')] },
    ]);
    // The first call fails once (overloaded): the step retries it.
    env.model.failNext(1, { status: 529, retryAfterMs: 50, shouldRetry: false }, key);
    await runWith('full', {
      model, prompt: `${key} list files`, modelRetry: { initialBackoff: '100ms', maxBackoff: '200ms' },
      tools: [{ name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'printf "%s" "$TRACEPARENT"') }],
    });
    await waitForRun(env.namespace, 'full', 'the tool call to await approval', (r) => (r.status?.pendingApprovals?.length ?? 0) === 1);
    await kubectl(['annotate', 'agentrun', 'full', '-n', env.namespace, `${approveKey(2)}=fine`], { kubeconfig: alice });
    const run = await done('full');
    expect(run.status?.phase).toBe('Succeeded');
    const uid = run.metadata.uid ?? '';
    const trace = run.status?.trace;
    expect(trace).toEqual({ traceId: runTraceId(uid), spanId: runSpanId(uid, 'root'), sampled: true });

    const spans = await traceOf(trace?.traceId ?? '', trace?.spanId ?? '', 5);
    expect(spans.every((s) => s.traceId === trace?.traceId && s.serviceName === 'agentrun-test')).toBe(true);
    const root = one(spans, 'invoke_agent full');
    expect(root.parentSpanId).toBe('');
    expect(root.spanId).toBe(trace?.spanId);
    expect(root.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'full', 'gen_ai.agent.id': uid, 'agentrun.run.phase': 'Succeeded' });
    expect(Date.parse(run.metadata.creationTimestamp ?? '')).toBe(root.startMs);
    expect(Date.parse(run.status?.completionTime ?? '')).toBe(root.endMs);
    for (const s of spans.filter((x) => x !== root)) expect(s.parentSpanId, s.name).toBe(root.spanId);

    const chats = named(spans, 'chat claude-test');
    expect(chats).toHaveLength(2);
    const first = chats.find((c) => c.attributes['agentrun.step.id'] === 1);
    expect(first?.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': 'claude-test',
      'gen_ai.response.finish_reasons': ['tool_use'], 'gen_ai.usage.input_tokens': 120, 'gen_ai.usage.output_tokens': 30,
      'agentrun.step.attempt': 2, 'agentrun.retry.failed_attempts': 1,
    });
    expect(String(first?.attributes['gen_ai.response.id'])).toMatch(/^msg_/);
    expect(first?.events.map((e) => [e.name, e.attributes['agentrun.retry.attempt']])).toEqual([['retry', 1]]);
    expect(first?.events[0]?.attributes['error.type']).toBeTruthy();

    const tool = one(spans, 'execute_tool shell');
    const step2 = run.status?.steps?.find((s) => s.id === 2);
    expect(tool.spanId).toBe(stepSpanId(uid, 2, 1));
    expect(tool.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'shell', 'gen_ai.tool.call.id': step2?.toolUseId,
      'k8s.pod.name': 'full-s2-a1', 'agentrun.step.outcome': 'Completed', 'agentrun.tool.exit_code': 0,
    });
    // Not recorded without --trace-content.
    expect(tool.attributes['gen_ai.tool.call.result']).toBeUndefined();
    const approval = one(spans, 'await_approval shell');
    expect(approval.attributes).toMatchObject({ 'agentrun.approval.decision': 'Approved', 'agentrun.approval.by': 'alice' });
    expect(approval.endMs).toBeLessThanOrEqual(tool.startMs);

    // The tool's pod got TRACEPARENT naming its execute_tool span: the model saw it as the tool's output.
    const second = env.model.requests(key).at(-1)?.body as { messages: { content: { content?: string }[] }[] };
    expect(second.messages[2]?.content[0]?.content).toBe(`00-${trace?.traceId ?? ''}-${tool.spanId}-01`);
  });

  it('SIGKILL mid-run: still one trace with every step\'s span, the interrupted call marked', async () => {
    await tracedOperator();
    const key = '[trace-crash]';
    const gate = join(gates, 'trace-crash');
    env.model.script(key, [{ content: [toolUse('work', { n: 1 })] }, { content: [text('Worked.')] }]);
    await runWith('crash', { model, prompt: `${key} work`, tools: [{ name: 'work', description: 'Works', container: recordingTool(env.execLog, `${waitForFileSnippet(gate)}; echo worked`) }] });
    await waitForRun(env.namespace, 'crash', 'the tool pod to run', (r) => r.status?.steps?.find((s) => s.id === 2)?.phase === 'Running');
    // The answer to the second call is held: the operator dies while that call is in flight.
    const release = env.model.hold(key);
    await writeFile(gate, '');
    await env.model.waitForRequest(key, 2);
    await traced.kill();
    release();
    await traced.start();
    const run = await done('crash');
    expect(run.status?.phase).toBe('Succeeded');
    const uid = run.metadata.uid ?? '';
    const traceId = run.status?.trace?.traceId ?? '';
    expect(traceId).toBe(runTraceId(uid));
    // root + chat(1) + execute_tool(2) + interrupted chat(3) + chat(3).
    const spans = await traceOf(traceId, run.status?.trace?.spanId ?? '', 5);
    const copies = spans.filter((s) => spans.filter((o) => o.spanId === s.spanId).length > 1);
    expect(copies, `each span once (copies folded); stored: ${copies.length > 0 ? await jaeger.raw(traceId) : ''}`).toEqual([]);
    expect(spans.every((s) => s.traceId === traceId)).toBe(true);
    const root = one(spans, 'invoke_agent crash');
    for (const s of spans.filter((x) => x !== root)) expect(s.parentSpanId, s.name).toBe(root.spanId);
    expect(one(spans, 'execute_tool work').spanId).toBe(stepSpanId(uid, 2, 1));
    const chats = named(spans, 'chat claude-test');
    expect(chats.map((c) => c.attributes['agentrun.step.id']).sort()).toEqual([1, 3, 3]);
    const interrupted = chats.find((c) => c.attributes['agentrun.interrupted'] === true);
    const completed = chats.find((c) => c.attributes['agentrun.step.id'] === 3 && c !== interrupted);
    expect(interrupted && isError(interrupted)).toBe(true);
    expect(interrupted?.status.message).toMatch(/interrupted/);
    expect(completed?.spanId).toBe(stepSpanId(uid, 3, 1));
    expect(completed?.attributes['agentrun.operator_restarted']).toBe(true);
    expect(completed && isError(completed)).toBe(false);
    // The interrupted call starts when the step did and ends no later than the completed call does.
    expect(interrupted?.startMs).toBe(Date.parse(run.status?.steps?.find((s) => s.id === 3)?.startedAt ?? ''));
    expect(interrupted?.endMs ?? Infinity).toBeLessThanOrEqual(completed?.endMs ?? 0);
  });

  it('a traceparent annotation joins the caller\'s trace; a bad one is ignored with a Warning Event', async () => {
    await tracedOperator();
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    env.model.script('[trace-joined]', [{ content: [text('Joined.')] }]);
    env.model.script('[trace-bad]', [{ content: [text('Alone.')] }]);
    await runWith('joined', { model, prompt: '[trace-joined] hi' }, { [TRACEPARENT_ANNOTATION]: `00-${callerTrace}-${callerSpan}-01` });
    await runWith('bad', { model, prompt: '[trace-bad] hi' }, { [TRACEPARENT_ANNOTATION]: `00-${callerTrace}-not-hex-01` });
    const joined = await done('joined');
    expect(joined.status?.trace).toMatchObject({ traceId: callerTrace, parentSpanId: callerSpan, sampled: true });
    const spans = await traceOf(callerTrace, joined.status?.trace?.spanId ?? '', 2);
    expect(one(spans, 'invoke_agent joined').parentSpanId).toBe(callerSpan);
    expect(one(spans, 'chat claude-test').parentSpanId).toBe(joined.status?.trace?.spanId);

    const bad = await done('bad');
    expect(bad.status?.phase).toBe('Succeeded');
    expect(bad.status?.trace?.traceId).toBe(runTraceId(bad.metadata.uid ?? ''));
    const warning = await eventually('the InvalidTraceparent Event', async () =>
      (await runEvents(env.namespace, 'bad')).find((e) => e.reason === 'InvalidTraceparent'));
    expect(warning).toMatchObject({ type: 'Warning' });
    expect(warning.message).toContain(TRACEPARENT_ANNOTATION);
    expect((await traceOf(bad.status?.trace?.traceId ?? '', bad.status?.trace?.spanId ?? '', 2)).map((s) => s.name).sort()).toEqual(['chat claude-test', 'invoke_agent bad']);
    await traced.stop();
  });

  it('with tracing off: no trace in status and no exporter traffic', async () => {
    const requests: string[] = [];
    const collector: Server = createServer((req, res) => { requests.push(`${req.method ?? ''} ${req.url ?? ''}`); res.end(); });
    await new Promise<void>((resolve) => { collector.listen(0, '127.0.0.1', resolve); });
    const address = collector.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const plain = new OperatorProcess({
      kubeconfig: cluster().kubeconfig, namespaces: [env.namespace],
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${String(port)}`, OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    try {
      await plain.start();
      env.model.script('[trace-off]', [{ content: [toolUse('shell', { command: 'true' })] }, { content: [text('Untraced.')] }]);
      await runWith('off', { model, prompt: '[trace-off] go', tools: [{ name: 'shell', description: 'Runs', container: recordingTool(env.execLog, 'printf "[%s]" "$TRACEPARENT"') }] });
      const run = await done('off');
      expect(run.status?.phase).toBe('Succeeded');
      expect(run.status?.trace).toBeUndefined();
      const second = env.model.requests('[trace-off]').at(-1)?.body as { messages: { content: { content?: string }[] }[] };
      expect(second.messages[2]?.content[0]?.content).toBe('[]');
      await plain.stop();
      // Longer than the batch delay the exporter would use.
      await new Promise((r) => setTimeout(r, 500));
      expect(requests).toEqual([]);
      expect(plain.logs((l) => l.msg === 'operator started')[0]).toMatchObject({ tracing: false });
    } finally {
      await plain.stop();
      collector.close();
    }
  });
});
