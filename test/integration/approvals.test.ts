/**
 * Human approval of pending steps, authorised by Kubernetes identity: the real apiserver runs the
 * admission policies from crds/, users act through the real kubectl with their own certificates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveKey, decidedByKey, rejectKey } from '../../src/api/approval.ts';
import { userKubeconfig } from '../harness/control-plane.ts';
import { cluster, eventually, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { createRun, finished, getRun, livePods, recordingTool, runEvents, startAgentEnv, waitForRun, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';

let env: AgentEnv;
let alice = ''; // may approve: bound to the agentrun-approver ClusterRole
let mallory = ''; // may edit runs, may not approve
beforeAll(async () => {
  env = await startAgentEnv('approvals');
  alice = await userKubeconfig(cluster(), 'alice', ['approvers']);
  mallory = await userKubeconfig(cluster(), 'mallory', ['editors']);
  await kubectl(['create', 'rolebinding', 'approvers', '-n', env.namespace, '--clusterrole=agentrun-approver', '--group=approvers']);
  await kubectl(['create', 'role', 'run-editor', '-n', env.namespace, '--verb=get,list,watch,patch,update', '--resource=agentruns.agentrun.dev']);
  await kubectl(['create', 'rolebinding', 'editors', '-n', env.namespace, '--role=run-editor', '--group=editors']);
});
afterAll(async () => { await env.close(); });

/** A run whose `shell` tool needs approval; the model calls it `calls` times in parallel, then answers. */
async function gatedRun(name: string, options: { calls?: number; spec?: Record<string, unknown> } = {}): Promise<string> {
  const key = `[approvals-${name}]`;
  const calls = options.calls ?? 1;
  env.model.script(key, [
    { content: Array.from({ length: calls }, (_, i) => toolUse('shell', { command: `echo ${String(i)}` })) },
    { content: [text(`${name} finished`)] },
  ]);
  await createRun(env.namespace, name, {
    model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
    prompt: `${key} run a command`,
    tools: [{ name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'echo ran') }],
    ...options.spec,
  });
  return key;
}

const annotate = (kubeconfig: string, name: string, kv: string) =>
  kubectl(['annotate', 'agentrun', name, '-n', env.namespace, kv], { kubeconfig });
const awaiting = (name: string, steps: number) => waitForRun(env.namespace, name, `${String(steps)} steps awaiting approval`,
  (r) => (r.status?.pendingApprovals?.length ?? 0) === steps);

describe('approval gates', () => {
  it('a gated tool waits with no pod; an authorised approval lets it run and records who approved', async () => {
    await gatedRun('gated');
    const waiting = await awaiting('gated', 1);
    expect(waiting.status?.phase).toBe('AwaitingApproval');
    expect(waiting.status?.waitingFor).toBe('approval: step 2 (shell)');
    expect(waiting.status?.pendingApprovals?.[0]).toMatchObject({ step: 2, kind: 'Tool', tool: 'shell', inputPreview: '{"command":"echo 0"}' });
    expect(waiting.status?.conditions?.find((c) => c.type === 'AwaitingApproval')).toMatchObject({ status: 'True', reason: 'ApprovalRequired' });
    expect(await livePods(env.namespace, 'gated')).toEqual([]);
    const required = await eventually('the ApprovalRequired Event', async () => (await runEvents(env.namespace, 'gated')).find((e) => e.reason === 'ApprovalRequired'));
    expect(required.message).toContain(`kubectl annotate agentrun gated -n ${env.namespace} ${approveKey(2)}="<comment>"`);
    const { stdout } = await kubectl(['get', 'agentrun', 'gated', '-n', env.namespace, '--no-headers']);
    expect(stdout).toMatch(/AwaitingApproval\s+2 tool\/shell.*approval: step 2 \(shell\)/);

    await annotate(alice, 'gated', `${approveKey(2)}=looks safe`);
    const run = await waitForRun(env.namespace, 'gated', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.steps?.[1]?.approval).toMatchObject({ decision: 'Approved', by: 'alice', comment: 'looks safe', annotation: approveKey(2) });
    expect(run.metadata.annotations?.[decidedByKey(2)]).toBe('alice');
    expect(run.status?.conditions?.find((c) => c.type === 'AwaitingApproval')?.status).toBe('False');
  });

  it('a user who may edit the run but not approve is refused by the apiserver, and nothing changes', async () => {
    await gatedRun('refused');
    await awaiting('refused', 1);
    const refusal = await annotate(mallory, 'refused', `${approveKey(2)}=trust me`).then(() => '', (e: unknown) => String(e));
    expect(refusal).toContain('user mallory may not decide on AgentRun steps');
    expect(refusal).toContain('agentrun-approver');
    // Forging the approver is refused too, even for someone who may approve.
    const forged = await annotate(alice, 'refused', `${decidedByKey(2)}=bob`).then(() => '', (e: unknown) => String(e));
    expect(forged).toContain('set by the apiserver');
    const run = await getRun(env.namespace, 'refused');
    expect(run.metadata.annotations?.[approveKey(2)]).toBeUndefined();
    expect(run.status?.pendingApprovals).toHaveLength(1);
    await kubectl(['patch', 'agentrun', 'refused', '-n', env.namespace, '--type', 'merge', '-p', '{"spec":{"cancel":true}}']);
  });

  it('reject sends the model an error tool_result with the reason', async () => {
    const key = await gatedRun('rejected');
    await awaiting('rejected', 1);
    await annotate(alice, 'rejected', `${rejectKey(2)}=not on a Friday`);
    const run = await waitForRun(env.namespace, 'rejected', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.steps?.[1]).toMatchObject({ phase: 'Failed', outcome: 'Rejected', approval: { decision: 'Rejected', by: 'alice' } });
    const second = env.model.requests(key)[1]?.body as { messages: { content: { type: string; content?: string; is_error?: boolean }[] }[] };
    const result = second.messages[2]?.content[0];
    expect(result).toMatchObject({ type: 'tool_result', is_error: true });
    expect(result?.content).toContain('not on a Friday');
  });

  it('parallel gated calls are approved one by one', async () => {
    await gatedRun('parallel', { calls: 2 });
    await awaiting('parallel', 2);
    await annotate(alice, 'parallel', `${approveKey(3)}=second first`);
    const one = await waitForRun(env.namespace, 'parallel', 'step 3 done', (r) => r.status?.steps?.[2]?.phase === 'Succeeded');
    expect(one.status?.steps?.[1]?.phase).toBe('AwaitingApproval');
    expect(one.status?.pendingApprovals?.map((p) => p.step)).toEqual([2]);
    await annotate(alice, 'parallel', `${approveKey(2)}=now the other`);
    const run = await waitForRun(env.namespace, 'parallel', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
  });

  it('a decision for a step that is not pending is refused by the apiserver, naming the steps that are', async () => {
    await gatedRun('stray');
    await awaiting('stray', 1);
    const refused = await annotate(alice, 'stray', `${approveKey(7)}=wrong step`).then(() => '', (e: unknown) => String(e));
    expect(refused).toContain(`a decision counts only for a step awaiting approval: ${approveKey(7)} names a step that is not waiting; awaiting approval now: step-2`);
    const run = await getRun(env.namespace, 'stray');
    expect(run.metadata.annotations?.[approveKey(7)]).toBeUndefined();
    expect(run.status?.pendingApprovals).toHaveLength(1);
    await annotate(alice, 'stray', `${approveKey(2)}=ok`);
    await waitForRun(env.namespace, 'stray', 'finished', finished);
  });

  it('no decision within approvalTimeout: rejected as configured; a late decision is refused', async () => {
    const key = await gatedRun('timeout', { spec: { limits: { approvalTimeout: '2s' }, approvals: { onTimeout: 'Reject' } } });
    const run = await waitForRun(env.namespace, 'timeout', 'finished', finished);
    expect(run.status?.steps?.[1]).toMatchObject({ phase: 'Failed', outcome: 'Rejected', approval: { decision: 'TimedOut' } });
    const second = env.model.requests(key)[1]?.body as { messages: { content: { content?: string }[] }[] };
    expect(second.messages[2]?.content[0]?.content).toContain('No one decided on this tool call within 2s');
    const late = await annotate(alice, 'timeout', `${approveKey(2)}=too late`).then(() => '', (e: unknown) => String(e));
    expect(late).toContain('awaiting approval now: none');

    const failing = await gatedRun('timeout-fail', { spec: { limits: { approvalTimeout: '2s' }, approvals: { onTimeout: 'Fail' } } });
    const failed = await waitForRun(env.namespace, 'timeout-fail', 'finished', finished);
    expect(failed.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'ApprovalTimedOut' });
    expect(env.model.requests(failing)).toHaveLength(1);
  });

  it('decisions survive operator restarts: while waiting, and while a decision is in flight', async () => {
    await gatedRun('restart');
    await awaiting('restart', 1);
    await env.operator.kill();
    await env.operator.start();
    expect((await getRun(env.namespace, 'restart')).status?.pendingApprovals).toHaveLength(1);
    expect(await livePods(env.namespace, 'restart')).toEqual([]);

    await env.operator.kill();
    await annotate(alice, 'restart', `${approveKey(2)}=approved while you slept`);
    await env.operator.start();
    const run = await waitForRun(env.namespace, 'restart', 'finished', finished);
    expect(run.status?.steps?.[1]?.approval).toMatchObject({ decision: 'Approved', by: 'alice', comment: 'approved while you slept' });
  });

  it('a budget that asks instead of dying: approval extends it, rejection fails the run', async () => {
    for (const [name, decide] of [['extend', 'approve'], ['deny', 'reject']] as const) {
      const key = `[approvals-budget-${name}]`;
      env.model.script(key, [
        { content: [toolUse('shell', { command: 'one' })] },
        { content: [text('done after the extension')] },
      ]);
      await createRun(env.namespace, `budget-${name}`, {
        model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
        prompt: `${key} needs two turns`,
        tools: [{ name: 'shell', description: 'Runs a command', container: recordingTool(env.execLog, 'echo ran') }],
        limits: { maxTurns: 1, onExhausted: 'AskForApproval' },
      });
      const waiting = await awaiting(`budget-${name}`, 1);
      expect(waiting.status?.pendingApprovals?.[0]).toMatchObject({ step: 3, kind: 'Budget' });
      expect(waiting.status?.pendingApprovals?.[0]?.inputPreview).toContain('Approving grants another 1 turns');
      await annotate(alice, `budget-${name}`, `${decide === 'approve' ? approveKey(3) : rejectKey(3)}=decided`);
      const run = await waitForRun(env.namespace, `budget-${name}`, 'finished', finished);
      if (decide === 'approve') {
        expect(run.status?.phase).toBe('Succeeded');
        expect(env.model.requests(key)).toHaveLength(2);
      } else {
        expect(run.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'MaxTurnsReached' });
        expect(env.model.requests(key)).toHaveLength(1);
      }
    }
  });
});


