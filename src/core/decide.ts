/**
 * decide(observed) → { status, effects, requeueAfterMs }: the whole agent loop as a pure function.
 * It performs nothing; the reconciler executes the effects in the order effects.ts documents.
 *
 * Guards run in a fixed order, Tekton-style: deleted → finished → cancelled → deadline →
 * tools resolvable → in-flight steps → next step.
 */
import type { AgentRunSpec, AgentRunStatus, StepRecord, TokenUsage } from '../api/agent-run.ts';
import { ConditionType, FINALIZER, Reason, StepOutcome } from '../api/conditions.ts';
import type { Condition } from '../api/primitives.ts';
import { buildModelRequest, finalText } from './conversation.ts';
import type { Decision, Effect } from './effects.ts';
import { serializeEntry, type JournalEntry, type ModelResponseEntry, type ResolvedTool, type ToolResultEntry } from './journal.ts';
import { isFinished, isStepDone, phaseOf } from './machine.ts';
import { journalName, toolPodName, toolsJournalName } from './naming.ts';
import type { Observed, PodObservation, RecordedEntry } from './observed.ts';
import { backoffMs, classifyModelFailure, exhaustedLimit, runDeadline } from './policies.ts';
import { toolInputProblem } from './tool-input.ts';
import { buildToolPod } from './tool-pod.ts';
import { resolveTools } from './tools.ts';

/** How long a finished pod's output may stay unreadable before the step gives up on it. */
export const RESULT_CAPTURE_GRACE_MS = 120_000;
const RESULT_MAX = 4096;

/** Mutable working copy of one decision; lives only inside decide(). */
interface Draft {
  readonly o: Observed;
  readonly spec: AgentRunSpec;
  readonly status: AgentRunStatus & { steps: StepRecord[] };
  readonly effects: Effect[];
  /** The observed journal plus the entries this decision writes: later steps of it build on them. */
  readonly journal: Map<number, RecordedEntry>;
  requeueAfterMs: number | undefined;
  tools: readonly ResolvedTool[];
  /** Set when the run reaches a final state in this decision. */
  finished: boolean;
  /** What the run waits for, when something more specific than its steps says it. */
  waiting: string | undefined;
  /** Why the run is held (Succeeded=Unknown reason and message), overriding the default. */
  hold: { reason: Reason; message: string } | undefined;
}

export function decide(o: Observed): Decision {
  const d: Draft = {
    o,
    spec: o.run.spec,
    status: { ...structuredClone(o.run.status ?? {}), steps: structuredClone(o.run.status?.steps ?? []) },
    effects: [],
    journal: new Map(o.journal),
    requeueAfterMs: undefined,
    tools: [],
    finished: false,
    waiting: undefined,
    hold: undefined,
  };
  d.status.observedGeneration = o.run.metadata.generation ?? d.status.observedGeneration;

  if (o.run.metadata.deletionTimestamp) return finalizeDeletion(d);
  if (isFinished(d.status)) return afterFinish(d);
  if (!(o.run.metadata.finalizers ?? []).includes(FINALIZER)) d.effects.push({ type: 'addFinalizer' });
  if (!d.status.startTime) start(d);

  if (d.spec.cancel) {
    finish(d, 'Cancelled', Reason.Cancelled, 'The run was cancelled (spec.cancel); its tool pods were stopped.');
    return conclude(d);
  }
  const deadline = runDeadline(d.spec, d.status.startTime ?? now(d));
  if (o.now >= deadline) {
    finish(d, 'Failed', Reason.DeadlineExceeded, `The run did not finish within limits.timeout (${d.spec.limits.timeout}). Raise the limit or narrow the task.`);
    return conclude(d);
  }
  requeueAt(d, deadline);

  if (!resolveRunTools(d)) return conclude(d);

  progressModelStep(d);
  if (!d.finished) progressToolSteps(d);
  if (!d.finished) startNextStep(d);
  return conclude(d);
}

// ---- lifecycle ----

function start(d: Draft): void {
  d.status.startTime = now(d);
  d.status.currentTurn = 0;
  d.status.usage = emptyUsage();
  event(d, 'Normal', 'Started', `Run started with model ${d.spec.model.name} and ${(d.spec.tools ?? []).length} tools.`);
}

/** Ends the run: stops everything in flight, records the outcome. */
function finish(d: Draft, phase: 'Succeeded' | 'Failed' | 'Cancelled', reason: Reason, message: string, result?: string): void {
  for (const step of d.status.steps) {
    if (isStepDone(step)) continue;
    step.phase = 'Failed';
    step.outcome = StepOutcome.Cancelled;
    step.finishedAt = now(d);
    if (step.kind === 'Model') d.effects.push({ type: 'cancelModelCall', stepId: step.id });
  }
  const live = deleteLivePods(d);
  // Nothing left to stop: a finished run must stay deletable even without the operator.
  if (live === 0 && (d.o.run.metadata.finalizers ?? []).includes(FINALIZER)) d.effects.push({ type: 'removeFinalizer' });
  d.status.phase = phase;
  d.status.completionTime = now(d);
  d.status.message = message;
  if (result !== undefined) d.status.result = truncate(result, RESULT_MAX);
  d.status.pendingApprovals = [];
  setCondition(d, ConditionType.Succeeded, phase === 'Succeeded' ? 'True' : 'False', reason, message);
  event(d, phase === 'Succeeded' ? 'Normal' : 'Warning', phase === 'Succeeded' ? 'Succeeded' : reason, message);
  d.finished = true;
  const ttl = d.spec.ttlSecondsAfterFinished;
  if (ttl !== undefined) requeueAt(d, d.o.now + ttl * 1000);
}

function afterFinish(d: Draft): Decision {
  const live = deleteLivePods(d);
  // Nothing left to stop: a finished run must stay deletable even without the operator.
  if (live === 0 && (d.o.run.metadata.finalizers ?? []).includes(FINALIZER)) d.effects.push({ type: 'removeFinalizer' });
  else if (live > 0) requeueAt(d, d.o.now + 1000);
  const ttl = d.spec.ttlSecondsAfterFinished;
  if (ttl !== undefined && d.status.completionTime) {
    const due = Date.parse(d.status.completionTime) + ttl * 1000;
    if (d.o.now >= due) d.effects.push({ type: 'deleteRun' });
    else requeueAt(d, due);
  }
  return { status: d.status, effects: d.effects, ...(d.requeueAfterMs !== undefined ? { requeueAfterMs: d.requeueAfterMs } : {}) };
}

function finalizeDeletion(d: Draft): Decision {
  for (const step of d.status.steps) {
    if (step.kind === 'Model' && !isStepDone(step)) d.effects.push({ type: 'cancelModelCall', stepId: step.id });
  }
  const live = deleteLivePods(d);
  if (live === 0 && (d.o.run.metadata.finalizers ?? []).includes(FINALIZER)) d.effects.push({ type: 'removeFinalizer' });
  // The run is going away: its status is not written again.
  return { status: d.o.run.status ?? {}, effects: d.effects, ...(live > 0 ? { requeueAfterMs: 1000 } : {}) };
}

/** Deletes every pod of the run that still exists; returns how many there were. */
function deleteLivePods(d: Draft): number {
  let live = 0;
  for (const pod of d.o.pods.values()) {
    if (!pod.exists) continue;
    live++;
    if (!pod.deleting) d.effects.push({ type: 'deletePod', name: pod.name });
  }
  return live;
}

// ---- tools ----

function resolveRunTools(d: Draft): boolean {
  if (d.o.toolSnapshot) { d.tools = d.o.toolSnapshot; return true; }
  const resolution = resolveTools(d.spec, d.o.agentTools);
  if (!resolution.ok) {
    const names = resolution.missing.join(', ');
    const message = `Waiting for AgentTool ${names} in namespace ${d.o.run.metadata.namespace}: create it, or fix the toolRef.`;
    if (d.status.message !== message) event(d, 'Warning', Reason.WaitingForAgentTool, message);
    d.waiting = `AgentTool ${names}`;
    d.hold = { reason: Reason.WaitingForAgentTool, message };
    requeueAt(d, d.o.now + 30_000);
    return false;
  }
  d.tools = resolution.tools;
  // Journaled once, so an AgentTool edited mid-run cannot change a run that already started.
  journal(d, toolsJournalName(d.o.run.metadata.name), undefined, { kind: 'Tools', tools: resolution.tools });
  return true;
}

// ---- model steps ----

function progressModelStep(d: Draft): void {
  const step = d.status.steps.findLast((s) => s.kind === 'Model');
  if (!step || isStepDone(step)) return;
  const recorded = d.o.journal.get(step.id);
  if (recorded?.entry.kind === 'ModelResponse') { completeModelStep(d, step, recorded.entry, recorded.digest); return; }

  const call = d.o.modelCalls.get(step.id);
  if (call && call.attempt === step.attempt) {
    if (call.state === 'in-flight') return;
    if (call.state === 'succeeded') {
      const entry: ModelResponseEntry = { kind: 'ModelResponse', stepId: step.id, turn: step.turn, attempt: step.attempt, response: call.response };
      completeModelStep(d, step, entry, journal(d, journalName(d.o.run.metadata.name, step.id), step.id, entry));
      return;
    }
    const failure = classifyModelFailure(call.failure, d.spec);
    if (!failure.retryable) {
      step.phase = 'Failed';
      step.finishedAt = now(d);
      step.retry = { attempt: step.attempt, errorClass: failure.errorClass, errorMessage: truncate(failure.message, 1024) };
      finish(d, 'Failed', failure.reason, failure.message);
      return;
    }
    const nextAt = d.o.now + backoffMs(d.spec, step.attempt, failure.retryAfterMs);
    const deadline = runDeadline(d.spec, d.status.startTime ?? now(d));
    if (nextAt >= deadline) {
      finish(d, 'Failed', Reason.DeadlineExceeded,
        `The model API kept failing (${failure.errorClass}: ${truncate(failure.message, 300)}) and the next retry would pass limits.timeout (${d.spec.limits.timeout}).`);
      return;
    }
    step.retry = { attempt: step.attempt, errorClass: failure.errorClass, errorMessage: truncate(failure.message, 1024), nextRetryAt: new Date(nextAt).toISOString() };
    event(d, 'Warning', Reason.ModelRetrying, `Model call of step ${step.id} failed (attempt ${step.attempt}, ${failure.errorClass}); retrying at ${new Date(nextAt).toISOString()}.`);
    step.attempt += 1;
    requeueAt(d, nextAt);
    return;
  }
  // No call of this attempt in this process: never started, or started by a process that died.
  const retryAt = step.retry?.nextRetryAt ? Date.parse(step.retry.nextRetryAt) : 0;
  if (retryAt > d.o.now) { requeueAt(d, retryAt); return; }
  startModelCall(d, step);
}

function startModelCall(d: Draft, step: StepRecord): void {
  const entries = [...d.journal.values()].map((r) => r.entry).filter((e) => e.kind !== 'Tools').sort((a, b) => stepIdOf(a) - stepIdOf(b));
  const request = buildModelRequest(d.spec, d.tools, entries);
  d.effects.push({ type: 'startModelCall', stepId: step.id, attempt: step.attempt, request });
}

function completeModelStep(d: Draft, step: StepRecord, entry: ModelResponseEntry, digest: string): void {
  const { response } = entry;
  step.phase = 'Succeeded';
  step.outcome = StepOutcome.Completed;
  step.finishedAt = now(d);
  step.attempt = entry.attempt;
  step.stopReason = response.stop_reason ?? 'unknown';
  step.usage = usageOf(response.usage);
  step.journal = { configMap: journalName(d.o.run.metadata.name, step.id), digest };
  d.status.usage = addUsage(d.status.usage ?? emptyUsage(), step.usage);
  d.status.currentTurn = step.turn;
  const text = finalText(response.content);
  event(d, 'Normal', 'ModelResponded', `Turn ${step.turn}: model answered (${step.stopReason}, ${step.usage.totalTokens} tokens).`);

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
        d.status.steps.push({ id: id++, kind: 'Tool', turn: step.turn, phase: 'Pending', tool: String(use.name), toolUseId: String(use.id), attempt: 1 });
      }
      return;
    }
    case 'pause_turn':
      return; // the next model step continues the paused turn
    case 'max_tokens':
      finish(d, 'Failed', Reason.MaxTokensReached, `The model's response was cut off at model.maxTokens (${d.spec.model.maxTokens}). Raise spec.model.maxTokens.`);
      return;
    case 'refusal':
      finish(d, 'Failed', Reason.ModelRefused, `The model declined the task${text ? `: ${truncate(text, 300)}` : '.'}`);
      return;
    case 'model_context_window_exceeded':
      finish(d, 'Failed', Reason.ContextWindowExceeded, 'The conversation no longer fits the model\'s context window. Lower limits.maxToolOutputBytes or narrow the task.');
      return;
    default:
      finish(d, 'Failed', Reason.UnexpectedStopReason, `The model stopped with stop_reason ${String(response.stop_reason)}, which this operator does not handle.`);
  }
}

// ---- tool steps ----

function progressToolSteps(d: Draft): void {
  let running = d.status.steps.filter((s) => s.kind === 'Tool' && s.phase === 'Running').length;
  for (const step of d.status.steps) {
    if (step.kind !== 'Tool' || isStepDone(step)) continue;
    const recorded = d.o.journal.get(step.id);
    if (recorded?.entry.kind === 'ToolResult') {
      if (step.phase === 'Running') running--;
      completeToolStep(d, step, recorded.entry, recorded.digest);
      continue;
    }
    if (step.phase === 'Pending') {
      if (d.spec.suspend || running >= d.spec.limits.maxParallelTools) continue;
      if (startToolStep(d, step)) running++;
      continue;
    }
    if (step.phase === 'Running') progressRunningTool(d, step);
  }
}

/** Validates the call and starts its first pod; returns true when a pod was requested. */
function startToolStep(d: Draft, step: StepRecord): boolean {
  const tool = d.tools.find((t) => t.name === step.tool);
  if (!tool) {
    const known = d.tools.map((t) => t.name).join(', ') || 'none';
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.UnknownTool, output: `Error: there is no tool named "${step.tool ?? ''}". Available tools: ${known}.` });
    return false;
  }
  const problem = toolInputProblem(tool.inputSchema, toolInputOf(d, step));
  if (problem !== undefined) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.InvalidInput, output: `Error: the input does not match the tool's inputSchema: ${problem}` });
    return false;
  }
  step.phase = 'Running';
  step.startedAt = now(d);
  createPodFor(d, step, tool);
  return true;
}

function createPodFor(d: Draft, step: StepRecord, tool: ResolvedTool): void {
  const { name, namespace, uid } = d.o.run.metadata;
  step.podName = toolPodName(name, step.id, step.attempt);
  d.effects.push({
    type: 'createPod',
    stepId: step.id,
    pod: buildToolPod({ run: { name, namespace, uid, spec: d.spec }, stepId: step.id, attempt: step.attempt, podName: step.podName, tool, input: toolInputOf(d, step) }),
  });
}

function progressRunningTool(d: Draft, step: StepRecord): void {
  const tool = d.tools.find((t) => t.name === step.tool);
  const pod = step.podName ? d.o.pods.get(step.podName) : undefined;
  if (!tool) return; // cannot happen: unknown tools never get a pod
  if (!pod) {
    // Intent recorded, pod never seen: the process died before creating it. Creating is idempotent.
    createPodFor(d, step, tool);
    return;
  }
  if (pod.terminated || pod.phase === 'Succeeded' || (pod.phase === 'Failed' && pod.started)) {
    collectToolResult(d, step, tool, pod);
    return;
  }
  if (pod.exists && !pod.deleting && pod.phase !== 'Failed') return; // still pending or running
  if (pod.exists && pod.deleting) return; // wait until it is gone, then classify
  retryOrGiveUp(d, step, tool, pod);
}

/** A pod that failed before its tool ran, or vanished: retry when safe, else tell the model. */
function retryOrGiveUp(d: Draft, step: StepRecord, tool: ResolvedTool, pod: PodObservation): void {
  const mayHaveRun = pod.started;
  const safeToRetry = !mayHaveRun || tool.idempotent;
  const what = pod.exists ? `failed before its tool ran (${pod.reason ?? 'unknown reason'}${pod.message ? `: ${pod.message}` : ''})` : 'was deleted, or its node was lost';
  if (safeToRetry && step.attempt <= tool.retries) {
    event(d, 'Warning', 'ToolRetrying', `Step ${step.id} (${tool.name}): pod ${pod.name} ${what}; starting attempt ${step.attempt + 1}.`);
    if (pod.exists) d.effects.push({ type: 'deletePod', name: pod.name });
    step.attempt += 1;
    createPodFor(d, step, tool);
    return;
  }
  const output = !safeToRetry
    ? `Error: the tool pod ${what} while the tool was running. The tool is not idempotent, so it was not run again; it may or may not have had its effect.`
    : `Error: the tool pod ${what} on each of ${step.attempt} attempts; giving up.`;
  recordToolResult(d, step, { isError: true, outcome: safeToRetry ? StepOutcome.RetriesExhausted : StepOutcome.PodLost, output });
}

function collectToolResult(d: Draft, step: StepRecord, tool: ResolvedTool, pod: PodObservation): void {
  const oom = pod.terminated?.reason === 'OOMKilled';
  if (oom && tool.idempotent && step.attempt <= tool.retries) { retryOrGiveUp(d, step, tool, { ...pod, started: true }); return; }
  const output = d.o.toolOutputs.get(step.id);
  const finishedAt = pod.terminated?.finishedAt ? Date.parse(pod.terminated.finishedAt) : d.o.now;
  let text: string;
  let truncated = false;
  if (output?.ok) {
    text = output.text;
    truncated = output.truncated;
    // A tool that writes a termination message on success returns that instead of its log.
    if (pod.terminated?.exitCode === 0 && pod.terminated.message) text = pod.terminated.message;
  } else if (d.o.now - finishedAt < RESULT_CAPTURE_GRACE_MS) {
    d.waiting = `output of pod ${pod.name}`;
    requeueAt(d, d.o.now + 2000);
    return;
  } else if (pod.terminated?.message) {
    text = pod.terminated.message;
  } else {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.ResultUnavailable, exitCode: pod.terminated?.exitCode,
      output: `Error: the tool finished but its output could not be read (${output ? output.error : 'no output'}).` });
    return;
  }
  const limit = d.spec.limits.maxToolOutputBytes;
  if (text.length > limit) { text = text.slice(0, limit); truncated = true; }
  if (truncated) text += `\n[output truncated to the first ${limit} bytes]`;
  const exitCode = pod.terminated?.exitCode;
  if (pod.reason === 'DeadlineExceeded' || (exitCode === undefined && pod.phase === 'Failed')) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.TimedOut, truncated,
      output: `Error: the tool did not finish within its timeout (${tool.timeoutSeconds}s) and was stopped.${text ? `\nOutput so far:\n${text}` : ''}` });
    return;
  }
  if (oom) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.PodLost, exitCode, truncated,
      output: `Error: the tool ran out of memory and was killed.${text ? `\nOutput so far:\n${text}` : ''}` });
    return;
  }
  recordToolResult(d, step, exitCode === 0
    ? { isError: false, outcome: StepOutcome.Completed, exitCode, truncated, output: text }
    : { isError: true, outcome: StepOutcome.ToolError, exitCode, truncated, output: `Error: the tool exited with code ${exitCode ?? 'unknown'}.\n${text}` });
}

function recordToolResult(d: Draft, step: StepRecord, r: Pick<ToolResultEntry, 'isError' | 'outcome' | 'output'> & { exitCode?: number | undefined; truncated?: boolean }): void {
  const entry: ToolResultEntry = {
    kind: 'ToolResult', stepId: step.id, tool: step.tool ?? '', toolUseId: step.toolUseId ?? '', attempt: step.attempt,
    output: r.output, isError: r.isError, outcome: r.outcome, truncated: r.truncated ?? false,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(step.podName ? { podName: step.podName } : {}),
  };
  completeToolStep(d, step, entry, journal(d, journalName(d.o.run.metadata.name, step.id), step.id, entry));
}

function completeToolStep(d: Draft, step: StepRecord, entry: ToolResultEntry, digest: string): void {
  step.phase = entry.isError ? 'Failed' : 'Succeeded';
  step.outcome = entry.outcome;
  step.attempt = entry.attempt;
  step.finishedAt = now(d);
  step.startedAt ??= step.finishedAt;
  step.journal = { configMap: journalName(d.o.run.metadata.name, step.id), digest };
  if (entry.exitCode !== undefined) step.message = `exit code ${entry.exitCode}${entry.truncated ? ', output truncated' : ''}`;
  const pod = step.podName ? d.o.pods.get(step.podName) : undefined;
  if (pod?.exists && !pod.deleting) d.effects.push({ type: 'deletePod', name: pod.name });
  event(d, entry.isError ? 'Warning' : 'Normal', entry.isError ? 'ToolFailed' : 'ToolSucceeded',
    `Step ${step.id} (${entry.tool}) ${entry.outcome}${entry.exitCode !== undefined ? ` with exit code ${entry.exitCode}` : ''}.`);
}

function toolInputOf(d: Draft, step: StepRecord): unknown {
  for (const { entry } of d.journal.values()) {
    if (entry.kind !== 'ModelResponse' || entry.turn !== step.turn) continue;
    const use = entry.response.content.find((b) => b.type === 'tool_use' && b.id === step.toolUseId);
    if (use) return use.input;
  }
  return undefined;
}

// ---- next step ----

function startNextStep(d: Draft): void {
  if (d.status.steps.some((s) => !isStepDone(s))) return;
  if (d.spec.suspend) return;
  const turnsDone = d.status.steps.filter((s) => s.kind === 'Model' && s.phase === 'Succeeded').length;
  const exhausted = exhaustedLimit(d.spec, turnsDone, d.status.usage?.totalTokens ?? 0);
  if (exhausted) { finish(d, 'Failed', exhausted.reason, exhausted.message); return; }
  const step: StepRecord = { id: nextStepId(d), kind: 'Model', turn: turnsDone + 1, phase: 'Running', attempt: 1, startedAt: now(d) };
  d.status.steps.push(step);
  startModelCall(d, step);
}

// ---- conclusion: derived fields, conditions, size budget ----

function conclude(d: Draft): Decision {
  const s = d.status;
  s.phase = phaseOf(s, d.spec);
  const inFlight = s.steps.filter((st) => !isStepDone(st));
  if (inFlight.length > 0) s.currentStep = describeSteps(inFlight);
  else delete s.currentStep;
  delete s.waitingFor;
  if (!isFinished(s)) {
    const waiting = d.waiting ?? waitingFor(d, inFlight);
    if (waiting !== undefined) s.waitingFor = waiting;
    const { reason, message } = d.hold ?? holdOf(d, inFlight, waiting);
    s.message = message;
    setCondition(d, ConditionType.Succeeded, 'Unknown', reason, message);
  }
  const status = fitBudget(d);
  return { status, effects: d.effects, ...(d.requeueAfterMs !== undefined ? { requeueAfterMs: Math.max(0, d.requeueAfterMs) } : {}) };
}

/** Why an unfinished run is where it is, for its Succeeded condition and message. */
function holdOf(d: Draft, inFlight: readonly StepRecord[], waiting: string | undefined): { reason: Reason; message: string } {
  if (d.status.phase === 'Suspended') return { reason: Reason.Suspended, message: 'Suspended: nothing new starts until spec.suspend is false.' };
  const retrying = inFlight.find((st) => st.kind === 'Model' && st.retry?.nextRetryAt);
  if (retrying?.retry) {
    return { reason: Reason.ModelRetrying,
      message: `Model call failed (${retrying.retry.errorClass}: ${truncate(retrying.retry.errorMessage, 200)}); attempt ${retrying.attempt} at ${retrying.retry.nextRetryAt ?? ''}.` };
  }
  return { reason: Reason.Running, message: `Turn ${d.status.currentTurn ?? 0}: waiting for ${waiting ?? 'the next step'}.` };
}

function waitingFor(d: Draft, inFlight: readonly StepRecord[]): string | undefined {
  if (inFlight.length === 0) return d.spec.suspend ? 'spec.suspend=false' : undefined;
  const model = inFlight.find((s) => s.kind === 'Model');
  if (model) return model.retry?.nextRetryAt ? `model retry (${model.retry.errorClass})` : 'model response';
  const tools = inFlight.filter((s) => s.kind === 'Tool').map((s) => s.tool ?? '?');
  return `tools: ${[...new Set(tools)].join(', ')}`;
}

function describeSteps(steps: readonly StepRecord[]): string {
  const first = steps[0];
  if (!first) return '';
  const label = first.kind === 'Model' ? `${first.id} model` : `${first.id} tool/${first.tool ?? '?'}`;
  return steps.length > 1 ? `${label} (+${steps.length - 1})` : label;
}

/** Keeps the status under its byte budget: a run that cannot fit fails loudly instead of looping. */
function fitBudget(d: Draft): AgentRunStatus {
  const size = JSON.stringify(d.status).length;
  if (size <= d.o.statusByteBudget) return d.status;
  const message = `The run's status would be ${size} bytes, over its budget of ${d.o.statusByteBudget}; the run was stopped. Lower limits.maxTurns or use fewer tool calls per run.`;
  if (!d.finished) finish(d, 'Failed', Reason.StatusTooLarge, message);
  // Keep the newest step records; the journal ConfigMaps still hold every step.
  const keep = Math.max(10, Math.floor(d.status.steps.length / 4));
  return { ...d.status, phase: 'Failed', message, steps: d.status.steps.slice(-keep) };
}

// ---- small helpers ----

/** Asks for an entry to be journaled before the status write; returns its digest. */
function journal(d: Draft, name: string, stepId: number | undefined, entry: JournalEntry): string {
  const digest = `sha256:${d.o.hash(serializeEntry(entry))}`;
  d.effects.push({ type: 'writeJournal', name, ...(stepId !== undefined ? { stepId } : {}), entry, digest });
  if (stepId !== undefined) d.journal.set(stepId, { entry, digest });
  return digest;
}

function event(d: Draft, eventType: 'Normal' | 'Warning', reason: string, message: string): void {
  d.effects.push({ type: 'event', eventType, reason, message });
}

function requeueAt(d: Draft, atMs: number): void {
  const after = Math.max(0, atMs - d.o.now);
  d.requeueAfterMs = d.requeueAfterMs === undefined ? after : Math.min(d.requeueAfterMs, after);
}

function setCondition(d: Draft, type: string, status: Condition['status'], reason: string, message: string): void {
  const conditions = d.status.conditions ?? [];
  const existing = conditions.find((c) => c.type === type);
  const transitioned = existing?.status !== status;
  const next: Condition = {
    type, status, reason, message: truncate(message, 32_768),
    lastTransitionTime: existing && !transitioned ? existing.lastTransitionTime : now(d),
    ...(d.o.run.metadata.generation !== undefined ? { observedGeneration: d.o.run.metadata.generation } : {}),
  };
  d.status.conditions = [...conditions.filter((c) => c.type !== type), next];
}

function now(d: Draft): string {
  return new Date(d.o.now).toISOString();
}

function nextStepId(d: Draft): number {
  return (d.status.steps.at(-1)?.id ?? 0) + 1;
}

function stepIdOf(entry: JournalEntry): number {
  return entry.kind === 'Tools' ? 0 : entry.stepId;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function emptyUsage(): TokenUsage {
  return { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, totalTokens: 0 };
}

function usageOf(u: ModelResponseEntry['response']['usage']): TokenUsage {
  const usage = {
    inputTokens: u.input_tokens, outputTokens: u.output_tokens,
    cacheReadInputTokens: u.cache_read_input_tokens ?? 0, cacheCreationInputTokens: u.cache_creation_input_tokens ?? 0,
  };
  return { ...usage, totalTokens: usage.inputTokens + usage.outputTokens + usage.cacheReadInputTokens + usage.cacheCreationInputTokens };
}

function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens,
    cacheReadInputTokens: a.cacheReadInputTokens + b.cacheReadInputTokens,
    cacheCreationInputTokens: a.cacheCreationInputTokens + b.cacheCreationInputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}
