/** Human decisions on waiting steps: approve, reject, time out; and decisions that change nothing. */
import type { StepRecord } from '../api/agent-run.ts';
import { decisionsFrom, type AnnotatedDecision } from '../api/approval.ts';
import { Reason, StepOutcome } from '../api/conditions.ts';
import { parseDurationMs } from '../api/primitives.ts';
import { moveStep } from './machine.ts';
import { exhaustedLimit } from './policies.ts';
import { event, now, requeueAt, truncate, type Draft } from './draft.ts';
import { decisionFingerprint, extensionsOf, reportIgnoredDecisions } from './gates.ts';
import { finish } from './lifecycle.ts';
import { startModelCall } from './model-steps.ts';
import { recordToolResult } from './tool-steps.ts';

/** Applies decisions and timeouts to waiting steps, and reports decisions that change nothing. */
export function progressApprovals(d: Draft): void {
  const decisions = decisionsFrom(d.o.run.metadata.annotations);
  for (const step of d.status.steps) {
    if (step.phase !== 'AwaitingApproval') continue;
    const pending = d.status.pendingApprovals?.find((p) => p.step === step.id);
    const since = pending?.since ?? now(d);
    const decision = decisions.get(step.id);
    const stale = decision !== undefined && pending?.staleDecision === decisionFingerprint(d, decision);
    if (decision && !stale && (decision.by !== undefined || d.o.requireApproverIdentity === false)) {
      applyDecision(d, step, decision, since);
      continue;
    }
    const deadline = Date.parse(since) + parseDurationMs(d.spec.limits.approvalTimeout);
    if (d.o.now >= deadline) {
      timeOutApproval(d, step, since);
      continue;
    }
    requeueAt(d, deadline);
  }
  reportIgnoredDecisions(d, decisions);
}

/** Acts on a human's decision for a waiting step: approved starts it, rejected tells the model. */
export function applyDecision(d: Draft, step: StepRecord, decision: AnnotatedDecision, since: string): void {
  removePending(d, step.id);
  step.approval = {
    decision: decision.decision,
    at: now(d),
    requestedAt: since,
    annotation: decision.annotation,
    ...(decision.by !== undefined ? { by: decision.by } : {}),
    ...(decision.comment ? { comment: truncate(decision.comment, 1024) } : {}),
  };
  const who = decision.by ?? 'an unauthenticated user';
  const said = decision.comment ? `: ${decision.comment}` : '';
  const subject = step.kind === 'Tool'
    ? `Step ${step.id} (${step.tool ?? '?'})`
    : `The extension asked by step ${step.id}`;
  if (decision.decision === 'Approved') {
    event(d, 'Normal', 'Approved', `${subject} was approved by ${who}${said}.`);
    if (step.kind === 'Tool') {
      moveStep(step, 'Pending');
      return;
    } // queued for a free tool slot
    moveStep(step, 'Running');
    step.startedAt = now(d);
    startModelCall(d, step);
    return;
  }
  event(d, 'Warning', 'Rejected', `${subject} was rejected by ${who}${said}.`);
  rejectStep(d, step, `The user ${who} rejected this tool call${said}. It was not run.`, Reason.ApprovalRejected,
    `${subject} was rejected by ${who}${said}; approvals.onReject is Fail.`);
}

/**
 * Ends a wait past limits.approvalTimeout: the step is rejected (the model is told), or the run
 * fails when approvals.onTimeout is Fail.
 */
export function timeOutApproval(d: Draft, step: StepRecord, since: string): void {
  removePending(d, step.id);
  step.approval = { decision: 'TimedOut', at: now(d), requestedAt: since };
  const timeout = d.spec.limits.approvalTimeout;
  event(d, 'Warning', 'ApprovalTimedOut', `No decision on step ${step.id} within limits.approvalTimeout (${timeout}).`);
  if (d.spec.approvals?.onTimeout === 'Fail') {
    failWaitingStep(d, step);
    finish(d, 'Failed', Reason.ApprovalTimedOut,
      `No decision on step ${step.id} within limits.approvalTimeout (${timeout}); approvals.onTimeout is Fail.`);
    return;
  }
  rejectStep(d, step, `No one decided on this tool call within ${timeout}; it was not run.`, Reason.ApprovalTimedOut,
    `No decision on step ${step.id} within limits.approvalTimeout (${timeout}).`);
}

/** A rejected (or timed-out) step: the model hears why, or the run fails, per approvals.onReject. */
export function rejectStep(d: Draft, step: StepRecord, toolMessage: string, failReason: Reason,
  failMessage: string): void {
  if (step.kind === 'Model') {
    const limit = exhaustedLimit(d.spec,
      d.status.steps.filter((s) => s.kind === 'Model' && s.phase === 'Succeeded').length,
      d.status.usage?.totalTokens ?? 0, extensionsOf(d));
    failWaitingStep(d, step);
    finish(d, 'Failed', limit?.reason ?? failReason, `${limit?.message ?? ''} ${failMessage}`.trim());
    return;
  }
  if (d.spec.approvals?.onReject === 'Fail' && step.approval?.decision === 'Rejected') {
    failWaitingStep(d, step);
    finish(d, 'Failed', failReason, failMessage);
    return;
  }
  recordToolResult(d, step, { isError: true, outcome: StepOutcome.Rejected, output: `Error: ${toolMessage}` });
}

/** Marks a step that waited for approval as Failed (Rejected), when the run ends on its account. */
export function failWaitingStep(d: Draft, step: StepRecord): void {
  moveStep(step, 'Failed');
  step.outcome = StepOutcome.Rejected;
  step.finishedAt = now(d);
}

/** Drops a step from status.pendingApprovals once it no longer waits. */
export function removePending(d: Draft, stepId: number): void {
  d.status.pendingApprovals = (d.status.pendingApprovals ?? []).filter((p) => p.step !== stepId);
}
