/**
 * Putting a step on hold for a human decision (approval gates and budget extensions), and
 * answering decisions that change nothing.
 */
import type { StepRecord } from '../api/agent-run.ts';
import { approveKey, rejectKey, type AnnotatedDecision } from '../api/approval.ts';
import { Reason } from '../api/conditions.ts';
import { parseDurationMs } from '../api/primitives.ts';
import { event, now, requeueAt, truncate, type Draft } from './draft.ts';

/** Puts a step on hold until a human decides; nothing runs and nothing polls meanwhile. */
export function requestApproval(d: Draft, step: StepRecord, kind: 'Tool' | 'Budget', preview: string): void {
  const { name, namespace } = d.o.run.metadata;
  step.phase = 'AwaitingApproval';
  const since = now(d);
  d.status.pendingApprovals = [
    ...(d.status.pendingApprovals ?? []).filter((p) => p.step !== step.id),
    { step: step.id, kind, tool: step.tool ?? '', inputPreview: truncate(preview, 512), since },
  ];
  const what = kind === 'Tool' ? `Step ${step.id} (${step.tool ?? '?'}) waits for approval` : `Step ${step.id} asks to extend the run's limits`;
  event(d, 'Normal', Reason.ApprovalRequired,
    `${what}. Approve: kubectl annotate agentrun ${name} -n ${namespace} ${approveKey(step.id)}="<comment>" `
    + `(or kubectl agentrun approve ${name} ${step.id} -n ${namespace}); reject: kubectl annotate agentrun ${name} -n ${namespace} ${rejectKey(step.id)}="<reason>".`);
  requeueAt(d, d.o.now + parseDurationMs(d.spec.limits.approvalTimeout));
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
    if (seen.some((i) => i.annotation === decision.annotation && i.value === truncate(decision.comment, 1024))) continue;
    d.status.ignoredDecisions = [...seen, { annotation: decision.annotation, value: truncate(decision.comment, 1024), reason, at: now(d) }].slice(-64);
    event(d, 'Warning', 'DecisionIgnored', `${decision.annotation} was ignored: ${reason}.`);
  }
}

export function whyIgnored(d: Draft, step: StepRecord | undefined, decision: AnnotatedDecision): string | undefined {
  if (!step) return `step ${decision.stepId} does not exist in this run`;
  if (step.phase === 'AwaitingApproval') {
    return decision.by === undefined && d.o.requireApproverIdentity !== false
      ? `no authenticated approver was recorded (decided-by.agentrun.dev/step-${step.id} is missing): install the admission policies from crds/agentrun.dev_approval-policies.yaml`
      : undefined;
  }
  if (step.approval) return `step ${step.id} was already decided (${step.approval.decision}${step.approval.by ? ` by ${step.approval.by}` : ''} at ${step.approval.at})`;
  return `step ${step.id} does not wait for a decision (it is ${step.phase})`;
}

