/**
 * The crash matrix: the operator is SIGKILLed at every boundary of the durability protocol and
 * restarted. Every run must end exactly as an undisturbed run does, with one pod creation per
 * tool attempt, no step recorded twice, each tool executed once, and at most one extra model call
 * (only when the kill landed while a call was in flight).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { CrashPoint } from '../../src/reconciler/crash-points.ts';
import { hostScratchDir } from '../harness/control-plane.ts';
import { mulberry32 } from '../harness/measure.ts';
import { clients, eventually, kubectl, statusCode } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { waitForFileSnippet } from '../harness/test-node.ts';
import { createRun, executions, finished, recordingTool, startAgentEnv, waitForRun, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';

let env: AgentEnv;
let gates = '';
beforeAll(async () => {
  env = await startAgentEnv('crash', { startOperator: false });
  gates = hostScratchDir('test-gates', env.namespace);
  await mkdir(gates, { recursive: true });
});
afterAll(async () => { await env.close(); });

const UNDISTURBED_MODEL_CALLS = 3;
const FINAL_ANSWER = 'All work is done.';

/** Registers the 3-turn script (2 parallel tool calls, then 1, then the answer) under `key`. */
function script(key: string): void {
  env.model.script(key, [
    { content: [text('Starting.'), toolUse('work', { n: 1 }), toolUse('work', { n: 2 })] },
    { content: [toolUse('work', { n: 3 })] },
    { content: [text(FINAL_ANSWER)] },
  ]);
}

/** Creates the run; its tool waits for `gate` (a file) when one is given. */
async function startRun(name: string, key: string, gate?: string): Promise<void> {
  script(key);
  const wait = gate ? `${waitForFileSnippet(gate)}; ` : '';
  await createRun(env.namespace, name, {
    model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
    prompt: `${key} do the work`,
    tools: [{ name: 'work', description: 'Does work', container: recordingTool(env.execLog, `${wait}printf "did %s" "$AGENTRUN_INPUT"`) }],
  });
}

/** Waits until both tools of the run's first turn have started executing (they block on a gate). */
async function toolsOfTurnOneRunning(name: string): Promise<void> {
  const uid = (await waitForRun(env.namespace, name, 'the run to exist', () => true)).metadata.uid ?? '?';
  await eventually(`both tools of ${name}'s first turn to run`, async () =>
    ((await executions(env.execLog)).filter((l) => l === `${uid}/2 1` || l === `${uid}/3 1`).length === 2 ? true : undefined));
}

async function finishedRun(name: string): Promise<AgentRun> {
  return waitForRun(env.namespace, name, `${name} to finish`, finished, 90_000);
}

/** What must hold for every run, however often the operator died. */
async function expectIntact(run: AgentRun, key: string, extraModelCallsAllowed: number): Promise<void> {
  const name = run.metadata.name ?? '';
  const status = run.status ?? {};
  expect(status.phase).toBe('Succeeded');
  expect(status.result).toBe(FINAL_ANSWER);
  const steps = status.steps ?? [];
  expect(steps.map((s) => `${String(s.id)}:${s.kind}`)).toEqual(['1:Model', '2:Tool', '3:Tool', '4:Model', '5:Tool', '6:Model']);
  expect(new Set(steps.filter((s) => s.toolUseId).map((s) => s.toolUseId)).size).toBe(3);
  expect(steps.every((s) => s.phase === 'Succeeded' && s.journal !== undefined)).toBe(true);
  // One pod creation per tool attempt, and every attempt was the first.
  expect(env.pods.names().filter((n) => n.startsWith(`${name}-s`))).toEqual([`${name}-s2-a1`, `${name}-s3-a1`, `${name}-s5-a1`]);
  // Each tool ran exactly once.
  const runs = (await executions(env.execLog)).filter((l) => l.startsWith(`${run.metadata.uid ?? '?'}/`));
  expect(runs.sort()).toEqual([`${run.metadata.uid ?? ''}/2 1`, `${run.metadata.uid ?? ''}/3 1`, `${run.metadata.uid ?? ''}/5 1`]);
  const received = env.model.requests(key).length;
  expect(received).toBeGreaterThanOrEqual(UNDISTURBED_MODEL_CALLS);
  expect(received).toBeLessThanOrEqual(UNDISTURBED_MODEL_CALLS + extraModelCallsAllowed);
}

describe('SIGKILL at each boundary, then restart', () => {
  it('undisturbed baseline', async () => {
    await env.operator.start();
    await startRun('baseline', '[crash-baseline]');
    await expectIntact(await finishedRun('baseline'), '[crash-baseline]', 0);
    await env.operator.stop();
  });

  it('while a model call is in flight: at most one extra call', async () => {
    const key = '[crash-mid-call]';
    const release = env.model.hold(key);
    await env.operator.start();
    await startRun('mid-call', key);
    await env.model.waitForRequest(key, 1);
    await env.operator.kill();
    release();
    await env.operator.start();
    const run = await finishedRun('mid-call');
    await expectIntact(run, key, 1);
    expect(env.model.requests(key)).toHaveLength(UNDISTURBED_MODEL_CALLS + 1);
    await env.operator.stop();
  });

  // [what, point, which hit of it, extra model calls allowed (a call started when the process died)]
  it.each([
    ['response journaled, status not yet written', CrashPoint.afterModelJournal, 1, 0],
    ['first model call started, status not yet written', CrashPoint.afterStartBeforeStatus, 1, 1],
    ['tool pods created, status not yet written', CrashPoint.afterStartBeforeStatus, 2, 0],
    ['tool pods created and status written, nothing after', CrashPoint.afterToolIntent, 1, 0],
    ['tool pod finished, output not yet journaled', CrashPoint.beforeToolJournal, 1, 0],
    ['tool output journaled, status not yet written', CrashPoint.afterToolJournal, 1, 0],
    ['final status not yet written', CrashPoint.beforeFinalStatus, 1, 0],
  ] as const)('%s: no tool run twice, no extra model call but an interrupted one', async (_what, point, hit, extraCalls) => {
    const name = `at-${point}-${hit}`;
    const key = `[crash-${point}-${hit}]`;
    await env.operator.start({ crashPoint: `${point}@${hit}` });
    await startRun(name, key);
    const exit = await env.operator.exited();
    expect(exit.signal, env.operator.tail()).toBe('SIGKILL');
    expect(env.operator.tail()).toContain(`AGENTRUN_CRASH_POINT ${point} reached`);
    await env.operator.start({ crashPoint: undefined });
    await expectIntact(await finishedRun(name), key, extraCalls);
    await env.operator.stop();
  });

  it('while a tool pod runs: the pod is adopted, not run again', async () => {
    const key = '[crash-tool-running]';
    const gate = join(gates, 'tool-running');
    await env.operator.start();
    await startRun('tool-running', key, gate);
    await toolsOfTurnOneRunning('tool-running');
    await env.operator.kill();
    await writeFile(gate, '');
    await env.operator.start();
    await expectIntact(await finishedRun('tool-running'), key, 0);
    await env.operator.stop();
  });

  it('a tool pod deleted while the operator is down is not mistaken for one never created', async () => {
    const key = '[crash-pod-deleted-while-down]';
    const gate = join(gates, 'never-opened');
    await env.operator.start();
    await startRun('deleted-while-down', key, gate);
    await toolsOfTurnOneRunning('deleted-while-down');
    await env.operator.kill();
    await kubectl(['delete', 'pod', 'deleted-while-down-s2-a1', '-n', env.namespace, '--wait=false']);
    // The pod's finalizer keeps it (Terminating) until the operator has seen how it ended.
    await eventually('the killed pod to stay, terminating', async () => {
      const pod = await clients().core.readNamespacedPod({ namespace: env.namespace, name: 'deleted-while-down-s2-a1' });
      return pod.metadata?.deletionTimestamp && pod.status?.containerStatuses?.[0]?.state?.terminated ? true : undefined;
    });
    await writeFile(gate, '');
    await env.operator.start();
    const run = await finishedRun('deleted-while-down');
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.steps?.find((s) => s.id === 2)).toMatchObject({ phase: 'Failed', outcome: 'PodLost', attempt: 1 });
    const uid = run.metadata.uid ?? '';
    expect((await executions(env.execLog)).filter((l) => l.startsWith(`${uid}/2 `))).toEqual([`${uid}/2 1`]);
    expect(env.pods.names().filter((n) => n.startsWith('deleted-while-down-s2'))).toEqual(['deleted-while-down-s2-a1']);
    const second = env.model.requests(key)[1]?.body as { messages: { content: { content?: string; is_error?: boolean }[] }[] };
    expect(second.messages[2]?.content[0]).toMatchObject({ is_error: true });
    expect(second.messages[2]?.content[0]?.content).toContain('not idempotent, so it was not run again');
    await eventually('the released pod to be gone', async () => clients().core.readNamespacedPod({ namespace: env.namespace, name: 'deleted-while-down-s2-a1' })
      .then(() => undefined, (e: unknown) => (statusCode(e) === 404 ? true : undefined)));
    await env.operator.stop();
  });

  it('at random moments (seeded), over and over', async () => {
    const key = '[crash-random]';
    const seed = Number(process.env.AGENTRUN_CHAOS_SEED ?? 20261129);
    const random = mulberry32(seed);
    await env.operator.start();
    await startRun('random', key);
    let kills = 0;
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, Math.floor(random() * 250)));
      const run = await waitForRun(env.namespace, 'random', 'any state', () => true);
      if (finished(run)) break;
      await env.operator.kill();
      kills++;
      await env.operator.start();
    }
    const run = await finishedRun('random');
    // A kill costs at most the one call it interrupted: between the request and its journal entry.
    await expectIntact(run, key, kills);
    await env.operator.stop();
  });
});
