/**
 * Every documented way a tool step can go wrong, end to end: the step's phase, outcome and
 * attempt in status, the tool_result the model receives in its next request, the pods created
 * and the real executions of the tool. Each run recovers and succeeds, since the model gets a
 * tool_result it can act on. Runs proceed concurrently; the node-failure scenario has its own
 * namespace, node and operator because it kills its node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { createRun, finished, recordingTool, runEvents, startAgentEnv, waitForRun, type AgentEnv, endpointFor } from '../harness/agent-env.ts';
import { clients, eventually, readJournal } from '../harness/kube.ts';
import { toolUse, type MockModelServer } from '../harness/mock-model-server.ts';
import { FINAL_ANSWER, oneToolCall } from '../harness/model-scenarios.ts';
import { losableNode, podsWithRunningContainers } from '../harness/test-node.ts';
import {
  PodHistory, executionsOf, gated, openGate, scenarioFiles, startToolRenamingProxy, stepOf, toolResultsSent,
  waitForExecutions, type ReceivedToolResult,
} from '../harness/tool-scenarios.ts';

let env: AgentEnv;
let history: PodHistory;
beforeAll(async () => {
  env = await startAgentEnv('toolfail');
  history = await PodHistory.watch(env.namespace);
});
afterAll(async () => {
  history.stop();
  await env.close();
});

async function runSpec(key: string, baseURL: string, tools: readonly Record<string, unknown>[], extra: Record<string, unknown> = {}, namespace = env.namespace): Promise<Record<string, unknown>> {
  return { model: { name: 'claude-test', endpointRef: { name: await endpointFor(namespace, baseURL) } }, prompt: `${key} do the task`, tools, ...extra };
}

/** Waits until the run is finished and asserts it recovered: model → tool → model, Succeeded. */
async function succeededAfterTool(namespace: string, name: string, timeoutMs = 60_000): Promise<AgentRun> {
  const run = await waitForRun(namespace, name, `run ${name} to finish`, finished, timeoutMs);
  expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
  expect(run.status?.result).toBe(FINAL_ANSWER);
  expect(run.status?.steps?.map((s) => `${s.id}:${s.kind}`)).toEqual(['1:Model', '2:Tool', '3:Model']);
  return run;
}

/** The single tool_result the model received in its second call. */
function onlyResult(model: MockModelServer, key: string, run: AgentRun): ReceivedToolResult {
  const results = toolResultsSent(model, key, 1);
  expect(results).toHaveLength(1);
  const [result] = results;
  if (!result) throw new Error('no tool_result');
  expect(result.tool_use_id).toBe(stepOf(run, 2).toolUseId);
  return result;
}

/** Pods created for a run's step 2, once per creation. */
function podsOfStep2(name: string): string[] {
  return env.pods.names().filter((n) => n.startsWith(`${name}-s2-`));
}

describe.concurrent('tool failures', () => {
  it('a tool exiting 1 fails the step (ToolError); the model gets the exit code and output as an error; the run goes on', async () => {
    const ns = env.namespace, name = 'exit-one', KEY = '[tf-exit-one]';
    const files = await scenarioFiles(ns, name);
    oneToolCall(KEY, env.model, toolUse('compile', { file: 'main.c' }));
    await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'compile', description: 'Compile a file',
      container: recordingTool(files.execLog, 'echo "compiling main.c"; echo "main.c:3: error: expected ;" >&2; exit 1'),
    }]));

    const run = await succeededAfterTool(ns, name);
    expect(stepOf(run, 2)).toMatchObject({
      kind: 'Tool', tool: 'compile', phase: 'Failed', outcome: 'ToolError', attempt: 1, podName: `${name}-s2-a1`, message: 'exit code 1',
    });
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBe(true);
    expect(result.content).toContain('exited with code 1');
    expect(result.content).toContain('compiling main.c');
    expect(result.content).toContain('main.c:3: error: expected ;');
    expect(podsOfStep2(name)).toEqual([`${name}-s2-a1`]);
    expect(await executionsOf(files.execLog)).toHaveLength(1);
    const events = await runEvents(ns, name);
    expect(events.find((e) => e.reason === 'ToolFailed')?.message).toContain('ToolError with exit code 1');
  });

  it('a tool_use naming a tool the run does not have gets an UnknownTool error listing the tools; no pod', async () => {
    const ns = env.namespace, name = 'unknown-tool', KEY = '[tf-unknown-tool]';
    // The mock only scripts calls of defined tools; this proxy renames the call in the response.
    const proxy = await startToolRenamingProxy(env.model.url, { toolu_hallucinated_1: 'web_search' });
    try {
      oneToolCall(KEY, env.model, toolUse('lookup', { q: 'kubernetes' }, 'toolu_hallucinated_1'));
      await createRun(ns, name, await runSpec(KEY, proxy.url, [
        { name: 'lookup', description: 'Look something up', container: recordingTool(env.execLog) },
        { name: 'shout', description: 'Upper-case a word', container: recordingTool(env.execLog) },
      ]));

      const run = await succeededAfterTool(ns, name);
      const step = stepOf(run, 2);
      expect(step).toMatchObject({ kind: 'Tool', tool: 'web_search', phase: 'Failed', outcome: 'UnknownTool', attempt: 1 });
      expect(step.podName).toBeUndefined();
      const result = onlyResult(env.model, KEY, run);
      expect(result.is_error).toBe(true);
      expect(result.content).toContain('no tool named "web_search"');
      expect(result.content).toContain('Available tools: lookup, shout');
      expect(podsOfStep2(name)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('input that fails the inputSchema gets an InvalidInput error with the validation message; no pod', async () => {
    const ns = env.namespace, name = 'bad-input', KEY = '[tf-bad-input]';
    const files = await scenarioFiles(ns, name);
    oneToolCall(KEY, env.model, toolUse('lookup', { query: 42 }));
    await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'lookup', description: 'Look something up',
      inputSchema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'], additionalProperties: false },
      container: recordingTool(files.execLog),
    }]));

    const run = await succeededAfterTool(ns, name);
    const step = stepOf(run, 2);
    expect(step).toMatchObject({ tool: 'lookup', phase: 'Failed', outcome: 'InvalidInput', attempt: 1 });
    expect(step.podName).toBeUndefined();
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBe(true);
    expect(result.content).toContain('does not match the tool\'s inputSchema');
    expect(result.content).toContain('must have required property \'q\'');
    expect(result.content).toContain('must NOT have additional properties');
    expect(podsOfStep2(name)).toEqual([]);
    expect(await executionsOf(files.execLog)).toEqual([]);
  });

  it('a tool running past its timeout is stopped by activeDeadlineSeconds (TimedOut)', async () => {
    const ns = env.namespace, name = 'too-slow', KEY = '[tf-too-slow]';
    const files = await scenarioFiles(ns, name);
    oneToolCall(KEY, env.model, toolUse('crunch', {}));
    await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'crunch', description: 'Crunch numbers', timeout: '2s',
      container: recordingTool(files.execLog, 'echo "crunching"; sleep 300'),
    }]));

    const run = await succeededAfterTool(ns, name);
    expect(stepOf(run, 2)).toMatchObject({ tool: 'crunch', phase: 'Failed', outcome: 'TimedOut', attempt: 1, podName: `${name}-s2-a1` });
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBe(true);
    expect(result.content).toContain('did not finish within its timeout (2s)');
    expect(result.content).toContain('crunching');
    // The kubelet stopped it: the deadline was on the pod and its container is gone.
    const pod = history.last(`${name}-s2-a1`);
    expect(pod?.spec?.activeDeadlineSeconds).toBe(2);
    expect(history.all(`${name}-s2-a1`).some((p) => p.status?.reason === 'DeadlineExceeded')).toBe(true);
    expect((await podsWithRunningContainers(env.emulator, ns)).filter((p) => p.startsWith(name))).toEqual([]);
    expect(podsOfStep2(name)).toEqual([`${name}-s2-a1`]);
    expect(await executionsOf(files.execLog)).toHaveLength(1);
  });

  it('10 MB of output is truncated to limits.maxToolOutputBytes, the model is told, the journal stays small', async () => {
    const ns = env.namespace, name = 'firehose', KEY = '[tf-firehose]';
    const files = await scenarioFiles(ns, name);
    oneToolCall(KEY, env.model, toolUse('dump', {}));
    await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'dump', description: 'Dump everything',
      container: recordingTool(files.execLog, "head -c 10485760 /dev/zero | tr '\\0' x"),
    }], { limits: { maxToolOutputBytes: 4096 } }));

    const run = await succeededAfterTool(ns, name);
    const step = stepOf(run, 2);
    expect(step).toMatchObject({ tool: 'dump', phase: 'Succeeded', outcome: 'Completed', attempt: 1, message: 'exit code 0, output truncated' });
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBeUndefined();
    expect(result.content).toBe(`${'x'.repeat(4096)}\n[output truncated to the first 4096 bytes]`);
    const entry = (await readJournal(ns, step.journal?.name ?? '')).spec.entry;
    expect(entry.length).toBeGreaterThan(4096);
    expect(entry.length).toBeLessThan(8192);
    expect(JSON.stringify(run.status).length).toBeLessThan(16_384);
    expect(await executionsOf(files.execLog)).toHaveLength(1);
  });

  it('a non-idempotent tool whose pod is deleted mid-run is not re-run (PodLost)', async () => {
    const ns = env.namespace, name = 'deleted-once', KEY = '[tf-deleted-once]';
    const files = await scenarioFiles(ns, name);
    oneToolCall(KEY, env.model, toolUse('charge', { amount: 5 }));
    await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'charge', description: 'Charge a card',
      container: recordingTool(files.execLog, gated(files.gate, 'echo charged')),
    }]));

    await waitForToolRunning(files.execLog, `${name}-s2-a1`);
    await clients().core.deleteNamespacedPod({ namespace: ns, name: `${name}-s2-a1` });

    const run = await succeededAfterTool(ns, name);
    expect(stepOf(run, 2)).toMatchObject({ tool: 'charge', phase: 'Failed', outcome: 'PodLost', attempt: 1 });
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBe(true);
    expect(result.content).toContain('not idempotent');
    expect(result.content).toContain('not run again');
    expect(podsOfStep2(name)).toEqual([`${name}-s2-a1`]);
    expect(await executionsOf(files.execLog)).toHaveLength(1);
  });

  it('an idempotent tool whose pod is deleted mid-run runs again as attempt 2 with the same idempotency key', async () => {
    const ns = env.namespace, name = 'deleted-idem', KEY = '[tf-deleted-idem]';
    const files = await scenarioFiles(ns, name);
    oneToolCall(KEY, env.model, toolUse('fetch', { url: 'https://example.com' }));
    const created = await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'fetch', description: 'Fetch a page', idempotent: true,
      container: recordingTool(files.execLog, gated(files.gate, 'echo "fetched on attempt $AGENTRUN_ATTEMPT"')),
    }]));

    await waitForToolRunning(files.execLog, `${name}-s2-a1`);
    await clients().core.deleteNamespacedPod({ namespace: ns, name: `${name}-s2-a1` });
    // Attempt 2 started (a new pod, a new execution); only now may the tool finish.
    await waitForExecutions(files.execLog, 2);
    await openGate(files.gate);

    const run = await succeededAfterTool(ns, name);
    // On failure, say why each retry happened (the pod's reason is in the ToolRetrying Event).
    const retries = (await runEvents(ns, name)).filter((e) => e.reason === 'ToolRetrying').map((e) => e.message).join('\n');
    expect(stepOf(run, 2), retries).toMatchObject({ tool: 'fetch', phase: 'Succeeded', outcome: 'Completed', attempt: 2, podName: `${name}-s2-a2` });
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBeUndefined();
    expect(result.content.trim()).toBe('fetched on attempt 2');
    expect(podsOfStep2(name)).toEqual([`${name}-s2-a1`, `${name}-s2-a2`]);
    const key = `${created.metadata.uid ?? ''}/2`;
    expect(await executionsOf(files.execLog)).toEqual([`${key} 1`, `${key} 2`]);
    expect((await runEvents(ns, name)).map((e) => e.reason)).toContain('ToolRetrying');
  });

  it('a pod that can never start is retried `retries` times, then RetriesExhausted', async () => {
    const ns = env.namespace, name = 'no-command', KEY = '[tf-no-command]';
    oneToolCall(KEY, env.model, toolUse('broken', {}));
    // The command does not exist in the image: the runtime (or the emulator) cannot start it (StartError).
    await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'broken', description: 'Never starts', retries: 1, container: { image: 'busybox:1.36', command: ['/no/such/tool'] },
    }]));

    const run = await succeededAfterTool(ns, name);
    expect(stepOf(run, 2)).toMatchObject({ tool: 'broken', phase: 'Failed', outcome: 'RetriesExhausted', attempt: 2, podName: `${name}-s2-a2` });
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBe(true);
    expect(result.content).toContain('StartError');
    expect(result.content).toContain('/no/such/tool');
    expect(result.content).toContain('on each of 2 attempts');
    expect(podsOfStep2(name)).toEqual([`${name}-s2-a1`, `${name}-s2-a2`]);
    const reasons = (await runEvents(ns, name)).map((e) => e.reason);
    expect(reasons.filter((r) => r === 'ToolRetrying')).toHaveLength(1);
  });

  it('every tool pod has the secure defaults, and the tool gets its input verbatim in $AGENTRUN_INPUT and $AGENTRUN_INPUT_FILE', async () => {
    const ns = env.namespace, name = 'secure-pod', KEY = '[tf-secure-pod]';
    const files = await scenarioFiles(ns, name);
    // `$(VAR)` and `$$` are what Kubernetes expands in env values: the input must reach the tool unchanged.
    const input = { text: 'héllo "world"\nsecond line', price: 'costs $$5', ref: '$(SECRET_TOKEN) and $(AGENTRUN_RUN)', n: 3, nested: { ok: true } };
    oneToolCall(KEY, env.model, toolUse('inspect', input));
    const created = await createRun(ns, name, await runSpec(KEY, env.model.url, [{
      name: 'inspect', description: 'Inspect the input', timeout: '45s',
      container: {
        ...recordingTool(files.execLog, 'printf "%s\\n" "$AGENTRUN_INPUT"; cat "$AGENTRUN_INPUT_FILE"; printf "\\n%s\\n" "$AGENTRUN_IDEMPOTENCY_KEY"'),
        env: [{ name: 'SECRET_TOKEN', value: 's3cr3t' }],
      },
    }]));
    const uid = created.metadata.uid ?? '';

    const run = await succeededAfterTool(ns, name);
    expect(stepOf(run, 2)).toMatchObject({ tool: 'inspect', phase: 'Succeeded', outcome: 'Completed', attempt: 1 });
    const json = JSON.stringify(input);
    const result = onlyResult(env.model, KEY, run);
    expect(result.is_error).toBeUndefined();
    const [fromEnv, fromFile, idempotencyKey] = result.content.split('\n');
    expect(fromFile).toBe(json);
    expect(fromEnv).toBe(json);
    expect(idempotencyKey).toBe(`${uid}/2`);

    const pod = history.all(`${name}-s2-a1`)[0];
    expect(pod?.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'agentrun-operator', 'app.kubernetes.io/component': 'tool',
      'agentrun.dev/run': name, 'agentrun.dev/step': '2', 'agentrun.dev/attempt': '1',
    });
    expect(pod?.metadata?.ownerReferences).toEqual([
      { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', name, uid, controller: true, blockOwnerDeletion: true },
    ]);
    const spec = pod?.spec;
    expect(spec?.automountServiceAccountToken).toBe(false);
    expect(spec?.restartPolicy).toBe('Never');
    expect(spec?.activeDeadlineSeconds).toBe(45);
    expect(spec?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    // No service-account token volume was injected by admission.
    expect(JSON.stringify(spec?.volumes ?? [])).not.toContain('serviceAccountToken');
    const container = spec?.containers[0];
    expect(container?.securityContext).toMatchObject({
      runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] },
    });
    expect(container?.resources?.limits).toMatchObject({ cpu: '500m', memory: '256Mi' });
    const envOf = (n: string) => container?.env?.find((e) => e.name === n)?.value;
    expect(envOf('AGENTRUN_INPUT_FILE')).toBe('/agentrun/input/input.json');
    expect(envOf('AGENTRUN_IDEMPOTENCY_KEY')).toBe(`${uid}/2`);
    expect(container?.volumeMounts?.find((m) => m.mountPath === '/agentrun/input')?.readOnly).toBe(true);
  });

  it('a lost node: a non-idempotent tool ends PodLost, an idempotent one runs again on a new node', async () => {
    // Its own namespace, node and operator: the node failure would stop the other scenarios' pods.
    // With the emulator the node is simulated dead; on real nodes a node of its own (kubelet +
    // containerd) is stopped whole, the node lifecycle controller marks it unreachable and the
    // taint eviction controller evicts its pods (test-node.ts losableNode).
    const own = await startAgentEnv('toolnode');
    const ns = own.namespace;
    const pods = await PodHistory.watch(ns);
    const node = await losableNode(ns, own.emulator);
    try {
      const lost = { name: 'node-lost-once', KEY: '[tf-node-lost-once]', files: await scenarioFiles(ns, 'node-lost-once') };
      const idem = { name: 'node-lost-idem', KEY: '[tf-node-lost-idem]', files: await scenarioFiles(ns, 'node-lost-idem') };
      oneToolCall(lost.KEY, own.model, toolUse('send_email', { to: 'ops@example.com' }));
      oneToolCall(idem.KEY, own.model, toolUse('read_page', { page: 1 }));
      const pinned = { toolPodDefaults: node.toolPodDefaults };
      await createRun(ns, lost.name, await runSpec(lost.KEY, own.model.url, [{
        name: 'send_email', description: 'Send an email',
        container: recordingTool(lost.files.execLog, gated(lost.files.gate, 'echo sent')),
      }], pinned, ns));
      const idemRun = await createRun(ns, idem.name, await runSpec(idem.KEY, own.model.url, [{
        name: 'read_page', description: 'Read a page', idempotent: true,
        container: recordingTool(idem.files.execLog, gated(idem.files.gate, 'echo "read on $HOSTNAME"')),
      }], pinned, ns));
      await Promise.all([
        waitForToolRunning(lost.files.execLog, `${lost.name}-s2-a1`, pods),
        waitForToolRunning(idem.files.execLog, `${idem.name}-s2-a1`, pods),
      ]);

      await node.lose();

      const lostRun = await succeededAfterTool(ns, lost.name, 100_000);
      expect(stepOf(lostRun, 2)).toMatchObject({ tool: 'send_email', phase: 'Failed', outcome: 'PodLost', attempt: 1 });
      const lostResult = onlyResult(own.model, lost.KEY, lostRun);
      expect(lostResult.is_error).toBe(true);
      expect(lostResult.content).toContain('node was lost');
      expect(lostResult.content).toContain('not run again');
      expect(await executionsOf(lost.files.execLog)).toHaveLength(1);
      const deadNode = await clients().core.readNode({ name: node.name });
      expect(deadNode.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).toContain('node.kubernetes.io/unreachable:NoExecute');
      // Only this scenario's pods were on it: the other scenarios' pods never tolerated its taint.
      if (node.group) expect(deadNode.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).toContain('agentrun.dev/test-pool:NoSchedule');

      // Attempt 2 of the idempotent call waits for a node; a new one comes up and runs it.
      const a2 = `${idem.name}-s2-a2`;
      await eventually(`pod ${a2} to be created`, () => Promise.resolve(pods.last(a2)), 60_000);
      await openGate(idem.files.gate);
      const replacement = await node.replace();

      const idemDone = await succeededAfterTool(ns, idem.name);
      expect(stepOf(idemDone, 2)).toMatchObject({ tool: 'read_page', phase: 'Succeeded', outcome: 'Completed', attempt: 2, podName: a2 });
      expect(onlyResult(own.model, idem.KEY, idemDone).content.trim()).toBe(`read on ${a2}`);
      expect(pods.all(`${idem.name}-s2-a1`).find((p) => p.spec?.nodeName)?.spec?.nodeName).toBe(node.name);
      expect(pods.all(a2).find((p) => p.spec?.nodeName)?.spec?.nodeName).toBe(replacement);
      const key = `${idemRun.metadata.uid ?? ''}/2`;
      expect(await executionsOf(idem.files.execLog)).toEqual([`${key} 1`, `${key} 2`]);
      expect(own.pods.names().filter((n) => n.startsWith(`${lost.name}-s2-`))).toEqual([`${lost.name}-s2-a1`]);
      expect(own.pods.names().filter((n) => n.startsWith(`${idem.name}-s2-`))).toEqual([`${idem.name}-s2-a1`, a2]);
    } finally {
      pods.stop();
      await own.close();
      await node.close();
    }
  }, 240_000);
});

/** The tool process started (it logged its execution) and its pod reports Running. */
async function waitForToolRunning(execLog: string, pod: string, pods: PodHistory = history): Promise<void> {
  await waitForExecutions(execLog, 1);
  await eventually(`pod ${pod} to be Running`, () => Promise.resolve(pods.last(pod)?.status?.phase === 'Running' ? true : undefined));
}
