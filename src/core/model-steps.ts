/** Model steps: start the call, classify its failure, journal its response, act on its stop reason. */
import type { StepRecord } from '../api/agent-run.ts';
import { Reason, StepOutcome } from '../api/conditions.ts';
import { buildModelRequest, finalText } from './conversation.ts';
import { entryStep, type ModelResponseEntry } from '../api/journal-entry.ts';
import { isStepDone, moveStep } from './machine.ts';
import { journalName } from './naming.ts';
import { backoffMs, classifyModelFailure, runDeadline } from './policies.ts';
import { STOP_REASON_MAX, addUsage, emptyUsage, event, nextStepId, now, requeueAt, truncate, usageOf,
  type Draft } from './draft.ts';
import { finish } from './lifecycle.ts';
import { modelResponseProblem } from './caps.ts';

/** Moves the run's current model step on: records a response, schedules a retry, or fails the run. */
export function progressModelStep(d: Draft): void {
  const step = d.status.steps.findLast((s) => s.kind === 'Model');
  if (!step || isStepDone(step) || step.phase === 'AwaitingApproval') return;
  const recorded = d.o.journal.get(step.id);
  if (recorded?.entry.kind === 'ModelResponse') {
    // Status never recorded this answer: the process that journaled it stopped before. The MCP
    // calls it started with the answer may have been made.
    for (const id of recorded.entry.mcpCallsStarted ?? []) d.calledWithAnswer.add(id);
    completeModelStep(d, step, recorded.entry, recorded.digest);
    return;
  }

  const call = d.o.modelCalls.get(step.id);
  if (call && call.attempt === step.attempt) {
    if (call.state === 'in-flight') return;
    if (call.state === 'succeeded') {
      const entry: ModelResponseEntry = { kind: 'ModelResponse', stepId: step.id, turn: step.turn,
        attempt: step.attempt, response: call.response };
      // Checked before the journal write: an entry the apiserver would refuse is never sent.
      const exceeded = modelResponseProblem(call.response, d.status.steps.length, entry);
      if (exceeded) {
        moveStep(step, 'Failed');
        step.finishedAt = now(d);
        finish(d, 'Failed', exceeded.reason, exceeded.message);
        return;
      }
      // Journaled at the end of this decision (journalAnswer), naming the MCP calls that start with it;
      // the conversation of a later step of this decision reads it from d.journal meanwhile.
      d.answer = { step, entry, toolSteps: new Set(), started: [], effectIndex: d.effects.length };
      d.journal.set(step.id, { entry, digest: '' });
      completeModelStep(d, step, entry, '');
      return;
    }
    const failure = classifyModelFailure(call.failure, d.spec, d.o.modelEndpoint);
    if (!failure.retryable) {
      moveStep(step, 'Failed');
      step.finishedAt = now(d);
      step.retry = { attempt: step.attempt, errorClass: failure.errorClass,
        errorMessage: truncate(failure.message, 1024) };
      finish(d, 'Failed', failure.reason, failure.message);
      return;
    }
    const nextAt = d.o.now + backoffMs(d.spec, step.attempt, failure.retryAfterMs);
    const deadline = runDeadline(d.spec, d.status.startTime ?? now(d));
    if (nextAt >= deadline) {
      finish(d, 'Failed', Reason.DeadlineExceeded,
        `The model API kept failing (${failure.errorClass}: ${truncate(failure.message, 300)}) `
          + `and the next retry would pass limits.timeout (${d.spec.limits.timeout}).`);
      return;
    }
    step.retry = { attempt: step.attempt, errorClass: failure.errorClass, errorMessage: truncate(failure.message, 1024),
      nextRetryAt: new Date(nextAt).toISOString() };
    event(d, 'Warning', Reason.ModelRetrying,
      `Model call of step ${step.id} failed (attempt ${step.attempt}, ${failure.errorClass}); `
        + `retrying at ${new Date(nextAt).toISOString()}.`);
    step.attempt += 1;
    requeueAt(d, nextAt);
    return;
  }
  // No call of this attempt in this process: never started, or started by a process that died.
  const retryAt = step.retry?.nextRetryAt ? Date.parse(step.retry.nextRetryAt) : 0;
  if (retryAt > d.o.now) {
    requeueAt(d, retryAt);
    return;
  }
  startModelCall(d, step);
}

/** Asks for the model call of `step`, with the conversation rebuilt from the journal. */
export function startModelCall(d: Draft, step: StepRecord): void {
  const entries = [...d.journal.values()].map((r) => r.entry).filter((e) => e.kind !== 'Tools')
    .sort((a, b) => entryStep(a) - entryStep(b));
  const request = buildModelRequest(d.spec, d.tools, entries);
  d.effects.push({ type: 'startModelCall', stepId: step.id, attempt: step.attempt, request });
}

/** Records a journaled model response on its step and acts on its stop reason: final answer, tool calls, or failure. */
export function completeModelStep(d: Draft, step: StepRecord, entry: ModelResponseEntry, digest: string): void {
  const { response } = entry;
  moveStep(step, 'Succeeded');
  step.outcome = StepOutcome.Completed;
  step.finishedAt = now(d);
  step.attempt = entry.attempt;
  step.stopReason = truncate(response.stop_reason ?? 'unknown', STOP_REASON_MAX);
  step.usage = usageOf(response.usage);
  step.journal = { name: journalName(d.o.run.metadata.name, step.id), digest };
  d.status.usage = addUsage(d.status.usage ?? emptyUsage(), step.usage);
  d.status.currentTurn = step.turn;
  const text = finalText(response.content);
  // Routine successes are in status; an Event each (one etcd write) only when asked for.
  if (d.o.stepEvents)
    event(d, 'Normal', 'ModelResponded',
      `Turn ${step.turn}: model answered (${step.stopReason}, ${step.usage.totalTokens} tokens).`);

  switch (response.stop_reason ?? 'null') {
    case 'end_turn':
    case 'stop_sequence':
      finish(d, 'Succeeded', Reason.Completed, `The model gave its final answer after ${step.turn} turns.`, text);
      return;
    case 'tool_use': {
      const uses = response.content.filter((b) => b.type === 'tool_use');
      if (uses.length === 0) {
        finish(d, 'Failed', Reason.UnexpectedStopReason, 'The model stopped for tool_use but asked for no tool.');
        return;
      }
      let id = nextStepId(d);
      for (const use of uses) {
        if (d.answer?.step === step) d.answer.toolSteps.add(id);
        d.status.steps.push({ id: id++, kind: 'Tool', turn: step.turn, phase: 'Pending', tool: String(use.name),
          toolUseId: String(use.id), attempt: 1 });
      }
      return;
    }
    case 'pause_turn':
      return; // the next model step continues the paused turn
    case 'max_tokens':
      finish(d, 'Failed', Reason.MaxTokensReached,
        `The model's response was cut off at model.maxTokens (${d.spec.model.maxTokens}). Raise spec.model.maxTokens.`);
      return;
    case 'refusal':
      finish(d, 'Failed', Reason.ModelRefused, `The model declined the task${text ? `: ${truncate(text, 300)}` : '.'}`);
      return;
    case 'model_context_window_exceeded':
      finish(d, 'Failed', Reason.ContextWindowExceeded,
        "The conversation no longer fits the model's context window. "
          + 'Lower limits.maxToolOutputBytes or narrow the task.');
      return;
    default:
      finish(d, 'Failed', Reason.UnexpectedStopReason,
        `The model stopped with stop_reason ${truncate(String(response.stop_reason), STOP_REASON_MAX)}, `
          + 'which this operator does not handle.');
  }
}
