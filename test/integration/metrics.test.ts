/**
 * The operator's /metrics, /healthz and /readyz, scraped from the real process while it runs a
 * real run: every series the operator promises exists, and the values match what the run's status
 * says happened (tokens, steps, model calls and a retry, tool pods, an approval wait).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveKey } from '../../src/api/approval.ts';
import { createRun, recordingTool, startAgentEnv, waitForRun, finished, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';
import { freePort } from '../harness/control-plane.ts';
import { cluster, eventually, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { metricSum, parseMetrics, scrape, type Sample } from '../harness/metrics.ts';

let env: AgentEnv;
let operator: OperatorProcess;
let port: number;

beforeAll(async () => {
  env = await startAgentEnv('metrics', { startOperator: false });
  port = await freePort();
  operator = new OperatorProcess({
    kubeconfig: cluster().kubeconfig, namespaces: [env.namespace],
    // The test cluster may not serve the MutatingAdmissionPolicy that records approvers (1.36+).
    extraArgs: ['--metrics-port', String(port), '--require-approver-identity=false'],
  });
  await operator.start();
});
afterAll(async () => {
  await operator.stop();
  await env.close();
});

const samples = async (): Promise<Sample[]> => parseMetrics((await scrape(port)).body);

describe('observability endpoints', () => {
  it('/healthz and /readyz answer, and an idle operator reports its memory', async () => {
    expect(await scrape(port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await scrape(port, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect((await scrape(port, '/nope')).status).toBe(404);
    const idle = await samples();
    const rss = metricSum(idle, 'process_resident_memory_bytes');
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
    console.log(`[metrics] idle operator RSS: ${(rss / 1024 / 1024).toFixed(1)} MiB (node src/main.ts, type stripping), heap used ${(metricSum(idle, 'nodejs_heap_size_used_bytes') / 1024 / 1024).toFixed(1)} MiB`);
    expect(metricSum(idle, 'agentrun_leader')).toBe(1);
    expect(metricSum(idle, 'agentrun_ready')).toBe(1);
    expect(idle.some((s) => s.name === 'agentrun_workqueue_depth' && s.labels.controller === 'agentrun')).toBe(true);
  });

  it('/metrics matches a finished run: steps, tokens, model calls and retries, tool pods, approval wait, status size', async () => {
    const KEY = '[metrics-run]';
    env.model.script(KEY, [
      { content: [text('Looking up.'), toolUse('lookup', { q: 'a' }), toolUse('lookup', { q: 'b' })] },
      { content: [toolUse('shell', { command: 'echo gated' })] },
      { content: [text('All done.')] },
    ]);
    // One transient failure: the first call is retried once.
    env.model.failNext(1, { status: 529, retryAfterMs: 50 }, KEY);
    const before = await samples();
    await createRun(env.namespace, 'measured', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
      prompt: `${KEY} measure me`,
      modelRetry: { initialBackoff: '100ms', maxBackoff: '1s' },
      tools: [
        { name: 'lookup', description: 'Look something up', container: recordingTool(env.execLog) },
        { name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog) },
      ],
    });
    const waiting = await waitForRun(env.namespace, 'measured', 'the shell step to await approval', (r) => (r.status?.pendingApprovals?.length ?? 0) === 1);
    const gated = waiting.status?.pendingApprovals?.[0]?.step ?? 0;
    await kubectl(['annotate', 'agentrun', 'measured', '-n', env.namespace, `${approveKey(gated)}=fine`]);
    const run = await waitForRun(env.namespace, 'measured', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
    const status = run.status ?? {};
    const steps = status.steps ?? [];
    const usage = status.usage;
    if (!usage) throw new Error('no usage in status');

    // Metrics follow the statuses the informer delivers: poll until the last step is counted.
    const after = await eventually('every step to be counted', async () => {
      const now = await samples();
      return metricSum(now, 'agentrun_steps_total') - metricSum(before, 'agentrun_steps_total') === steps.length ? now : undefined;
    }, 10_000);
    const delta = (name: string, labels: Record<string, string> = {}) => metricSum(after, name, labels) - metricSum(before, name, labels);

    expect(steps.map((s) => `${s.kind}:${s.phase}:${s.outcome ?? ''}`)).toEqual([
      'Model:Succeeded:Completed', 'Tool:Succeeded:Completed', 'Tool:Succeeded:Completed',
      'Model:Succeeded:Completed', 'Tool:Succeeded:Completed', 'Model:Succeeded:Completed',
    ]);
    expect(delta('agentrun_steps_total', { kind: 'Model', phase: 'Succeeded', outcome: 'Completed' })).toBe(3);
    expect(delta('agentrun_steps_total', { kind: 'Tool', phase: 'Succeeded', outcome: 'Completed' })).toBe(3);

    // Tokens: the counter by type equals the run's usage, and their sum its totalTokens.
    expect(delta('agentrun_tokens_total', { type: 'input' })).toBe(usage.inputTokens);
    expect(delta('agentrun_tokens_total', { type: 'output' })).toBe(usage.outputTokens);
    expect(delta('agentrun_tokens_total', { type: 'cache_read' })).toBe(usage.cacheReadInputTokens);
    expect(delta('agentrun_tokens_total', { type: 'cache_creation' })).toBe(usage.cacheCreationInputTokens);
    expect(delta('agentrun_tokens_total')).toBe(usage.totalTokens);
    expect(usage.totalTokens).toBeGreaterThan(0);

    // Model calls: three answered plus the one 529, which was retried once.
    expect(delta('agentrun_model_call_duration_seconds_count', { outcome: 'succeeded' })).toBe(env.model.calls(KEY));
    expect(env.model.calls(KEY)).toBe(3);
    expect(delta('agentrun_model_call_duration_seconds_count', { outcome: 'failed' })).toBe(1);
    expect(delta('agentrun_model_call_retries_total')).toBe(1);
    expect(delta('agentrun_model_call_retries_total', { error_class: steps[0]?.retry?.errorClass ?? '?' })).toBe(1);
    // Effects are counted as executed: a create repeated until the informer shows the pod is
    // idempotent (AlreadyExists adopts it), so there are at least as many as pods.
    expect(delta('agentrun_effects_total', { type: 'startModelCall' })).toBeGreaterThanOrEqual(4);
    expect(delta('agentrun_effects_total', { type: 'createPod' })).toBeGreaterThanOrEqual(3);
    expect(env.pods.names()).toHaveLength(3);

    // The approval wait: one observation of (approval.at - requestedAt).
    const approval = steps.find((s) => s.id === gated)?.approval;
    expect(approval?.requestedAt).toBeDefined();
    expect(delta('agentrun_approval_wait_seconds_count', { decision: 'Approved' })).toBe(1);
    const waited = (Date.parse(approval?.at ?? '') - Date.parse(approval?.requestedAt ?? '')) / 1000;
    expect(delta('agentrun_approval_wait_seconds_sum', { decision: 'Approved' })).toBeCloseTo(waited, 3);

    // Reconciles and status writes were measured; none failed.
    expect(delta('agentrun_reconcile_duration_seconds_count')).toBeGreaterThan(steps.length);
    expect(delta('agentrun_reconcile_errors_total')).toBe(0);
    expect(delta('agentrun_status_size_bytes_count')).toBeGreaterThanOrEqual(steps.length);
    const finalSize = JSON.stringify(status).length;
    expect(metricSum(after, 'agentrun_status_size_bytes_bucket', { le: '1024' })).toBeLessThan(metricSum(after, 'agentrun_status_size_bytes_count'));
    expect(finalSize).toBeGreaterThan(1024);
    expect(metricSum(after, 'agentrun_runs', { phase: 'Succeeded' })).toBe(1);
    expect(metricSum(after, 'agentrun_workqueue_depth', { controller: 'agentrun' })).toBeGreaterThanOrEqual(0);

    // Per-step log lines carry run, step and attempt. The last one is written after the status
    // update returns, and reaches us through the child's stdout pipe: wait for it.
    const logged = await eventually('a "step finished" log line per step', () => {
      const lines = operator.logs((l) => l.msg === 'step finished' && l.run === `${env.namespace}/measured`);
      return Promise.resolve(lines.length >= steps.length ? lines : undefined);
    }, 10_000);
    expect(logged.map((l) => [l.step, l.attempt, l.kind]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual(steps.map((s) => [s.id, s.attempt, s.kind]));
  });
});
