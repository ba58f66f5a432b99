/**
 * The approval gate and run isolation, tried as the people who share the namespace
 * (docs/security.md): lowering approval, deciding in advance, approving unseen input, writing
 * status to approve, and one run's cleanup reaching another's pods through a shared label value.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveKey } from '../../../src/api/approval.ts';
import { runLabelValue } from '../../../src/core/naming.ts';
import { repoRoot } from '../../harness/control-plane.ts';
import {
  createRun, executions, finished, getRun, livePods, recordingTool, waitForRun, startAgentEnv, type AgentEnv, MOCK_ENDPOINT,
} from '../../harness/agent-env.ts';
import { clients, kubectl } from '../../harness/kube.ts';
import { text, toolUse } from '../../harness/mock-model-server.ts';
import { personas, refusal, type Personas } from '../../harness/personas.ts';

let env: AgentEnv;
let p: Personas;
beforeAll(async () => {
  env = await startAgentEnv('sec-approvals');
  p = await personas(env.namespace, 'sa');
});
afterAll(async () => { await env.close(); });

const awaiting = (name: string) => waitForRun(env.namespace, name, 'awaiting approval or finished', (r) => r.status?.phase === 'AwaitingApproval' || finished(r));
const annotate = (kubeconfig: string, name: string, kv: string) => refusal(kubeconfig, ['annotate', 'agentrun', name, '-n', env.namespace, kv]);

describe('approval can only be added', () => {
  it('a run that sets requiresApproval: false on an AgentTool that requires approval still waits', async () => {
    await kubectl(['apply', '-n', env.namespace, '-f', '-'], { input: JSON.stringify({
      apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentTool', metadata: { name: 'gated-shell' },
      spec: { description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'echo ran') },
    }) });
    const key = '[sec-lowered]';
    env.model.script(key, [{ content: [toolUse('shell', { command: 'echo hi' })] }, { content: [text('done')] }]);
    await createRun(env.namespace, 'lowered', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} go`,
      tools: [{ name: 'shell', toolRef: { name: 'gated-shell' }, requiresApproval: false }],
    });
    const run = await awaiting('lowered');
    expect(run.status?.phase).toBe('AwaitingApproval');
    expect(await livePods(env.namespace, 'lowered')).toEqual([]);
    expect(await executions(env.execLog)).toEqual([]);
    await kubectl(['patch', 'agentrun', 'lowered', '-n', env.namespace, '--type=merge', '-p', '{"spec":{"cancel":true}}']);
  });
});

describe('a decision counts only for a step awaiting approval', () => {
  it('is refused before the step exists and for a step that does not wait; the waiting step is approved as usual', async () => {
    const key = '[sec-advance]';
    env.model.script(key, [{ content: [toolUse('shell', { command: 'echo hi' })] }, { content: [text('done')] }]);
    const release = env.model.hold(key);
    await createRun(env.namespace, 'advance', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} go`,
      tools: [{ name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'echo ran') }],
    });
    await env.model.waitForRequest(key, 1);
    // Before step 2 exists: an approval in advance would approve input nobody has seen.
    const early = await annotate(p.approver, 'advance', `${approveKey(2)}=blanket approval`);
    expect(early).toContain('a decision counts only for a step awaiting approval: approve.agentrun.dev/step-2 names a step that is not waiting; awaiting approval now: none');
    release();
    expect((await awaiting('advance')).status?.pendingApprovals?.map((x) => x.step)).toEqual([2]);
    const wrong = await annotate(p.approver, 'advance', `${approveKey(3)}=the next one too`);
    expect(wrong).toContain('awaiting approval now: step-2');
    expect(await executions(env.execLog)).toEqual([]);
    expect(await annotate(p.approver, 'advance', `${approveKey(2)}=seen it`)).toBe('');
    const run = await waitForRun(env.namespace, 'advance', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.steps?.[1]?.approval).toMatchObject({ decision: 'Approved', by: p.names.approver, comment: 'seen it' });
    expect(await executions(env.execLog)).toHaveLength(1);
  });
});

describe('the approver sees everything that runs', () => {
  it('a padded input says how much its preview hides, and the plugin prints all of it, checked against the digest', async () => {
    const key = '[sec-padded]';
    const command = `echo harmless${' '.repeat(700)}; echo the hidden tail`;
    env.model.script(key, [{ content: [toolUse('shell', { command })] }, { content: [text('done')] }]);
    await createRun(env.namespace, 'padded', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} go`,
      tools: [{ name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'echo ran') }],
    });
    const pending = (await awaiting('padded')).status?.pendingApprovals?.[0];
    const whole = JSON.stringify({ command });
    expect(pending?.inputBytes).toBe(Buffer.byteLength(whole));
    expect(pending?.inputPreview).not.toContain('hidden tail');
    expect(pending?.inputPreview).toMatch(/bytes not shown: kubectl agentrun describe padded -n \S+ --show-input\]$/);
    const { stdout } = await promisify(execFile)(process.execPath, [join(repoRoot, 'bin/kubectl-agentrun'), 'describe', 'padded', '-n', env.namespace, '--show-input'],
      { env: { ...process.env, KUBECONFIG: p.approver } });
    expect(stdout).toContain(`Step 2 (shell) input, ${Buffer.byteLength(whole)} bytes, matches the digest the operator recorded:`);
    expect(stdout).toContain(whole);
    await kubectl(['patch', 'agentrun', 'padded', '-n', env.namespace, '--type=merge', '-p', '{"spec":{"cancel":true}}']);
  });
});

describe('status writers are not approvers', () => {
  it('a user who may patch agentruns/status cannot mark a step approved or rewrite the journal index', async () => {
    const key = '[sec-status]';
    env.model.script(key, [{ content: [toolUse('shell', { command: 'echo hi' })] }, { content: [text('done')] }]);
    await createRun(env.namespace, 'status-writer', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} go`,
      tools: [{ name: 'shell', description: 'Runs a command', requiresApproval: true, container: recordingTool(env.execLog, 'echo ran') }],
    });
    const run = await awaiting('status-writer');
    const steps = structuredClone(run.status?.steps ?? []);
    const gated = steps[1];
    if (gated) { gated.phase = 'Pending'; gated.approval = { decision: 'Approved', by: 'nobody', at: new Date().toISOString() }; }
    const patch = JSON.stringify({ status: { steps, pendingApprovals: [] } });
    const refused = await refusal(p.statusWriter, ['patch', 'agentrun', 'status-writer', '-n', env.namespace, '--subresource=status', '--type=merge', '-p', patch]);
    expect(refused).toContain('only the agentrun operator writes AgentRun status');
    const after = await getRun(env.namespace, 'status-writer');
    expect(after.status?.pendingApprovals?.map((x) => x.step)).toEqual([2]);
    expect(await livePods(env.namespace, 'status-writer')).toEqual([]);
    await kubectl(['patch', 'agentrun', 'status-writer', '-n', env.namespace, '--type=merge', '-p', '{"spec":{"cancel":true}}']);
  });
});

describe('runs never share a selector', () => {
  it('finishing a run whose shortened name label equals another\'s leaves the other run\'s pods alone', async () => {
    const [victim, attacker] = collidingNames();
    expect(runLabelValue(victim)).toBe(runLabelValue(attacker));
    const victimKey = '[sec-victim]', attackerKey = '[sec-attacker]';
    const tool = { name: 'shell', description: 'Runs a command', container: recordingTool(env.execLog, 'echo ran') };
    env.model.script(victimKey, [{ content: [toolUse('shell', { command: 'echo v' })] }, { content: [toolUse('gated', { command: 'echo later' })] }, { content: [text('victim done')] }]);
    env.model.script(attackerKey, [{ content: [toolUse('shell', { command: 'echo a' })] }, { content: [text('attacker done')] }]);
    await createRun(env.namespace, victim, {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${victimKey} go`,
      tools: [tool, { ...tool, name: 'gated', requiresApproval: true }],
    });
    // The victim's first tool has ended; its pod is kept (for kubectl logs) while the run waits for a human.
    await awaiting(victim);
    const victimPods = await podsOfRun(victim);
    expect(victimPods).toHaveLength(1);
    await createRun(env.namespace, attacker, { model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${attackerKey} go`, tools: [tool] });
    await waitForRun(env.namespace, attacker, 'finished', finished);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await podsOfRun(victim)).toEqual(victimPods);
    await kubectl(['patch', 'agentrun', victim, '-n', env.namespace, '--type=merge', '-p', '{"spec":{"cancel":true}}']);
  });
});

/** Pods owned by the run named `name` (by owner reference, not by label). */
async function podsOfRun(name: string): Promise<string[]> {
  const list = await clients().core.listNamespacedPod({ namespace: env.namespace });
  return list.items.filter((pod) => pod.metadata?.ownerReferences?.some((o) => o.name === name) && !pod.metadata.deletionTimestamp)
    .map((pod) => pod.metadata?.name ?? '').sort();
}

/** Two run names, longer than a label value, whose shortened label values (prefix + 32-bit hash) collide. */
function collidingNames(): [string, string] {
  const base = `collide-${'x'.repeat(60)}-`;
  const seen = new Map<string, string>();
  for (let i = 0; i < 2_000_000; i++) {
    const name = `${base}${i.toString(36)}`;
    const label = runLabelValue(name);
    const other = seen.get(label);
    if (other !== undefined) return [other, name];
    seen.set(label, name);
  }
  throw new Error('no collision found');
}

