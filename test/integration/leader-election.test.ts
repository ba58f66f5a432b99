/**
 * Two operator processes with --leader-elect on a real Lease: only the leader reconciles; when it
 * is SIGKILLed the standby takes over once the lease expires and finishes the run (the tool is not
 * run twice); a graceful stop releases the lease so the standby takes over at once; a leader whose
 * lease is taken exits non-zero. Default timings (lease 15 s, renew deadline 10 s, retry 2 s).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, executions, getRun, recordingTool, startAgentEnv, waitForRun, finished, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';
import { freePort } from '../harness/control-plane.ts';
import { cluster, eventually, kubectl, readJournal } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { metricSum, parseMetrics, scrape } from '../harness/metrics.ts';

const LEASE = 'agentrun-operator';
const LEASE_DURATION_S = 15;
const RETRY_PERIOD_S = 2;

interface Replica { readonly name: string; readonly process: OperatorProcess; readonly port: number }

let env: AgentEnv;
const replicas: Replica[] = [];

async function replica(name: string): Promise<Replica> {
  const port = await freePort();
  const process = new OperatorProcess({
    kubeconfig: cluster().kubeconfig, namespaces: [env.namespace],
    extraArgs: ['--leader-elect', '--leader-election-namespace', env.namespace, '--leader-election-id', LEASE, '--metrics-port', String(port)],
    env: { POD_NAME: name },
  });
  await process.start();
  const r = { name, process, port };
  replicas.push(r);
  return r;
}

async function holder(): Promise<string> {
  const { stdout } = await kubectl(['get', 'lease', LEASE, '-n', env.namespace, '-o', 'jsonpath={.spec.holderIdentity}']).catch(() => ({ stdout: '' }));
  return stdout;
}

const leads = (r: Replica) => r.process.logs((l) => l.msg === 'became leader').length > 0;
const reconciled = (r: Replica) => r.process.logs((l) => l.msg === 'controller started' || l.msg === 'status written').length;

beforeAll(async () => { env = await startAgentEnv('leader', { startOperator: false }); });
afterAll(async () => {
  for (const r of replicas) await r.process.stop();
  await env.close();
});

describe('leader election', () => {
  it('only the leader reconciles; after a SIGKILL the standby takes over within the lease duration and finishes the run', async () => {
    const a = await replica('op-a');
    await eventually('op-a to acquire the lease', async () => ((await holder()).startsWith('op-a_') ? true : undefined));
    const b = await replica('op-b');
    // b is a synced standby: ready, not leading, never started its controller.
    await eventually('op-b to see the leader', async () => ((await scrape(b.port, '/readyz')).body.includes('standby') ? true : undefined));
    expect((await scrape(b.port, '/readyz')).status).toBe(200);
    expect((await scrape(a.port, '/readyz')).body).toMatch(/^ok: leader \(op-a_[0-9a-f]{8}\)/);
    expect(metricSum(parseMetrics((await scrape(a.port)).body), 'agentrun_leader')).toBe(1);
    expect(metricSum(parseMetrics((await scrape(b.port)).body), 'agentrun_leader')).toBe(0);

    const KEY = '[leader-failover]';
    env.model.script(KEY, [
      { content: [text('Running a slow tool.'), toolUse('slow', { seconds: 2 })] },
      { content: [text('The slow tool finished.')] },
    ]);
    await createRun(env.namespace, 'failover', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
      prompt: `${KEY} run it`,
      tools: [{ name: 'slow', description: 'Takes a while', container: recordingTool(env.execLog, 'sleep 2; echo slept') }],
    });
    const running = await waitForRun(env.namespace, 'failover', 'the tool step to run', (r) => r.status?.steps?.[1]?.phase === 'Running' && Boolean(r.status.steps[1].podName));
    expect(reconciled(a)).toBeGreaterThan(0);
    expect(reconciled(b), 'the standby reconciled while not leading').toBe(0);

    const signature = (steps: typeof running.status) => JSON.stringify((steps?.steps ?? []).map((s) => [s.id, s.phase]));
    const atKill = signature(running.status);
    const killedAt = Date.now();
    await a.process.kill();

    let takeoverMs = 0;
    let nextStepMs = 0;
    while (Date.now() - killedAt < 60_000 && (!takeoverMs || !nextStepMs)) {
      if (!takeoverMs && (await holder()).startsWith('op-b_')) takeoverMs = Date.now() - killedAt;
      if (!nextStepMs && signature((await getRun(env.namespace, 'failover')).status) !== atKill) nextStepMs = Date.now() - killedAt;
      await new Promise((r) => setTimeout(r, 100));
    }
    // The same, to the millisecond, from the new leader's own log (same machine, same clock).
    const at = (msg: string) => { const time = b.process.logs((l) => l.msg === msg)[0]?.time; return (typeof time === 'string' ? Date.parse(time) : NaN) - killedAt; };
    console.log(`[leader-election] leader SIGKILLed → standby became leader after ${(at('became leader') / 1000).toFixed(2)} s, `
      + `recorded the next step after ${(at('status written') / 1000).toFixed(2)} s (seen by polling: lease ${(takeoverMs / 1000).toFixed(1)} s, `
      + `status ${(nextStepMs / 1000).toFixed(1)} s; lease duration ${LEASE_DURATION_S} s, retry period ${RETRY_PERIOD_S} s)`);
    expect(at('status written')).toBeGreaterThanOrEqual(at('became leader'));
    expect(takeoverMs, 'the standby took over').toBeGreaterThan(0);
    // Not before the lease could have expired (last renewal ≤ one retry period before the kill) …
    expect(takeoverMs).toBeGreaterThanOrEqual((LEASE_DURATION_S - RETRY_PERIOD_S - 1) * 1000);
    // … and within the lease duration plus one jittered acquire period.
    // … and within the lease duration after the standby last saw it renewed (which it sees at its
    // next jittered poll, up to 2.2 retry periods late), plus one more poll to acquire it.
    expect(takeoverMs).toBeLessThanOrEqual((LEASE_DURATION_S + 2 * 2.2 * RETRY_PERIOD_S + 2) * 1000);
    expect(nextStepMs).toBeGreaterThan(0);
    expect(leads(b)).toBe(true);
    if (process.env.AGENTRUN_TEST_VERBOSE) console.log(b.process.logs().slice(-40).map((l) => JSON.stringify(l)).join('\n'));

    const done = await waitForRun(env.namespace, 'failover', 'finished', finished, 30_000);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.result).toBe('The slow tool finished.');
    // The tool pod that ran under the old leader was adopted, not run again; no model call repeated.
    expect(await executions(env.execLog)).toHaveLength(1);
    expect(env.model.calls(KEY)).toBe(2);
    expect(done.status?.steps?.every((s) => s.attempt === 1)).toBe(true);
  });

  it('a graceful stop releases the lease: the standby takes over at once, not after the lease duration', async () => {
    const b = replicas.find((r) => r.name === 'op-b');
    if (!b) throw new Error('no op-b');
    expect((await holder()).startsWith('op-b_')).toBe(true);
    const c = await replica('op-c');
    await eventually('op-c to stand by', async () => ((await scrape(c.port, '/readyz')).body.includes('standby') ? true : undefined));
    const stoppedAt = Date.now();
    await b.process.stop();
    expect(b.process.logs((l) => l.msg === 'lease released')).toHaveLength(1);
    await eventually('op-c to take over', async () => ((await holder()).startsWith('op-c_') ? true : undefined), 20_000);
    const handoverMs = Date.now() - stoppedAt;
    console.log(`[leader-election] leader stopped (SIGTERM) → standby leads after ${(handoverMs / 1000).toFixed(1)} s`);
    expect(handoverMs).toBeLessThan((2.2 * RETRY_PERIOD_S + 2) * 1000);
    expect(handoverMs).toBeLessThan(LEASE_DURATION_S * 1000);
    const { stdout } = await kubectl(['get', 'lease', LEASE, '-n', env.namespace, '-o', 'jsonpath={.spec.leaseTransitions}']);
    expect(Number(stdout)).toBe(2);
  });

  it('a leader whose lease is taken away stops at once and exits non-zero', async () => {
    const c = replicas.find((r) => r.name === 'op-c');
    if (!c) throw new Error('no op-c');
    expect((await holder()).startsWith('op-c_')).toBe(true);
    await kubectl(['patch', 'lease', LEASE, '-n', env.namespace, '--type', 'merge', '-p', JSON.stringify({ spec: { holderIdentity: 'intruder' } })]);
    const patchedAt = Date.now();
    const exit = await c.process.exited();
    const exitedMs = Date.now() - patchedAt;
    expect(exit.code).toBe(1);
    expect(exitedMs).toBeLessThan((RETRY_PERIOD_S + 2) * 1000);
    expect(c.process.logs((l) => l.msg === 'leadership lost')[0]?.reason).toContain('now held by intruder');
    expect(await holder()).toBe('intruder');
    const run = await getRun(env.namespace, 'failover');
    expect(run.status?.phase).toBe('Succeeded');
  });

  it('two leaders for a moment: a leader frozen past its lease (SIGSTOP), then thawed, cannot break the run', async () => {
    const d = await replica('op-d');
    await eventually('op-d to lead', async () => ((await holder()).startsWith('op-d_') ? true : undefined), 60_000);
    const KEY = '[leader-stale]';
    env.model.script(KEY, [{ content: [text('the one answer')] }]);
    const release = env.model.hold(KEY);
    await createRun(env.namespace, 'stale-leader', { model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${KEY} answer` });
    await env.model.waitForRequest(KEY, 1);
    d.process.pause();
    const e = await replica('op-e');
    await eventually('op-e to take the lease from the frozen leader', async () => ((await holder()).startsWith('op-e_') ? true : undefined), 60_000);
    // The new leader re-issues the call; both answers go out, the new leader journals and records its own.
    await env.model.waitForRequest(KEY, 2);
    release();
    const done = await waitForRun(env.namespace, 'stale-leader', 'finished', finished, 30_000);
    // The frozen leader wakes with its own answer for the same step and tries to journal it.
    d.process.resume();
    await Promise.race([d.process.exited(), new Promise((r) => setTimeout(r, 10_000))]);
    const run = await getRun(env.namespace, 'stale-leader');
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.result).toBe('the one answer');
    expect(run.status?.steps?.map((s) => [s.id, s.phase])).toEqual([[1, 'Succeeded']]);
    expect(run.status?.steps).toEqual(done.status?.steps);
    // Status names exactly what is stored: the second leader's entry never displaced it.
    const stored = await readJournal(env.namespace, run.status?.steps?.[0]?.journal?.name ?? '');
    expect(`sha256:${createHash('sha256').update(stored.spec.entry).digest('hex')}`).toBe(run.status?.steps?.[0]?.journal?.digest);
    expect(e.process.logs((l) => l.level === 50 || l.msg === 'reconcile failed permanently; not requeueing')).toEqual([]);
  });
});
