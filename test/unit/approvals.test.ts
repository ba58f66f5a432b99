/** Approval gates and budget extensions in decide(): pure, with a fixed clock. */
import { describe, expect, it } from 'vitest';
import { approveKey, decidedByKey, decisionsFrom, rejectKey } from '../../src/api/approval.ts';
import { decide } from '../../src/core/decide.ts';
import type { Observed } from '../../src/core/observed.ts';
import {
  T0, at, effectsOf, fakeHash, journaled, modelEntry, modelStep, observed, response, runningStatus, stepOf, toolStep, toolUse,
} from '../harness/builders.ts';

const SHELL_INPUT = { cmd: 'rm -rf /tmp/x' };
const turn1 = modelEntry(1, 1, response('tool_use', [toolUse('toolu_1', 'shell', SHELL_INPUT)]));

/** A run whose model just asked for a gated `shell` call (step 2). */
function gated(extra: { annotations?: Record<string, string>; now?: number; status?: Observed['run']['status']; spec?: Record<string, unknown>; requireApproverIdentity?: boolean } = {}): Observed {
  const o = observed({
    spec: { approvals: { requiredFor: ['shell'] }, limits: { approvalTimeout: '1h', timeout: '3h' }, ...extra.spec },
    status: extra.status ?? runningStatus([journaled(modelStep(1, 1), turn1), toolStep(2, 1, 'shell', 'toolu_1')]),
    journal: [turn1],
    now: extra.now ?? T0,
  });
  return {
    ...o,
    run: { ...o.run, metadata: { ...o.run.metadata, annotations: extra.annotations ?? {} } },
    ...(extra.requireApproverIdentity !== undefined ? { requireApproverIdentity: extra.requireApproverIdentity } : {}),
  };
}

/** The status after the gate was raised at T0. */
function waitingStatus() {
  return decide(gated()).status;
}

describe('decisionsFrom', () => {
  it('reads approve/reject annotations with the recorded approver; reject wins over approve', () => {
    const decisions = decisionsFrom({
      [approveKey(3)]: 'ok', [decidedByKey(3)]: 'alice', [approveKey(4)]: 'yes', [rejectKey(4)]: 'no', 'other.io/x': 'y', 'approve.agentrun.dev/budget': 'x',
    });
    expect([...decisions.keys()].sort()).toEqual([3, 4]);
    expect(decisions.get(3)).toEqual({ stepId: 3, decision: 'Approved', annotation: approveKey(3), comment: 'ok', by: 'alice' });
    expect(decisions.get(4)?.decision).toBe('Rejected');
  });
});

describe('approval gates', () => {
  it('put a gated tool call on hold: no pod, a pending approval, an Event with the exact command, a timeout timer', () => {
    const d = decide(gated());
    expect(stepOf(d, 2).phase).toBe('AwaitingApproval');
    expect(effectsOf(d, 'createPod')).toEqual([]);
    expect(d.status.phase).toBe('AwaitingApproval');
    const input = JSON.stringify(SHELL_INPUT);
    expect(d.status.pendingApprovals).toEqual([{
      step: 2, kind: 'Tool', tool: 'shell', inputPreview: input, since: new Date(T0).toISOString(),
      inputBytes: Buffer.byteLength(input), inputDigest: `sha256:${fakeHash(input)}`,
    }]);
    expect(d.status.waitingFor).toBe('approval: step 2 (shell)');
    expect(d.status.conditions?.find((c) => c.type === 'AwaitingApproval')).toMatchObject({ status: 'True', reason: 'ApprovalRequired' });
    const event = effectsOf(d, 'event').find((e) => e.reason === 'ApprovalRequired');
    expect(event?.message).toContain(`kubectl annotate agentrun research -n agents ${approveKey(2)}="<comment>"`);
    expect(d.requeueAfterMs).toBe(3_600_000);
  });

  it('an approval with a recorded approver starts the pod and records who, when and why', () => {
    const d = decide(gated({ status: waitingStatus(), now: at(60), annotations: { [approveKey(2)]: 'fine', [decidedByKey(2)]: 'alice' } }));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', approval: { decision: 'Approved', by: 'alice', comment: 'fine', annotation: approveKey(2), requestedAt: new Date(T0).toISOString() } });
    expect(effectsOf(d, 'createPod')).toHaveLength(1);
    expect(d.status.pendingApprovals).toEqual([]);
    expect(d.status.conditions?.find((c) => c.type === 'AwaitingApproval')?.status).toBe('False');
  });

  it('an approval without a recorded approver is ignored (the admission policy is missing) unless identity is not required', () => {
    const ignored = decide(gated({ status: waitingStatus(), annotations: { [approveKey(2)]: 'fine' } }));
    expect(stepOf(ignored, 2).phase).toBe('AwaitingApproval');
    expect(ignored.status.ignoredDecisions?.[0]?.reason).toContain('install the admission policies');
    const accepted = decide(gated({ status: waitingStatus(), annotations: { [approveKey(2)]: 'fine' }, requireApproverIdentity: false }));
    expect(stepOf(accepted, 2)).toMatchObject({ phase: 'Running', approval: { decision: 'Approved' } });
  });

  it('a rejection gives the model an error result with the reason (onReject Continue)', () => {
    const d = decide(gated({ status: waitingStatus(), annotations: { [rejectKey(2)]: 'too risky', [decidedByKey(2)]: 'bob' } }));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'Rejected', approval: { decision: 'Rejected', by: 'bob' } });
    const entry = effectsOf(d, 'writeJournal').find((e) => e.stepId === 2)?.entry;
    expect(entry).toMatchObject({ kind: 'ToolResult', isError: true, outcome: 'Rejected' });
    expect(entry?.kind === 'ToolResult' ? entry.output : '').toContain('The user bob rejected this tool call: too risky');
    expect(effectsOf(d, 'createPod')).toEqual([]);
  });

  it('a rejection fails the run when approvals.onReject is Fail', () => {
    const spec = { approvals: { requiredFor: ['shell'], onReject: 'Fail' } };
    const d = decide(gated({ spec, status: decide(gated({ spec })).status, annotations: { [rejectKey(2)]: 'no', [decidedByKey(2)]: 'bob' } }));
    expect(d.status.phase).toBe('Failed');
    expect(d.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'ApprovalRejected' });
  });

  it('no decision before approvalTimeout: Reject tells the model, Fail fails the run', () => {
    const rejected = decide(gated({ status: waitingStatus(), now: at(3600) }));
    expect(stepOf(rejected, 2)).toMatchObject({ phase: 'Failed', outcome: 'Rejected', approval: { decision: 'TimedOut' } });
    const spec = { approvals: { requiredFor: ['shell'], onTimeout: 'Fail' } };
    const failed = decide(gated({ spec, status: decide(gated({ spec })).status, now: at(3600) }));
    expect(failed.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'ApprovalTimedOut' });
    const early = decide(gated({ status: waitingStatus(), now: at(3599) }));
    expect(stepOf(early, 2).phase).toBe('AwaitingApproval');
    expect(early.requeueAfterMs).toBe(1000);
  });

  it('a decision for a step that is not pending changes nothing, and is reported once', () => {
    const annotations = { [approveKey(9)]: 'wrong', [decidedByKey(9)]: 'alice' };
    const first = decide(gated({ status: waitingStatus(), annotations }));
    expect(stepOf(first, 2).phase).toBe('AwaitingApproval');
    expect(first.status.ignoredDecisions).toEqual([{ annotation: approveKey(9), value: 'wrong', reason: 'step 9 does not exist in this run', at: new Date(T0).toISOString() }]);
    expect(effectsOf(first, 'event').filter((e) => e.reason === 'DecisionIgnored')).toHaveLength(1);
    const again = decide(gated({ status: first.status, annotations }));
    expect(effectsOf(again, 'event').filter((e) => e.reason === 'DecisionIgnored')).toEqual([]);
  });
});

describe('budgets that ask instead of dying', () => {
  const done = modelEntry(1, 1, response('tool_use', [toolUse('toolu_1', 'web_fetch', { url: 'https://example.com' })]));
  const spec = { limits: { maxTurns: 1, onExhausted: 'AskForApproval' } };
  const status = runningStatus([journaled(modelStep(1, 1), done), journaled(toolStep(2, 1, 'web_fetch', 'toolu_1'), done)]);

  it('reaching maxTurns asks for an extension instead of failing', () => {
    const d = decide(observed({ spec, status, journal: [done] }));
    expect(d.status.phase).toBe('AwaitingApproval');
    expect(stepOf(d, 3)).toMatchObject({ kind: 'Model', phase: 'AwaitingApproval' });
    expect(d.status.pendingApprovals?.[0]).toMatchObject({ step: 3, kind: 'Budget' });
    expect(d.status.pendingApprovals?.[0]?.inputPreview).toContain('Approving grants another 1 turns');
    expect(effectsOf(d, 'startModelCall')).toEqual([]);
  });

  it('approving starts the call and counts as one extension; rejecting fails with the limit reason', () => {
    const waiting = decide(observed({ spec, status, journal: [done] })).status;
    const withAnnotations = (annotations: Record<string, string>) => {
      const o = observed({ spec, status: waiting, journal: [done] });
      return { ...o, run: { ...o.run, metadata: { ...o.run.metadata, annotations } } };
    };
    const approved = decide(withAnnotations({ [approveKey(3)]: 'go on', [decidedByKey(3)]: 'alice' }));
    expect(stepOf(approved, 3)).toMatchObject({ phase: 'Running', approval: { decision: 'Approved', by: 'alice' } });
    expect(effectsOf(approved, 'startModelCall')).toHaveLength(1);
    const rejected = decide(withAnnotations({ [rejectKey(3)]: 'enough', [decidedByKey(3)]: 'alice' }));
    expect(rejected.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'MaxTurnsReached' });

  });
});
