/**
 * Putting a step on hold for a human decision (approval gates and budget extensions), and
 * answering decisions that change nothing.
 */
import type { StepRecord } from '../api/agent-run.ts';
import { approveKey, decisionsFrom, rejectKey, type AnnotatedDecision } from '../api/approval.ts';
import { Reason } from '../api/conditions.ts';
import { parseDurationMs } from '../api/primitives.ts';
import { event, now, requeueAt, truncate, type Draft } from './draft.ts';
import { journalDigest } from './journal.ts';
import { moveStep } from './machine.ts';

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
