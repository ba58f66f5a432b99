/**
 * MCP servers as tools, end to end, against the real `@modelcontextprotocol/server-everything`
 * started on 127.0.0.1: the MCPServer lists its tools into status, a run calls `echo` with the
 * mock model, the operator is killed mid-call (a tool not idempotent is reported interrupted, an
 * idempotent one is called again), the server is killed mid-call, and the server restarts with a
 * tool list that no longer has a tool the run resolved at its start. Each test asserts what the
 * model received (the mock records every request) and which calls ran (step attempts, no pods).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { createRun, finished, getRun, startAgentEnv, waitForRun, type AgentEnv, endpointFor } from '../harness/agent-env.ts';
import { CrashPoint } from '../../src/reconciler/crash-points.ts';
import { clients, cluster, eventually, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { startEverythingServer, type EverythingServer } from '../harness/mcp-server.ts';
import { stepOf, toolResultsSent } from '../harness/tool-scenarios.ts';
import { metricSum, parseMetrics, scrape } from '../harness/metrics.ts';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { freePort, repoRoot, userKubeconfig } from '../harness/control-plane.ts';
import { OperatorProcess } from '../harness/operator-process.ts';

/** Runs bin/kubectl-agentrun as the admin, without colours; resolves to its stdout. */
async function plugin(args: readonly string[]): Promise<string> {
  const env = { ...process.env, KUBECONFIG: cluster().kubeconfig, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, NO_COLOR: '1' };
  return await new Promise((resolve, reject) => {
    execFile(join(repoRoot, 'bin', 'kubectl-agentrun'), [...args], { env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`kubectl agentrun ${args.join(' ')}: ${error.message}\n${stderr}`)); else resolve(stdout);
    });
  });
}

let env: AgentEnv;
let everything: EverythingServer;
/** The operator, with /metrics on a known port (the environment's own is not started). */
let operator: OperatorProcess;
let metricsPort: number;
beforeAll(async () => {
  everything = await startEverythingServer();
  env = await startAgentEnv('mcp', { startOperator: false });
  metricsPort = await freePort();
  operator = new OperatorProcess({ kubeconfig: cluster().kubeconfig, namespaces: [env.namespace], extraArgs: ['--metrics-port', String(metricsPort)] });
  await operator.start();
});
afterAll(async () => {
  await operator.stop();
  await env.close();
  await everything.stop();
});

const mcpApi = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'mcpservers' };

interface MCPServerView { status?: { conditions?: { type: string; status: string; reason: string; message: string }[];
  toolCount?: number; discoveredTools?: { name: string; annotations?: Record<string, unknown> }[];
  serverInfo?: { name?: string; version?: string; protocolVersion?: string } } }

async function getMCPServer(name: string): Promise<MCPServerView> {
  return await clients().custom.getNamespacedCustomObject({ ...mcpApi, namespace: env.namespace, name }) as MCPServerView;
}

async function createMCPServer(name: string, url: string, spec: Record<string, unknown> = {}): Promise<MCPServerView> {
  await kubectl(['apply', '-n', env.namespace, '-f', '-'], { input: JSON.stringify({
    apiVersion: 'agentrun.dev/v1alpha1', kind: 'MCPServer', metadata: { name }, spec: { url, ...spec },
  }) });
  return await eventually(`MCPServer ${name} Ready`, async () => {
    const s = await getMCPServer(name);
    return s.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? s : undefined;
  }, 60_000);
}

async function runSpec(key: string, tools: Record<string, unknown>[]): Promise<Record<string, unknown>> {
  return { model: { name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, env.model.url) } }, prompt: `${key} do the task`, tools };
}

const waitForStep = async (name: string, id: number, phase: string): Promise<AgentRun> =>
  await waitForRun(env.namespace, name, `step ${id} of ${name} ${phase}`, (r) => r.status?.steps?.find((s) => s.id === id)?.phase === phase, 60_000);

describe('MCP servers as tools (real server-everything)', () => {
  it('an MCPServer lists its tools into status; a run calls echo end to end with no pod', async () => {
    const server = await createMCPServer('everything', everything.url);
    expect(server.status?.serverInfo).toMatchObject({ name: 'mcp-servers/everything', protocolVersion: '2025-11-25' });
    expect(server.status?.toolCount).toBeGreaterThanOrEqual(12);
    expect(server.status?.discoveredTools?.find((t) => t.name === 'echo')?.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true });
    const columns = (await kubectl(['get', 'mcpservers', '-n', env.namespace])).stdout;
    expect(columns).toMatch(/NAME\s+READY\s+TOOLS\s+URL\s+AGE/);
    expect(columns).toContain(everything.url);

    const KEY = '[mcp-echo]', name = 'mcp-echo';
    env.model.script(KEY, [{ content: [text('Echoing.'), toolUse('ev_echo', { message: 'hello from the run' })] }, { content: [text('It said hello.')] }]);
    await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'everything', mcpServerRef: { name: 'everything' }, allow: ['echo'], prefix: 'ev_' }]));
    const run = await waitForRun(env.namespace, name, 'run to finish', finished, 60_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ kind: 'Tool', tool: 'ev_echo', mcpServer: 'everything', phase: 'Succeeded', outcome: 'Completed', attempt: 1 });
    expect(stepOf(run, 2).podName).toBeUndefined();
    // The model saw the server's tool under its prefix, with the server's schema, and got the server's answer.
    const first = env.model.requests(KEY)[0]?.body as { tools?: { name: string; input_schema: { properties?: object } }[] };
    expect(first.tools?.map((t) => t.name)).toEqual(['ev_echo']);
    expect(first.tools?.[0]?.input_schema.properties).toHaveProperty('message');
    expect(toolResultsSent(env.model, KEY, 1)).toEqual([{ tool_use_id: stepOf(run, 2).toolUseId, content: 'Echo: hello from the run' }]);
    expect(env.pods.names().filter((n) => n.startsWith(name))).toEqual([]);

    // kubectl agentrun describe and transcript show the MCP step with its server and tool.
    const describe = await plugin(['describe', name, '-n', env.namespace]);
    expect(describe).toMatch(/2\s+Tool\s+ev_echo\s+Succeeded\/Completed\s+1\s+mcp:everything/);
    expect(await plugin(['transcript', name, '-n', env.namespace])).toContain('Tool result · ev_echo · MCP server everything · step 2');
    // The call's latency is in /metrics, by server and outcome.
    const metrics = parseMetrics((await scrape(metricsPort)).body);
    expect(metricSum(metrics, 'agentrun_mcp_call_duration_seconds_count', { server: `${env.namespace}/everything`, outcome: 'result' })).toBeGreaterThanOrEqual(1);
  });

  it('kill the operator mid-call: a tool not idempotent is reported interrupted, an idempotent one is called again', async () => {
    await createMCPServer('everything', everything.url);
    await createMCPServer('everything-trusted', everything.url, { trustHints: true });
    const slow = { duration: 6, steps: 3 };
    const runs = [['mcp-kill-plain', '[mcp-kill-plain]', 'everything'], ['mcp-kill-idem', '[mcp-kill-idem]', 'everything-trusted']] as const;
    for (const [name, KEY, server] of runs) {
      env.model.script(KEY, [{ content: [text('Slow op.'), toolUse('trigger-long-running-operation', slow)] }, { content: [text('Finished.')] }]);
      await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: server }, allow: ['trigger-long-running-operation'] }]));
    }
    for (const [name] of runs) await waitForStep(name, 2, 'Running');
    await operator.kill();
    await operator.start();

    const plain = await waitForRun(env.namespace, runs[0][0], 'plain run to finish', finished, 90_000);
    expect(plain.status?.phase).toBe('Succeeded');
    expect(stepOf(plain, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted', attempt: 1, mcpServer: 'everything' });
    const [told] = toolResultsSent(env.model, runs[0][1], 1);
    expect(told?.is_error).toBe(true);
    expect(told?.content).toContain('was interrupted');
    expect(told?.content).toContain('not called again');

    const idem = await waitForRun(env.namespace, runs[1][0], 'idempotent run to finish', finished, 90_000);
    expect(idem.status?.phase).toBe('Succeeded');
    expect(stepOf(idem, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 2, mcpServer: 'everything-trusted' });
    expect(toolResultsSent(env.model, runs[1][1], 1)[0]?.content).toContain('Long running operation completed. Duration: 6 seconds, Steps: 3.');
    // Each model turn was asked once: the operator restart repeated no model call that had an answer.
    for (const [, KEY] of runs) expect(env.model.requests(KEY)).toHaveLength(2);
  });

  it('the operator dies after an MCP call started with the answer, before status recorded either: the answer names the call, so it is never made silently again', async () => {
    await createMCPServer('everything', everything.url);
    await createMCPServer('everything-trusted', everything.url, { trustHints: true });
    const slow = { duration: 2, steps: 2 };
    for (const [name, KEY, server, idempotent] of [['mcp-lost-plain', '[mcp-lost-plain]', 'everything', false],
      ['mcp-lost-idem', '[mcp-lost-idem]', 'everything-trusted', true]] as const) {
      env.model.script(KEY, [{ content: [text('Slow op.'), toolUse('trigger-long-running-operation', slow)] }, { content: [text('Finished.')] }]);
      await operator.stop();
      await operator.start({ crashPoint: CrashPoint.afterAnswerCallsStarted });
      try {
        await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: server }, allow: ['trigger-long-running-operation'] }]));
        await eventually('the crash point', () => Promise.resolve(operator.tail().includes(`AGENTRUN_CRASH_POINT ${CrashPoint.afterAnswerCallsStarted} reached`) ? true : undefined), 60_000);
        // Status never recorded the answer or the call: the journal entry is all there is.
        expect((await getRun(env.namespace, name)).status?.steps?.find((st) => st.id === 2)).toBeUndefined();
      } finally {
        await operator.stop(); // (when the crash point was not reached)
        await operator.start({ crashPoint: undefined });
      }
      const run = await waitForRun(env.namespace, name, `${name} to finish`, finished, 90_000);
      expect(run.status?.phase).toBe('Succeeded');
      const [told] = toolResultsSent(env.model, KEY, 1);
      if (idempotent) {
        expect(stepOf(run, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 2 });
      } else {
        expect(stepOf(run, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted', attempt: 1 });
        expect(told?.content).toContain('not called again');
      }
      // The answer was not paid twice.
      expect(env.model.requests(KEY)).toHaveLength(2);
    }
  });

  it('the operator dies after an MCP result is journaled while the answer\'s status still waits in memory: the result is read back, nothing is called again', async () => {
    await createMCPServer('everything', everything.url);
    const KEY = '[mcp-waiting]', name = 'mcp-waiting';
    env.model.script(KEY, [{ content: [text('Echoing.'), toolUse('ev_echo', { message: 'said once' })] }, { content: [text('Done.')] }]);
    await operator.stop();
    await operator.start({ crashPoint: CrashPoint.afterToolJournal });
    try {
      await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: 'everything' }, allow: ['echo'], prefix: 'ev_' }]));
      await eventually('the crash point', () => Promise.resolve(operator.tail().includes(`AGENTRUN_CRASH_POINT ${CrashPoint.afterToolJournal} reached`) ? true : undefined), 60_000);
      // The answer's status waited for the call's (core/execution-plan.ts): status names neither the answer nor the call.
      const steps = (await getRun(env.namespace, name)).status?.steps ?? [];
      expect(steps.find((st) => st.id === 1)?.phase).toBe('Running');
      expect(steps.find((st) => st.id === 2)).toBeUndefined();
    } finally {
      await operator.stop(); // (when the crash point was not reached)
      await operator.start({ crashPoint: undefined });
    }
    const run = await waitForRun(env.namespace, name, `${name} to finish`, finished, 90_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 1, mcpServer: 'everything' });
    expect(toolResultsSent(env.model, KEY, 1)[0]?.content).toBe('Echo: said once');
    expect(env.model.requests(KEY)).toHaveLength(2);
    // The restarted process made no MCP call at all: the result is the journaled one.
    const metrics = parseMetrics((await scrape(metricsPort)).body);
    expect(metricSum(metrics, 'agentrun_mcp_call_duration_seconds_count', { server: `${env.namespace}/everything` })).toBe(0);
  });

  it('the operator dies while status lags its journal by several decisions: every journaled answer and result is read back, none asked for again', async () => {
    await createMCPServer('everything-trusted', everything.url, { trustHints: true });
    const KEY = '[mcp-behind]', name = 'mcp-behind';
    env.model.script(KEY, [{ content: [toolUse('ev_echo', { message: 'one' })] }, { content: [toolUse('ev_echo', { message: 'two' })] },
      { content: [text('Both echoed.')] }]);
    await operator.stop();
    // Statuses written behind their decisions land 2 s late: the second answer is journaled before
    // the status that started its model call is stored.
    await operator.start({ crashPoint: `${CrashPoint.afterModelJournal}@2` as CrashPoint, env: { AGENTRUN_TEST_STATUS_BEHIND_DELAY_MS: '2000' } });
    try {
      await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: 'everything-trusted' }, allow: ['echo'], prefix: 'ev_' }]));
      await eventually('the crash point', () => Promise.resolve(operator.tail().includes(`AGENTRUN_CRASH_POINT ${CrashPoint.afterModelJournal} reached`) ? true : undefined), 60_000);
      // No stored status names step 3, the model step answer 2 is journaled for (the first answer's
      // status may have been written when its call took over 250 ms: then the lag is two decisions).
      const steps = (await getRun(env.namespace, name)).status?.steps ?? [];
      expect(steps.map((st) => st.id)).not.toContain(3);
      expect(env.model.requests(KEY)).toHaveLength(2);
    } finally {
      await operator.stop(); // (when the crash point was not reached)
      await operator.start({ crashPoint: undefined });
    }
    const run = await waitForRun(env.namespace, name, `${name} to finish`, finished, 90_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    // Answers 1 and 2 were journaled before the crash: neither was asked for again.
    expect(env.model.requests(KEY)).toHaveLength(3);
    expect(stepOf(run, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 1 });
    expect(toolResultsSent(env.model, KEY, 1)[0]?.content).toBe('Echo: one');
    // Step 4's call started with answer 2 and was lost with the process: the tool is idempotent
    // (the server's hint, trusted), so it was made again as attempt 2.
    expect(stepOf(run, 4)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 2 });
    expect(toolResultsSent(env.model, KEY, 2)[0]?.content).toBe('Echo: two');
  });

  it('kill the MCP server mid-call: the model is told the connection broke; the MCPServer says it is not ready', async () => {
    const flaky = await startEverythingServer();
    try {
      await createMCPServer('flaky', flaky.url, { refreshInterval: '1h' });
      const KEY = '[mcp-server-kill]', name = 'mcp-server-kill';
      env.model.script(KEY, [{ content: [text('Slow op.'), toolUse('trigger-long-running-operation', { duration: 20, steps: 4 })] }, { content: [text('Gave up.')] }]);
      await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: 'flaky' }, allow: ['trigger-long-running-operation'] }]));
      await waitForStep(name, 2, 'Running');
      await new Promise((r) => setTimeout(r, 1000));
      await flaky.kill();
      const run = await waitForRun(env.namespace, name, 'run to finish', finished, 60_000);
      expect(run.status?.phase).toBe('Succeeded');
      expect(stepOf(run, 2)).toMatchObject({ phase: 'Failed', outcome: 'MCPUnreachable', attempt: 1 });
      const [told] = toolResultsSent(env.model, KEY, 1);
      expect(told?.is_error).toBe(true);
      expect(told?.content).toContain('broke during the call');
      const down = await eventually('flaky not ready', async () => {
        const s = await getMCPServer('flaky');
        const ready = s.status?.conditions?.find((c) => c.type === 'Ready');
        // A list on the session that broke may say ListToolsFailed first; a new session cannot connect.
        return ready?.status === 'False' && ready.reason === 'ConnectFailed' ? ready : undefined;
      }, 45_000);
      expect(down.message).toContain(flaky.url);
    } finally {
      await flaky.stop();
    }
  });

  it('the server restarts mid-run without a tool the run resolved: that call is an error result, the others go on', async () => {
    const server = await startEverythingServer();
    try {
      const ready = await createMCPServer('restarting', server.url, { refreshInterval: '1h' });
      // The list as it was "before": one tool more than the server has now (written as the controller would).
      const before = [...(ready.status?.discoveredTools ?? []), { name: 'retired-tool', description: 'Gone after the restart',
        inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } }];
      await kubectl(['patch', 'mcpserver', 'restarting', '-n', env.namespace, '--subresource=status', '--type=merge',
        '-p', JSON.stringify({ status: { discoveredTools: before, toolCount: before.length } })]);
      const KEY = '[mcp-restart]', name = 'mcp-restart';
      env.model.script(KEY, [
        { content: [text('First echo.'), toolUse('echo', { message: 'before' })] },
        { content: [text('Retired tool.'), toolUse('retired-tool', {})], latencyMs: 6000 },
        { content: [text('Echo again.'), toolUse('echo', { message: 'after' })] },
        { content: [text('All done.')] },
      ]);
      await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: 'restarting' }, allow: ['echo', 'retired-tool'] }]));
      await env.model.waitForRequest(KEY, 2, { timeoutMs: 60_000 });
      await server.restart();
      // The controller noticed the restart and listed the tools again: the new list has no retired-tool.
      await eventually('relisted without retired-tool', async () => {
        const s = await getMCPServer('restarting');
        const names = s.status?.discoveredTools?.map((t) => t.name) ?? [];
        return names.includes('echo') && !names.includes('retired-tool') ? names : undefined;
      }, 30_000);

      const run = await waitForRun(env.namespace, name, 'run to finish', finished, 90_000);
      expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
      expect(run.status?.steps?.map((s) => `${s.kind}:${s.tool ?? ''}:${s.outcome ?? ''}`)).toEqual([
        'Model::Completed', 'Tool:echo:Completed', 'Model::Completed', 'Tool:retired-tool:ToolUnavailable',
        'Model::Completed', 'Tool:echo:Completed', 'Model::Completed']);
      const [gone] = toolResultsSent(env.model, KEY, 2);
      expect(gone?.is_error).toBe(true);
      expect(gone?.content).toContain('no longer offers the tool retired-tool');
      expect(toolResultsSent(env.model, KEY, 3)[0]?.content).toBe('Echo: after');
      expect(toolResultsSent(env.model, KEY, 1)[0]?.content).toBe('Echo: before');
    } finally {
      await server.stop();
    }
  });

  it('a run whose creator may not use the MCPServer fails AccessDenied before any model or MCP call', async () => {
    await createMCPServer('everything', everything.url);
    const user = `${env.namespace}-mcp-denied`;
    // May create runs and use model endpoints, but was never granted use on mcpservers.
    await kubectl(['create', 'role', 'mcp-run-creator', '-n', env.namespace, '--verb=get,list,watch,create', '--resource=agentruns.agentrun.dev']);
    // kubectl create role does not know the verb use: applied as YAML.
    await kubectl(['apply', '-n', env.namespace, '-f', '-'], { input: JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role',
      metadata: { name: 'mcp-endpoint-user' }, rules: [{ apiGroups: ['agentrun.dev'], resources: ['modelendpoints'], verbs: ['use'] }] }) });
    for (const role of ['mcp-run-creator', 'mcp-endpoint-user']) await kubectl(['create', 'rolebinding', role, '-n', env.namespace, `--role=${role}`, `--user=${user}`]);
    const KEY = '[mcp-denied]', name = 'mcp-denied';
    env.model.script(KEY, [{ content: [text('Never asked.')] }]);
    const manifest = { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name },
      spec: await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: 'everything' }, allow: ['echo'] }]) };
    await kubectl(['create', '-n', env.namespace, '-f', '-'], { kubeconfig: await userKubeconfig(cluster(), user), input: JSON.stringify(manifest) });
    const run = await waitForRun(env.namespace, name, 'run to fail', finished, 30_000);
    expect(run.status?.phase).toBe('Failed');
    expect(run.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason).toBe('AccessDenied');
    expect(run.status?.message).toContain('use mcpservers.agentrun.dev/everything (for tools[ev].mcpServerRef)');
    expect(env.model.requests(KEY)).toEqual([]);
  });
});
