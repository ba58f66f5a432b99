/** The run's own lifecycle in a decision: start, finish, cleanup after the end, deletion. */
import { ConditionType, FINALIZER, Label, Reason, StepOutcome } from '../api/conditions.ts';
import type { Decision } from './effects.ts';
import { isStepDone, moveStep } from './machine.ts';
import type { PodObservation } from './observed.ts';
import { decisionsFrom } from '../api/approval.ts';
import { RESULT_MAX, STATUS_MESSAGE_MAX, emptyUsage, event, now, requeueAt, setCondition, truncate,
  type Draft } from './draft.ts';
import { reportIgnoredDecisions } from './approvals.ts';

/** Starts a run: its start time, turn 0, zero usage, and a Started Event. */
export function start(d: Draft): void {
  d.status.startTime = now(d);
  d.status.currentTurn = 0;
  d.status.usage = emptyUsage();
  event(d, 'Normal', 'Started',
    `Run started with model ${d.spec.model.name} and ${(d.spec.tools ?? []).length} tools.`);
}

/** Ends the run: stops everything in flight, records the outcome. */
export function finish(d: Draft, phase: 'Succeeded' | 'Failed' | 'Cancelled', reason: Reason, message: string,
  result?: string): void {
  for (const step of d.status.steps) {
    if (isStepDone(step)) continue;
    moveStep(step, 'Failed');
    step.outcome = StepOutcome.Cancelled;
    step.finishedAt = now(d);
    if (step.kind === 'Model') d.effects.push({ type: 'cancelModelCall', stepId: step.id });
  }
  const live = deleteLivePods(d);
  // Nothing left to stop: a finished run must stay deletable even without the operator.
  if (live === 0 && (d.o.run.metadata.finalizers ?? []).includes(FINALIZER))
    d.effects.push({ type: 'removeFinalizer' });
  d.status.phase = phase;
  d.status.completionTime = now(d);
  d.status.message = truncate(message, STATUS_MESSAGE_MAX);
  if (result !== undefined) d.status.result = truncate(result, RESULT_MAX);
  d.status.pendingApprovals = [];
  setCondition(d, ConditionType.AwaitingApproval, 'False', Reason.NoApprovalPending, 'The run has finished.');
  setCondition(d, ConditionType.Succeeded, phase === 'Succeeded' ? 'True' : 'False', reason, message);
  event(d, phase === 'Succeeded' ? 'Normal' : 'Warning', phase === 'Succeeded' ? 'Succeeded' : reason, message);
  d.finished = true;
  const ttl = d.spec.ttlSecondsAfterFinished;
  if (ttl !== undefined) requeueAt(d, d.o.now + ttl * 1000);
}

/**
 * Tidies up after the run ended: answers late decisions, removes its pods, then its finalizer, and
 * deletes the run when its TTL passes.
 */
export function afterFinish(d: Draft): Decision {
  // A decision that arrives after the run ended still deserves an answer.
  reportIgnoredDecisions(d, decisionsFrom(d.o.run.metadata.annotations));
  const live = deleteLivePods(d);
  // Nothing left to stop: a finished run must stay deletable even without the operator.
  if (live === 0 && (d.o.run.metadata.finalizers ?? []).includes(FINALIZER))
    d.effects.push({ type: 'removeFinalizer' });
  else if (live > 0) requeueAt(d, d.o.now + 1000);
  const ttl = d.spec.ttlSecondsAfterFinished;
  if (ttl !== undefined && d.status.completionTime) {
    const due = Date.parse(d.status.completionTime) + ttl * 1000;
    if (d.o.now >= due) d.effects.push({ type: 'deleteRun' });
    else requeueAt(d, due);
  }
  return { status: d.status, effects: d.effects,
    ...(d.requeueAfterMs !== undefined ? { requeueAfterMs: d.requeueAfterMs } : {}) };
}

/** Lets a deleted run go: cancels its model call, deletes its pods, then releases its finalizer. */
export function finalizeDeletion(d: Draft): Decision {
  for (const step of d.status.steps) {
    if (step.kind === 'Model' && !isStepDone(step)) d.effects.push({ type: 'cancelModelCall', stepId: step.id });
  }
  const live = deleteLivePods(d);
  if (live === 0 && (d.o.run.metadata.finalizers ?? []).includes(FINALIZER))
    d.effects.push({ type: 'removeFinalizer' });
  // The run is going away: its status is not written again.
  return { status: d.o.run.status ?? {}, effects: d.effects, ...(live > 0 ? { requeueAfterMs: 1000 } : {}) };
}

/**
 * Deletes every pod of the run that still exists; returns how many there were. Running pods are
 * stopped one by one; ended, released ones go in a single collection delete.
 */
export function deleteLivePods(d: Draft): number {
  let live = 0;
  let sweep = false;
  for (const pod of d.o.pods.values()) {
    if (!pod.exists) continue;
    live++;
    settlePod(d, pod);
    if (!pod.deleting && pod.finalizerHeld !== true) sweep = true;
  }
  if (sweep)
    d.effects.push({ type: 'deleteEndedPods',
      labelSelector: `${Label.component}=tool,${Label.runUid}=${d.o.run.metadata.uid}` });
  return live;
}

/**
 * Lets go of a pod whose step is settled: a pod still running is deleted (and released); an ended
 * or already deleting one only has its finalizer released — one request, and an ended pod stays
 * for `kubectl logs` until the run finishes.
 */
export function settlePod(d: Draft, pod: PodObservation | undefined): void {
  if (!pod?.exists) return;
  if (!hasEnded(pod) && !pod.deleting) d.effects.push({ type: 'deletePod', name: pod.name });
  else if (pod.finalizerHeld === true) d.effects.push({ type: 'releasePod', name: pod.name });
}

function hasEnded(pod: PodObservation): boolean {
  return pod.terminated !== undefined || pod.phase === 'Succeeded' || pod.phase === 'Failed';
}
