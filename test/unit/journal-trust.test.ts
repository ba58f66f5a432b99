/**
 * The rules that keep a run's journal and approvals the operator's own, as pure functions:
 * verification of journal objects, a failed run for anything untrusted, approval that can only
 * be added, decisions made before a step waited, and previews that say what they hide.
 */
import { describe, expect, it } from 'vitest';
import { approveKey, decidedByKey } from '../../src/api/approval.ts';
import { decide } from '../../src/core/decide.ts';
import { journalObject } from '../../src/core/journal.ts';
import { verifyJournalObject } from '../../src/api/journal-entry.ts';
import { resolveTools } from '../../src/core/tools.ts';
import {
  NAMESPACE, RUN_NAME, RUN_UID, T0, effectsOf, fakeHash, journaled, modelEntry, modelStep, observed, response, runningStatus, spec, stepOf,
  toolStep, toolUse,
} from '../harness/builders.ts';

const owner = { name: RUN_NAME, namespace: NAMESPACE, uid: RUN_UID };
const entry = modelEntry(1, 1, response('end_turn', []));
const stored = journalObject(owner, 'research-j1', entry);
const digest = `sha256:${fakeHash(stored.spec.entry)}`;
const expected = { runUid: RUN_UID, name: 'research-j1', stepId: 1 };

describe('verifyJournalObject', () => {
  it('accepts the operator\'s own entry, with and without a digest recorded in status', () => {
    expect(verifyJournalObject(stored, expected, fakeHash)).toEqual({ state: 'found', recorded: { entry, digest } });
    expect(verifyJournalObject(stored, { ...expected, digest }, fakeHash).state).toBe('found');
  });

  it.each([
    ['another digest than status recorded', stored, { ...expected, digest: 'sha256:00' }, /status recorded sha256:00/],
    ['no controller owner', { ...stored, metadata: { ...stored.metadata, ownerReferences: [] } }, expected, /not controlled by this run/],
    ['an owner with another UID', { ...stored, metadata: { ...stored.metadata, ownerReferences: [{ apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', name: RUN_NAME, uid: 'other', controller: true }] } }, expected, /not controlled by this run/],
    ['another run UID in its spec', { ...stored, spec: { ...stored.spec, run: { name: RUN_NAME, uid: 'other' } } }, expected, /belongs to run UID other/],
    ['another step', stored, { ...expected, stepId: 3 }, /records step 1, not step 3/],
    ['an entry of another step under the right step number', { ...stored, spec: { ...stored.spec, step: 2 } }, { ...expected, stepId: 2 }, /of step 1, not step 2/],
  ])('refuses %s as tampered', (_what, obj, exp, message) => {
    const read = verifyJournalObject(obj, exp, fakeHash);
    expect(read).toMatchObject({ state: 'untrusted', reason: 'JournalTampered' });
    expect(read.state === 'untrusted' ? read.problem : '').toMatch(message);
  });

  it('refuses text that is not a journal entry as corrupted', () => {
    const read = verifyJournalObject({ ...stored, spec: { ...stored.spec, entry: '{"kind":"ToolResult"' } }, expected, fakeHash);
    expect(read).toMatchObject({ state: 'untrusted', reason: 'JournalCorrupted' });
  });
});

describe('a journal the run cannot trust', () => {
  const problem = { reason: 'JournalTampered' as const, problem: 'AgentRunJournal research-j1 is not controlled by this run' };

  it('fails the run at once, with the reason in its condition, a Warning Event, and no step started', () => {
    const o = { ...observed({ status: runningStatus([modelStep(1, 1)]) }), journalProblems: [problem] };
    const d = decide(o);
    expect(d.status.phase).toBe('Failed');
    expect(d.status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'JournalTampered' });
    expect(d.status.message).toContain('Nothing from it was used');
    expect(effectsOf(d, 'event')).toContainEqual(expect.objectContaining({ eventType: 'Warning', reason: 'JournalTampered' }));
    expect(effectsOf(d, 'createPod')).toEqual([]);
    expect(effectsOf(d, 'startModelCall')).toEqual([]);
  });

  it('cancel still ends the run Cancelled', () => {
    const o = { ...observed({ spec: { cancel: true }, status: runningStatus([modelStep(1, 1)]) }), journalProblems: [problem] };
    expect(decide(o).status.phase).toBe('Cancelled');
  });
});

describe('approval can only be added', () => {
  const tool = { name: 'shell', toolRef: { name: 'shell' } };
  const agentTool = { description: 'x', requiresApproval: true, container: { image: 'busybox', command: ['sh'] } };

  it('a run cannot lower an AgentTool\'s requiresApproval', () => {
    const s = spec({ tools: [{ ...tool, requiresApproval: false }] });
    const r = resolveTools(s, new Map([['shell', agentTool]]));
    expect(r.ok && r.tools[0]?.requiresApproval).toBe(true);
  });

  it('a run may add approval to an AgentTool that does not ask for it', () => {
    const s = spec({ tools: [{ ...tool, requiresApproval: true }] });
    const r = resolveTools(s, new Map([['shell', { ...agentTool, requiresApproval: false }]]));
    expect(r.ok && r.tools[0]?.requiresApproval).toBe(true);
  });
});

describe('decisions made before a step waits', () => {
  const turn1 = modelEntry(1, 1, response('tool_use', [toolUse('toolu_1', 'shell', { cmd: 'ls' })]));
  const gated = (annotations: Record<string, string>, status = runningStatus([journaled(modelStep(1, 1), turn1), toolStep(2, 1, 'shell', 'toolu_1')])) => {
    const o = observed({ spec: { approvals: { requiredFor: ['shell'] } }, status, journal: [turn1], now: T0 });
    return { ...o, run: { ...o.run, metadata: { ...o.run.metadata, annotations } } };
  };
  const early = { [approveKey(2)]: 'approved in advance', [decidedByKey(2)]: 'alice' };

  it('do not approve the step when it arrives, and are reported as ignored', () => {
    const first = decide(gated(early));
    expect(stepOf(first, 2).phase).toBe('AwaitingApproval');
    expect(first.status.pendingApprovals?.[0]?.staleDecision).toMatch(/^sha256:/);
    // The next reconcile sees the same annotation: still not a decision on what is now pending.
    const second = decide(gated(early, first.status));
    expect(stepOf(second, 2).phase).toBe('AwaitingApproval');
    expect(effectsOf(second, 'createPod')).toEqual([]);
    expect(second.status.ignoredDecisions?.[0]).toMatchObject({ annotation: approveKey(2), reason: 'step 2 does not wait for a decision (it is Pending)' });
  });

  it('a new decision made while the step waits counts', () => {
    const first = decide(gated(early));
    const later = decide(gated({ [approveKey(2)]: 'seen it, fine', [decidedByKey(2)]: 'alice' }, first.status));
    expect(stepOf(later, 2).approval).toMatchObject({ decision: 'Approved', by: 'alice' });
    expect(effectsOf(later, 'createPod')).toHaveLength(1);
  });
});

describe('the approver sees what runs', () => {
  it('a long input\'s preview says how much it hides; the digest covers the whole input', () => {
    const cmd = `echo hi${' '.repeat(600)}; cat /secrets/token`;
    const turn1 = modelEntry(1, 1, response('tool_use', [toolUse('toolu_1', 'shell', { cmd })]));
    const o = observed({ spec: { approvals: { requiredFor: ['shell'] } }, status: runningStatus([journaled(modelStep(1, 1), turn1), toolStep(2, 1, 'shell', 'toolu_1')]), journal: [turn1] });
    const pending = decide(o).status.pendingApprovals?.[0];
    const whole = JSON.stringify({ cmd });
    expect(pending?.inputBytes).toBe(Buffer.byteLength(whole));
    expect(pending?.inputDigest).toBe(`sha256:${fakeHash(whole)}`);
    expect(pending?.inputPreview).not.toContain('cat /secrets/token');
    expect(pending?.inputPreview).toMatch(/… \[\d+ of \d+ bytes not shown: kubectl agentrun describe research -n agents --show-input\]$/);
  });
});
