/** Logger redaction, the status-derived metrics, and the /metrics, /healthz, /readyz server. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AgentRunStatus } from '../../src/api/agent-run.ts';
import { silentLogger, type Logger } from '../../src/controller/logger.ts';
import { startObservabilityServer } from '../../src/observability/http-server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { OperatorMetrics, RunStatusObserver } from '../../src/observability/metrics.ts';
import { metricSum, parseMetrics } from '../harness/metrics.ts';

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk.toString()); done(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('the logger', () => {
  it('redacts credentials wherever a careless log line puts them', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ apiKey: 'sk-ant-1', credentials: { apiKey: 'sk-ant-2' }, headers: { authorization: 'Bearer t0k', 'x-api-key': 'sk-ant-3' },
      request: { headers: { authorization: 'Bearer t1k' } }, secret: { data: { 'api-key': 'c2stYW50' }, stringData: { k: 'v' } },
      user: { token: 'eyJhbGciOi', password: 'hunter2' }, run: 'ns/name', step: 3 }, 'careless');
    const text = JSON.stringify(out.lines());
    for (const leaked of ['sk-ant-1', 'sk-ant-2', 'sk-ant-3', 't0k', 't1k', 'c2stYW50', 'eyJhbGciOi', 'hunter2']) expect(text).not.toContain(leaked);
    // What is not a secret stays.
    expect(out.lines()[0]).toMatchObject({ run: 'ns/name', step: 3, msg: 'careless', component: 'agentrun-operator' });
  });
});

const done = (id: number, kind: 'Model' | 'Tool', extra: Record<string, unknown> = {}) => ({
  id, kind, turn: 1, phase: 'Succeeded' as const, attempt: 1, outcome: 'Completed', ...extra,
});
const usage = { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 100, cacheCreationInputTokens: 20, totalTokens: 135 };
const run = (uid: string, steps: unknown[]) => ({ metadata: { uid, namespace: 'ns', name: uid }, status: { steps } as AgentRunStatus });

describe('RunStatusObserver', () => {
  it('counts each finished step once, with tokens, retries and approval waits, and logs it with run, step and attempt', async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    const logged: Record<string, unknown>[] = [];
    const log: Logger = { ...silentLogger, info: (f) => { logged.push(f as Record<string, unknown>); } };
    const observer = new RunStatusObserver(metrics, log, () => true);
    observer.markSynced();
    observer.observe(run('u1', [{ id: 1, kind: 'Model', turn: 1, phase: 'Running', attempt: 2,
      retry: { attempt: 1, errorClass: 'overloaded', errorMessage: '529', nextRetryAt: '2030-01-01T00:00:00Z' } }]));
    observer.observe(run('u1', [done(1, 'Model', { attempt: 2, usage, retry: { attempt: 1, errorClass: 'overloaded', errorMessage: '529', nextRetryAt: '2030-01-01T00:00:00Z' } })]));
    observer.observe(run('u1', [done(1, 'Model', { usage }), done(2, 'Tool', {
      approval: { decision: 'Approved', at: '2030-01-01T00:01:30Z', requestedAt: '2030-01-01T00:00:00Z' } })]));
    // The same status again (a resync) counts nothing.
    observer.observe(run('u1', [done(1, 'Model', { usage }), done(2, 'Tool')]));
    const s = parseMetrics(await metrics.expose());
    expect(metricSum(s, 'agentrun_steps_total', { kind: 'Model' })).toBe(1);
    expect(metricSum(s, 'agentrun_steps_total', { kind: 'Tool', outcome: 'Completed' })).toBe(1);
    expect(metricSum(s, 'agentrun_tokens_total')).toBe(135);
    expect(metricSum(s, 'agentrun_tokens_total', { type: 'cache_read' })).toBe(100);
    expect(metricSum(s, 'agentrun_model_call_retries_total', { error_class: 'overloaded' })).toBe(1);
    expect(metricSum(s, 'agentrun_approval_wait_seconds_sum', { decision: 'Approved' })).toBe(90);
    expect(logged.map((l) => [l.run, l.step, l.attempt])).toEqual([['ns/u1', 1, 2], ['ns/u1', 2, 1]]);
  });

  it('does not count what was finished before it started, nor anything while not reconciling', async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    let leading = false;
    const observer = new RunStatusObserver(metrics, silentLogger, () => leading);
    observer.observe(run('old', [done(1, 'Model', { usage })]));
    observer.markSynced();
    observer.observe(run('old', [done(1, 'Model', { usage }), done(2, 'Tool')]));
    observer.observe(run('standby', [done(1, 'Model', { usage })]));
    expect(metricSum(parseMetrics(await metrics.expose()), 'agentrun_steps_total')).toBe(0);
    // Takes over: only steps that finish from now on count (the standby saw step 1 finish).
    leading = true;
    observer.observe(run('standby', [done(1, 'Model', { usage }), done(2, 'Tool')]));
    const s = parseMetrics(await metrics.expose());
    expect(metricSum(s, 'agentrun_steps_total')).toBe(1);
    expect(metricSum(s, 'agentrun_steps_total', { kind: 'Tool' })).toBe(1);
    expect(metricSum(s, 'agentrun_tokens_total')).toBe(0);
  });
});

describe('the observability server', () => {
  it('serves /metrics, /healthz and /readyz (503 with the reason until ready)', async () => {
    let ready = false;
    const server = await startObservabilityServer({
      port: 0, host: '127.0.0.1', log: silentLogger,
      metrics: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: 'up 1\n' }),
      readiness: () => (ready ? { ready: true, reason: 'ok' } : { ready: false, reason: 'caches not synced yet' }),
    });
    try {
      const get = async (path: string, method = 'GET') => {
        const r = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
        return [r.status, await r.text()];
      };
      expect(await get('/healthz')).toEqual([200, 'ok\n']);
      expect(await get('/readyz')).toEqual([503, 'caches not synced yet\n']);
      ready = true;
      expect(await get('/readyz?verbose')).toEqual([200, 'ok\n']);
      expect(await get('/metrics')).toEqual([200, 'up 1\n']);
      expect((await get('/metrics', 'POST'))[0]).toBe(405);
      expect((await get('/'))[0]).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('fails to start when the port is taken', async () => {
    const first = await startObservabilityServer({ port: 0, host: '127.0.0.1', log: silentLogger, metrics: () => Promise.resolve({ contentType: '', body: '' }), readiness: () => ({ ready: true, reason: 'ok' }) });
    try {
      await expect(startObservabilityServer({ port: first.port, host: '127.0.0.1', log: silentLogger, metrics: () => Promise.resolve({ contentType: '', body: '' }), readiness: () => ({ ready: true, reason: 'ok' }) }))
        .rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
