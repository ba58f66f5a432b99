/**
 * Human decisions on steps: putting a step on hold (approval gates and budget extensions), acting
 * on approve, reject and timeout, and answering decisions that change nothing. What a decision
 * leads to next (a model call, a result the model reads, a failed run) is carried out by the
 * caller through {@link AfterDecision}, so this file depends on no other step module.
 */
import type { StepRecord } from '../api/agent-run.ts';
import { approveKey, decisionsFrom, rejectKey, type AnnotatedDecision } from '../api/approval.ts';
import { Reason, StepOutcome } from '../api/conditions.ts';
import { parseDurationMs } from '../api/primitives.ts';
import { event, now, requeueAt, truncate, type Draft } from './draft.ts';
import { journalDigest, type ToolResultEntry } from '../api/journal-entry.ts';
import { moveStep } from './machine.ts';
import { exhaustedLimit } from './policies.ts';

/** What a decision leads to, carried out by the agent loop (decide.ts) in the order decisions are applied. */
export interface AfterDecision {
  /** An approved budget extension: the model step it held back starts its call. */
  callModel(d: Draft, step: StepRecord): void;
  /** A rejected or timed-out tool step ends with this error result, which the model reads. */
  tellModel(d: Draft, step: StepRecord, result: Pick<ToolResultEntry, 'isError' | 'outcome' | 'output'>): void;
  /** The run ends Failed on this decision's account. */
  failRun(d: Draft, reason: Reason, message: string): void;
}

const PREVIEW_BYTES = 512;

/**
 * Puts a step on hold until a human decides; nothing runs and nothing polls meanwhile. `input`
 * is the whole tool input (or what a budget extension grants): the pending approval carries
 * its digest and size, and a preview that says how much of it is cut.
 */
export function requestApproval(d: Draft, step: StepRecord, kind: 'Tool' | 'Budget', input: string): void {
  const { name, namespace } = d.o.run.metadata;
  moveStep(step, 'AwaitingApproval');
  const since = now(d);
  // A decision already on the run was made before anyone could see this step: it never counts.
  const early = decisionsFrom(d.o.run.metadata.annotations).get(step.id);
  d.status.pendingApprovals = [
    ...(d.status.pendingApprovals ?? []).filter((p) => p.step !== step.id),
    {
      step: step.id,
      kind,
      tool: step.tool ?? '',
      since,
      ...(kind === 'Tool' ? inputSummary(d, input, name, namespace) : { inputPreview: truncate(input, PREVIEW_BYTES) }),
      ...(early ? { staleDecision: decisionFingerprint(d, early) } : {}),
    },
  ];
  const what = kind === 'Tool'
    ? `Step ${step.id} (${step.tool ?? '?'}) waits for approval`
    : `Step ${step.id} asks to extend the run's limits`;
  event(d, 'Normal', Reason.ApprovalRequired,
    `${what}. Approve: kubectl annotate agentrun ${name} -n ${namespace} ${approveKey(step.id)}="<comment>" `
      + `(or kubectl agentrun approve ${name} ${step.id} -n ${namespace}); `
      + `reject: kubectl annotate agentrun ${name} -n ${namespace} ${rejectKey(step.id)}="<reason>".`);
  requeueAt(d, d.o.now + parseDurationMs(d.spec.limits.approvalTimeout));
}

/** The preview of a tool input an approver sees first, with the digest and size of the whole. */
function inputSummary(d: Draft, input: string, run: string,
  namespace: string): { inputPreview: string; inputBytes: number; inputDigest: string } {
  const bytes = utf8Length(input);
  const head = utf8Prefix(input, PREVIEW_BYTES);
  const hidden = bytes - utf8Length(head);
  const inputPreview = hidden === 0 ?
    input
    : `${head}… [${hidden} of ${bytes} bytes not shown: kubectl agentrun describe ${run} -n ${namespace} --show-input]`;
  return { inputPreview, inputBytes: bytes, inputDigest: journalDigest(d.o.hash(input)) };
}

/** Identifies one decision (annotation, value and recorded approver) without storing its text. */
export function decisionFingerprint(d: Draft, decision: AnnotatedDecision): string {
  return journalDigest(d.o.hash(`${decision.annotation}\n${decision.comment}\n${decision.by ?? ''}`));
}

function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The longest prefix of `text` that fits in `max` UTF-8 bytes, never splitting a character. */
function utf8Prefix(text: string, max: number): string {
  let n = 0;
  let end = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0) ?? 0;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (n + size > max) break;
    n += size;
    end += ch.length;
  }
  return text.slice(0, end);
}

/** Budget extensions humans approved so far. */
export function extensionsOf(d: Draft): number {
  return d.status.steps.filter((s) => s.kind === 'Model' && s.approval?.decision === 'Approved').length;
}

/** Decision annotations that change nothing get one Warning Event each, and a line in status. */
export function reportIgnoredDecisions(d: Draft, decisions: ReadonlyMap<number, AnnotatedDecision>): void {
  for (const decision of decisions.values()) {
    const step = d.status.steps.find((s) => s.id === decision.stepId);
    if (step?.approval?.annotation === decision.annotation) continue; // the decision that was applied
    const reason = whyIgnored(d, step, decision);
    if (reason === undefined) continue;
    const seen = d.status.ignoredDecisions ?? [];
    if (seen.some((i) => i.annotation === decision.annotation && i.value === truncate(decision.comment, 1024)))
      continue;
    d.status.ignoredDecisions = [...seen, { annotation: decision.annotation, value: truncate(decision.comment, 1024),
      reason, at: now(d) }].slice(-64);
    event(d, 'Warning', 'DecisionIgnored', `${decision.annotation} was ignored: ${reason}.`);
  }
}

/** Why a decision annotation is not acted on (undefined: it is acted on). */
export function whyIgnored(d: Draft, step: StepRecord | undefined, decision: AnnotatedDecision): string | undefined {
  if (!step) return `step ${decision.stepId} does not exist in this run`;
  if (step.phase === 'AwaitingApproval') {
    const pending = d.status.pendingApprovals?.find((p) => p.step === step.id);
    if (pending?.staleDecision !== undefined && pending.staleDecision === decisionFingerprint(d, decision)) {
      return `it was made before step ${step.id} waited for a decision, so nobody had seen what it approves: `
        + 'decide again (a new annotation value)';
    }
    return decision.by === undefined && d.o.requireApproverIdentity !== false
      ? `no authenticated approver was recorded (decided-by.agentrun.dev/step-${step.id} is missing): `
        + 'install the admission policies from crds/agentrun.dev_approval-policies.yaml'
      : undefined;
  }
  if (step.approval)
    return `step ${step.id} was already decided (${step.approval.decision}${
      step.approval.by ? ` by ${step.approval.by}` : ''
    } at ${step.approval.at})`;
  return `step ${step.id} does not wait for a decision (it is ${step.phase})`;
}

/** Applies decisions and timeouts to waiting steps, and reports decisions that change nothing. */
export function progressApprovals(d: Draft, next: AfterDecision): void {
  const decisions = decisionsFrom(d.o.run.metadata.annotations);
  for (const step of d.status.steps) {
    if (step.phase !== 'AwaitingApproval') continue;
    const pending = d.status.pendingApprovals?.find((p) => p.step === step.id);
    const since = pending?.since ?? now(d);
    const decision = decisions.get(step.id);
    const stale = decision !== undefined && pending?.staleDecision === decisionFingerprint(d, decision);
    if (decision && !stale && (decision.by !== undefined || d.o.requireApproverIdentity === false)) {
      applyDecision(d, step, decision, since, next);
      continue;
    }
    const deadline = Date.parse(since) + parseDurationMs(d.spec.limits.approvalTimeout);
    if (d.o.now >= deadline) {
      timeOutApproval(d, step, since, next);
      continue;
    }
    requeueAt(d, deadline);
  }
  reportIgnoredDecisions(d, decisions);
}

/** Acts on a human's decision for a waiting step: approved starts it, rejected tells the model. */
export function applyDecision(d: Draft, step: StepRecord, decision: AnnotatedDecision, since: string,
  next: AfterDecision): void {
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
    next.callModel(d, step);
    return;
  }
  event(d, 'Warning', 'Rejected', `${subject} was rejected by ${who}${said}.`);
  rejectStep(d, step, `The user ${who} rejected this tool call${said}. It was not run.`, Reason.ApprovalRejected,
    `${subject} was rejected by ${who}${said}; approvals.onReject is Fail.`, next);
}

/**
 * Ends a wait past limits.approvalTimeout: the step is rejected (the model is told), or the run
 * fails when approvals.onTimeout is Fail.
 */
export function timeOutApproval(d: Draft, step: StepRecord, since: string, next: AfterDecision): void {
  removePending(d, step.id);
  step.approval = { decision: 'TimedOut', at: now(d), requestedAt: since };
  const timeout = d.spec.limits.approvalTimeout;
  event(d, 'Warning', 'ApprovalTimedOut', `No decision on step ${step.id} within limits.approvalTimeout (${timeout}).`);
  if (d.spec.approvals?.onTimeout === 'Fail') {
    failWaitingStep(d, step);
    next.failRun(d, Reason.ApprovalTimedOut,
      `No decision on step ${step.id} within limits.approvalTimeout (${timeout}); approvals.onTimeout is Fail.`);
    return;
  }
  rejectStep(d, step, `No one decided on this tool call within ${timeout}; it was not run.`, Reason.ApprovalTimedOut,
    `No decision on step ${step.id} within limits.approvalTimeout (${timeout}).`, next);
}

/** A rejected (or timed-out) step: the model hears why, or the run fails, per approvals.onReject. */
export function rejectStep(d: Draft, step: StepRecord, toolMessage: string, failReason: Reason, failMessage: string,
  next: AfterDecision): void {
  if (step.kind === 'Model') {
    const limit = exhaustedLimit(d.spec,
      d.status.steps.filter((s) => s.kind === 'Model' && s.phase === 'Succeeded').length,
      d.status.usage?.totalTokens ?? 0, extensionsOf(d));
    failWaitingStep(d, step);
    next.failRun(d, limit?.reason ?? failReason, `${limit?.message ?? ''} ${failMessage}`.trim());
    return;
  }
  if (d.spec.approvals?.onReject === 'Fail' && step.approval?.decision === 'Rejected') {
    failWaitingStep(d, step);
    next.failRun(d, failReason, failMessage);
    return;
  }
  next.tellModel(d, step, { isError: true, outcome: StepOutcome.Rejected, output: `Error: ${toolMessage}` });
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
