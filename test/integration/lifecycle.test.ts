/**
 * Run lifecycle against the real apiserver: cancel, suspend and resume, deletion mid-run (the
 * finalizer stops tool pods), and TTL cleanup (the run and everything it owns go away).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostScratchDir } from '../harness/control-plane.ts';
import { clients, eventually, kubectl, listJournals, statusCode } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { podsWithRunningContainers, waitForFileSnippet } from '../harness/test-node.ts';
import { createRun, finished, getRun, livePods, patchRunSpec, recordingTool, runEvents, startAgentEnv, waitForRun, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';

let env: AgentEnv;
let gates = '';
beforeAll(async () => {
  env = await startAgentEnv('lifecycle');
  gates = hostScratchDir('test-gates', env.namespace);
  await mkdir(gates, { recursive: true });
});
afterAll(async () => { await env.close(); });

/** A run whose only tool blocks until `gate` exists, then the model answers. */
async function gatedRun(name: string, extraSpec: Record<string, unknown> = {}): Promise<{ key: string; gate: string }> {
  const key = `[lifecycle-${name}]`;
  const gate = join(gates, name);
  env.model.script(key, [
    { content: [toolUse('wait', { for: 'gate' })] },
    { content: [text(`${name} done`)] },
  ]);
  await createRun(env.namespace, name, {
    model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
    prompt: `${key} wait for the gate`,
    tools: [{ name: 'wait', description: 'Waits', container: recordingTool(env.execLog, `${waitForFileSnippet(gate)}; echo opened`) }],
    ...extraSpec,
  });
  return { key, gate };
}

const podOf = (name: string) => async () => ((await livePods(env.namespace)).some((p) => p.startsWith(`${name}-`)) ? true : undefined);
const noPodOf = (name: string) => async () => ((await livePods(env.namespace)).some((p) => p.startsWith(`${name}-`)) ? undefined : true);

describe('run lifecycle', () => {
  it('cancel stops the tool pod and ends the run Cancelled', async () => {
    const { key } = await gatedRun('cancel-me');
    await eventually('the tool pod', podOf('cancel-me'));
    await patchRunSpec(env.namespace, 'cancel-me', { cancel: true });
    const run = await waitForRun(env.namespace, 'cancel-me', 'Cancelled', (r) => r.status?.phase === 'Cancelled');
    expect(run.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'Cancelled' });
    expect(run.status?.steps?.find((s) => s.kind === 'Tool')).toMatchObject({ phase: 'Failed', outcome: 'Cancelled' });
    await eventually('the tool pod to be deleted', noPodOf('cancel-me'));
    expect(env.model.requests(key)).toHaveLength(1);
    expect((await runEvents(env.namespace, 'cancel-me')).map((e) => e.reason)).toContain('Cancelled');
  });

  it('suspend lets the step in flight finish, starts nothing new, and resumes', async () => {
    const { key, gate } = await gatedRun('suspend-me');
    await eventually('the tool pod', podOf('suspend-me'));
    await patchRunSpec(env.namespace, 'suspend-me', { suspend: true });
    await writeFile(gate, '');
    const suspended = await waitForRun(env.namespace, 'suspend-me', 'Suspended', (r) => r.status?.phase === 'Suspended');
    expect(suspended.status?.waitingFor).toBe('spec.suspend=false');
    expect(suspended.status?.steps?.find((s) => s.kind === 'Tool')?.phase).toBe('Succeeded');
    expect(env.model.requests(key)).toHaveLength(1);
    const { stdout } = await kubectl(['get', 'agentrun', 'suspend-me', '-n', env.namespace, '--no-headers']);
    expect(stdout).toMatch(/Suspended/);

    await patchRunSpec(env.namespace, 'suspend-me', { suspend: false });
    const run = await waitForRun(env.namespace, 'suspend-me', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.result).toBe('suspend-me done');
    expect(env.model.requests(key)).toHaveLength(2);
  });

  it('deleting a run mid-step stops its tool pod, then lets it go', async () => {
    await gatedRun('delete-me');
    await eventually('the tool pod', podOf('delete-me'));
    const before = await getRun(env.namespace, 'delete-me');
    expect(before.metadata.finalizers).toContain('agentrun.dev/cleanup');
    const running = () => podsWithRunningContainers(env.emulator, env.namespace).then((pods) => pods.filter((p) => p.startsWith('delete-me-')));
    await eventually('the tool container', async () => ((await running()).length > 0 ? true : undefined));
    await clients().custom.deleteNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace: env.namespace, name: 'delete-me' });
    await eventually('the run to be gone', async () => getRun(env.namespace, 'delete-me').then(() => undefined, (e: unknown) => (statusCode(e) === 404 ? true : undefined)));
    await eventually('the tool pod to be gone', noPodOf('delete-me'));
    expect(await running()).toEqual([]);
    await eventually('its journal to be garbage-collected', async () => {
      return (await listJournals(env.namespace, 'agentrun.dev/run=delete-me')).length === 0 ? true : undefined;
    });
  });

  it('ttlSecondsAfterFinished deletes a finished run and everything it owns', async () => {
    const key = '[lifecycle-ttl]';
    env.model.script(key, [{ content: [text('quick answer')] }]);
    await createRun(env.namespace, 'short-lived', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} answer quickly`, ttlSecondsAfterFinished: 1,
    });
    await waitForRun(env.namespace, 'short-lived', 'Succeeded', (r) => r.status?.phase === 'Succeeded');
    await eventually('the finished run to be deleted', async () => getRun(env.namespace, 'short-lived').then(
      () => undefined, (e: unknown) => (statusCode(e) === 404 ? true : undefined)), 30_000);
    await eventually('its journal to be garbage-collected', async () => {
      return (await listJournals(env.namespace, 'agentrun.dev/run=short-lived')).length === 0 ? true : undefined;
    });
    expect(env.model.requests(key)).toHaveLength(1);
  });
});
