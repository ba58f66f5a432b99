/**
 * Durable MCP Tasks end to end, against the real `@modelcontextprotocol/server-everything`
 * (its `simulate-research-query` requires tasks and runs ~4 s created → working → completed),
 * reached through a counting HTTP pass-through so the test sees every JSON-RPC request the
 * server got. The operator is SIGKILLed while the task works: the restarted operator polls the
 * journaled task again (tasks/get from the new process) and the model gets the task's real
 * result with exactly one tools/call at the server. A server restarted mid-task loses the task:
 * an interruption (reported, or a new task for an idempotent tool). The happy path and a task
 * past its timeout (cancelled with tasks/cancel) complete without a crash. (server-everything
 * asks for input only from clients that advertise elicitation, which the operator does not.)
 */
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { createRun, finished, startAgentEnv, waitForRun, type AgentEnv, endpointFor } from '../harness/agent-env.ts';
import { cluster, eventually, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { startEverythingServer, type EverythingServer } from '../harness/mcp-server.ts';
import { stepOf, toolResultsSent } from '../harness/tool-scenarios.ts';
import { freePort } from '../harness/control-plane.ts';
import { OperatorProcess } from '../harness/operator-process.ts';

/** One JSON-RPC request the server received: its method, the tool (tools/call) or task id, and when. */
interface Seen { readonly method: string; readonly topic?: string; readonly at: number }

/** A pass-through in front of the real server that records each JSON-RPC request (bytes forwarded unchanged). */
async function countingProxy(target: string): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { chunks.push(c); });
    req.once('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST') {
        try {
          const msg = JSON.parse(body.toString('utf8')) as { method?: string; params?: { arguments?: { topic?: unknown } } };
          const topic = msg.params?.arguments?.topic;
          if (msg.method) seen.push({ method: msg.method, ...(typeof topic === 'string' ? { topic } : {}), at: Date.now() });
        } catch { /* not JSON: forwarded as is */ }
      }
      const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      out.once('error', (e) => { res.destroy(e); });
      res.once('close', () => { out.destroy(); });
      out.end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => { server.listen(port, '127.0.0.1', resolve); });
  return { url: `http://127.0.0.1:${port}/mcp`, seen,
    close: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => { server.close(() => { resolve(); }); }); } };
}

let env: AgentEnv;
let everything: EverythingServer;
let proxy: Awaited<ReturnType<typeof countingProxy>>;
let operator: OperatorProcess;
beforeAll(async () => {
  everything = await startEverythingServer();
  proxy = await countingProxy(everything.url);
  env = await startAgentEnv('mcp-tasks', { startOperator: false });
  operator = new OperatorProcess({ kubeconfig: cluster().kubeconfig, namespaces: [env.namespace] });
  await operator.start();
});
afterAll(async () => {
  await operator.stop();
  await env.close();
  await proxy.close();
  await everything.stop();
});

async function createMCPServer(name: string, url: string, spec: Record<string, unknown> = {}): Promise<void> {
  await kubectl(['apply', '-n', env.namespace, '-f', '-'], { input: JSON.stringify({
    apiVersion: 'agentrun.dev/v1alpha1', kind: 'MCPServer', metadata: { name }, spec: { url, ...spec },
  }) });
  await eventually(`MCPServer ${name} Ready`, async () => {
    const out = await kubectl(['get', 'mcpserver', name, '-n', env.namespace, '-o', 'json']);
    const s = JSON.parse(out.stdout) as { status?: { conditions?: { type: string; status: string }[]; discoveredTools?: { name: string; taskSupport?: string }[] } };
    const ready = s.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    return ready ? s.status?.discoveredTools : undefined;
  }, 60_000);
}

async function runSpec(key: string, server: string): Promise<Record<string, unknown>> {
  return { model: { name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, env.model.url) } }, prompt: `${key} research it`,
    tools: [{ name: 'ev', mcpServerRef: { name: server }, allow: ['simulate-research-query'] }] };
}

/** Starts a run whose model asks for one research task on `topic`. */
async function researchRun(name: string, server: string, input: Record<string, unknown>): Promise<string> {
  const KEY = `[${name}]`;
  env.model.script(KEY, [{ content: [text('Researching.'), toolUse('simulate-research-query', input)] }, { content: [text('Done.')] }]);
  await createRun(env.namespace, name, await runSpec(KEY, server));
  return KEY;
}

/** The run once step 2's task handle is journaled (status points at its MCPTask entry). */
async function waitForJournaledTask(name: string): Promise<AgentRun> {
  return await waitForRun(env.namespace, name, `${name}: the task handle journaled`, (r) => {
    const step = r.status?.steps?.find((s) => s.id === 2);
    return step?.phase === 'Running' && step.mcpTask !== undefined;
  }, 60_000);
}

const calls = (topic: string) => proxy.seen.filter((s) => s.method === 'tools/call' && s.topic === topic);

describe('durable MCP Tasks (real server-everything)', () => {
  it('a tool that requires tasks completes as a task; one past its timeout is cancelled', async () => {
    await createMCPServer('everything', proxy.url);
    await createMCPServer('everything-short', proxy.url, { timeouts: { call: '2s' } });
    const happy = await researchRun('task-happy', 'everything', { topic: 'happy tides' });
    const slow = await researchRun('task-timeout', 'everything-short', { topic: 'slow tides' });

    const run = await waitForRun(env.namespace, 'task-happy', 'happy run to finish', finished, 60_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 1, mcpServer: 'everything' });
    expect(stepOf(run, 2).mcpTask?.name).toBe('task-happy-j2-t1');
    const [told] = toolResultsSent(env.model, happy, 1);
    expect(told?.is_error).toBeUndefined();
    expect(told?.content).toContain('# Research Report: happy tides');
    expect(calls('happy tides')).toHaveLength(1);
    // The handle is an AgentRunJournal entry of its own, written by the operator.
    const entry = JSON.parse((await kubectl(['get', 'agentrunjournal', 'task-happy-j2-t1', '-n', env.namespace, '-o', 'jsonpath={.spec.entry}'])).stdout) as
      { kind: string; attempt: number; handle: { taskId: string; sessionId?: string } };
    expect(entry).toMatchObject({ kind: 'MCPTask', attempt: 1 });
    expect(entry.handle.sessionId).toBeTruthy();

    const timedOut = await waitForRun(env.namespace, 'task-timeout', 'timeout run to finish', finished, 60_000);
    expect(stepOf(timedOut, 2)).toMatchObject({ phase: 'Failed', outcome: 'TimedOut' });
    expect(toolResultsSent(env.model, slow, 1)[0]?.content).toContain('did not finish within its timeout (2s)');
    expect(proxy.seen.filter((s) => s.method === 'tasks/cancel')).toHaveLength(1);
  });

  it('kill the operator while the task works: the restarted operator polls the same task, the model gets its result, one tools/call', async () => {
    await createMCPServer('everything', proxy.url);
    const KEY = await researchRun('task-crash', 'everything', { topic: 'crash tides' });
    await waitForJournaledTask('task-crash');
    const killedAt = await operator.kill();
    expect(calls('crash tides')).toHaveLength(1);
    await operator.start();

    const run = await waitForRun(env.namespace, 'task-crash', 'run to finish', finished, 90_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 1 });
    const [told] = toolResultsSent(env.model, KEY, 1);
    expect(told?.is_error).toBeUndefined();
    expect(told?.content).toContain('# Research Report: crash tides');
    // Polled, not re-issued: the server got exactly one tools/call, and tasks/get from the new process.
    expect(calls('crash tides')).toHaveLength(1);
    expect(proxy.seen.filter((s) => s.method === 'tasks/get' && s.at > killedAt).length).toBeGreaterThanOrEqual(1);
    expect(env.model.requests(KEY)).toHaveLength(2);
    const events = (await kubectl(['get', 'events', '-n', env.namespace, '--field-selector', 'involvedObject.name=task-crash', '-o', 'json'])).stdout;
    expect(events).toContain('MCPTaskResumed');
  });

  it('the server restarts mid-task (the task is lost): reported Interrupted, or a new task for an idempotent tool', async () => {
    const server = await startEverythingServer();
    const front = await countingProxy(server.url);
    try {
      await createMCPServer('restarting', front.url, { refreshInterval: '1h' });
      await createMCPServer('restarting-idem', front.url, { refreshInterval: '1h', tools: [{ name: 'simulate-research-query', idempotent: true }] });
      const plain = await researchRun('task-lost', 'restarting', { topic: 'lost tides' });
      const idem = await researchRun('task-lost-idem', 'restarting-idem', { topic: 'retried tides' });
      await waitForJournaledTask('task-lost');
      await waitForJournaledTask('task-lost-idem');
      await server.restart();

      const lost = await waitForRun(env.namespace, 'task-lost', 'plain run to finish', finished, 90_000);
      expect(stepOf(lost, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted', attempt: 1 });
      const [told] = toolResultsSent(env.model, plain, 1);
      expect(told?.is_error).toBe(true);
      expect(told?.content).toContain('no longer knows the task');
      expect(front.seen.filter((s) => s.method === 'tools/call' && s.topic === 'lost tides')).toHaveLength(1);

      const again = await waitForRun(env.namespace, 'task-lost-idem', 'idempotent run to finish', finished, 90_000);
      expect(stepOf(again, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 2 });
      expect(stepOf(again, 2).mcpTask?.name).toBe('task-lost-idem-j2-t2');
      expect(toolResultsSent(env.model, idem, 1)[0]?.content).toContain('# Research Report: retried tides');
      expect(front.seen.filter((s) => s.method === 'tools/call' && s.topic === 'retried tides')).toHaveLength(2);
    } finally {
      await front.close();
      await server.stop();
    }
  });
});
