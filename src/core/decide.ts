/**
 * decide(observed) → { status, effects, requeueAfterMs }: the whole agent loop as a pure function.
 * It performs nothing; the reconciler executes the effects in the order effects.ts documents.
 *
 * Guards run in a fixed order, Tekton-style: deleted → finished → cancelled → deadline →
 * tools resolvable → in-flight steps → next step. The parts live beside it: lifecycle.ts,
 * model-steps.ts, tool-steps.ts and approvals.ts, all working on one Draft (draft.ts).
 */
import type { AgentRunStatus, StepRecord } from '../api/agent-run.ts';
import { approveKey } from '../api/approval.ts';
import { ConditionType, FINALIZER, Reason } from '../api/conditions.ts';
import type { Decision, Effect } from './effects.ts';
import { isFinished, isStepDone, moveStep, phaseOf } from './machine.ts';
import { toolsJournalName } from './naming.ts';
import type { Observed } from './observed.ts';
import { exhaustedLimit, extensionOffer, runDeadline } from './policies.ts';
import { resolveTools } from './tools.ts';
import { describeRequirement } from './access.ts';
import { CREATED_BY_USER } from '../api/creator.ts';
import { endpointRefusal } from '../api/model-endpoint.ts';
import { toolSchemaProblem } from './tool-input.ts';
import { MAX_JOURNAL_ENTRY_BYTES, journalEntryBytes } from './caps.ts';
import type { ResolvedTool } from '../api/journal-entry.ts';
import { STATUS_MESSAGE_MAX, event, journal, journalAnswer, nextStepId, now, requeueAt, setCondition, truncate,
  type Draft } from './draft.ts';
import { extensionsOf, progressApprovals, requestApproval, type AfterDecision } from './approvals.ts';
import { afterFinish, finalizeDeletion, finish, start } from './lifecycle.ts';
import { progressModelStep, startModelCall } from './model-steps.ts';
import { progressToolSteps, recordToolResult } from './tool-steps.ts';
import { waitForMCPServers } from './mcp-wait.ts';

export { OUTPUT_READ_RECHECK_MS, RESULT_CAPTURE_GRACE_MS } from './tool-steps.ts';

/** What a human's decision leads to: approvals.ts decides, the step modules carry it out. */
const AFTER_DECISION: AfterDecision = {
  callModel: startModelCall,
  tellModel: recordToolResult,
  failRun: (d, reason, message) => {
    finish(d, 'Failed', reason, message);
  },
};

/**
 * Decides what a run does next from what was observed: the new status, the effects to carry out in
 * order, and when to look again. Pure: it executes nothing.
 */
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
    journalChars: 0,
    answer: undefined,
    calledWithAnswer: new Set(),
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
  const problem = d.o.journalProblems?.[0];
  if (problem) {
    finish(d, 'Failed', problem.reason,
      `${problem.problem}. Nothing from it was used; the run stopped because it cannot prove its own history. `
        + 'Only the operator may write AgentRunJournals: see docs/security.md, and check who wrote the object '
        + '(kubectl get agentrunjournal -o yaml).');
    return conclude(d);
  }
  if (!accessGranted(d)) return conclude(d);
  const deadline = runDeadline(d.spec, d.status.startTime ?? now(d));
  if (o.now >= deadline) {
    finish(d, 'Failed', Reason.DeadlineExceeded,
      `The run did not finish within limits.timeout (${d.spec.limits.timeout}). Raise the limit or narrow the task.`);
    return conclude(d);
  }
  requeueAt(d, deadline);
  if (o.writeRejected) {
    const { what, message } = o.writeRejected;
    finish(d, 'Failed', Reason.WriteRejected,
      `The apiserver refused ${what} (${truncate(message, 400)}); the same write cannot succeed, `
        + 'so the run was stopped.');
    return conclude(d);
  }

  if (!endpointUsable(d) || !resolveRunTools(d)) return conclude(d);

  // A journal ahead of status (a status written behind its decisions, then a restart) is read back
  // turn by turn: a new model step whose answer is journaled is that answer, not a new call.
  // Each pass past the first reads back one journaled answer, so there are at most as many.
  for (let pass = 0; pass <= d.o.journal.size; pass++) {
    progressModelStep(d);
    if (!d.finished) progressApprovals(d, AFTER_DECISION);
    if (!d.finished) progressToolSteps(d);
    if (d.finished || startNextStep(d) !== 'read-back') break;
  }
  journalAnswer(d); // now that the MCP calls starting with it are known
  return conclude(d);
}

/**
 * The run's creator may use everything the run references (checked by the apiserver), or the run
 * fails saying what is missing.
 */
function accessGranted(d: Draft): boolean {
  const access = d.o.access;
  if (access?.state === 'unknown-creator') {
    finish(d, 'Failed', Reason.CreatorUnknown,
      `No admission policy recorded who created this run (annotation ${CREATED_BY_USER}), so it may not use `
        + 'any Secret or ModelEndpoint: install crds/agentrun.dev_creator-policies.yaml (Kubernetes 1.36+) '
        + 'and create the run again, or run the operator with --require-creator-identity=false.');
    return false;
  }
  if (access?.state !== 'denied') return true;
  const missing = access.denied.map((r) => `${describeRequirement(r)} (for ${r.why})`).join(', ');
  finish(d, 'Failed', Reason.AccessDenied,
    `The run's creator ${access.user} may not ${missing} in namespace ${d.o.run.metadata.namespace}; `
      + 'a run can do nothing its creator could not. Ask an admin to grant that permission '
      + '(see docs/security.md), then create the run again.');
  return false;
}

/** The referenced ModelEndpoint exists and allows the run's model; otherwise wait for it or fail. */
function endpointUsable(d: Draft): boolean {
  const endpoint = d.o.modelEndpoint;
  const name = d.spec.model.endpointRef.name;
  if (!endpoint) {
    const message = `Waiting for ModelEndpoint ${name} in namespace ${d.o.run.metadata.namespace}: `
      + 'ask an admin to create it, or fix spec.model.endpointRef.';
    if (d.status.message !== message) event(d, 'Warning', Reason.WaitingForModelEndpoint, message);
    d.waiting = `ModelEndpoint ${name}`;
    d.hold = { reason: Reason.WaitingForModelEndpoint, message };
    requeueAt(d, d.o.now + 30_000);
    return false;
  }
  const refusal = endpointRefusal(endpoint, d.spec.model.name, d.spec.model.maxTokens);
  if (refusal === undefined) return true;
  finish(d, 'Failed', Reason.ModelNotAllowed,
    `ModelEndpoint ${name}: ${refusal}. Use a model the endpoint allows, or ask its admin.`);
  return false;
}

function resolveRunTools(d: Draft): boolean {
  const name = toolsJournalName(d.o.run.metadata.name);
  if (d.o.toolSnapshot) {
    d.tools = d.o.toolSnapshot.tools;
    // Written by a process that died before recording it: status adopts the stored entry.
    d.status.toolsJournal ??= { name, digest: d.o.toolSnapshot.digest };
    return true;
  }
  const resolution = resolveTools(d.spec, d.o.agentTools, d.o.mcpServers);
  if (!resolution.ok && resolution.problem !== undefined) {
    finish(d, 'Failed', Reason.InvalidToolDefinition, `${resolution.problem} The model was not called.`);
    return false;
  }
  if (!resolution.ok && resolution.missing.length === 0) return waitForMCPServers(d, resolution.waiting ?? []);
  if (!resolution.ok) {
    const names = resolution.missing.join(', ');
    const message =
      `Waiting for AgentTool ${names} in namespace ${d.o.run.metadata.namespace}: create it, or fix the toolRef.`;
    if (d.status.message !== truncate(message, STATUS_MESSAGE_MAX))
      event(d, 'Warning', Reason.WaitingForAgentTool, message);
    d.waiting = `AgentTool ${names}`;
    d.hold = { reason: Reason.WaitingForAgentTool, message };
    requeueAt(d, d.o.now + 30_000);
    return false;
  }
  const invalid = invalidToolDefinition(resolution.tools);
  if (invalid !== undefined) {
    // Before the first model call: a broken schema would otherwise be blamed on the model's input.
    finish(d, 'Failed', Reason.InvalidToolDefinition, invalid);
    return false;
  }
  d.tools = resolution.tools;
  // Journaled once, so an AgentTool edited mid-run cannot change a run that already started.
  d.status.toolsJournal = { name, digest: journal(d, name, undefined, { kind: 'Tools', tools: resolution.tools }) };
  return true;
}

/** Why the run's tool definitions cannot be used, naming the tool and the schema error; undefined when they can. */
function invalidToolDefinition(tools: readonly ResolvedTool[]): string | undefined {
  for (const tool of tools) {
    const problem = toolSchemaProblem(tool.inputSchema);
    if (problem === undefined) continue;
    const where = tool.source ? `AgentTool ${tool.source} (tool ${tool.name})` : `tool ${tool.name}`;
    return `The inputSchema of ${where} is not a valid JSON Schema for tool input: ${truncate(problem, 600)}. `
      + 'Fix that inputSchema; the model was not called.';
  }
  const bytes = journalEntryBytes({ kind: 'Tools', tools: [...tools] });
  if (bytes > MAX_JOURNAL_ENTRY_BYTES) {
    return `The run's tool definitions are ${bytes} bytes as a journal entry, over the ${MAX_JOURNAL_ENTRY_BYTES} `
      + "bytes one entry may hold. Shorten the tools' descriptions and inputSchemas, or use fewer tools.";
  }
  return undefined;
}

/** Starts the next model step when every step is done; 'read-back' when its answer is already journaled. */
function startNextStep(d: Draft): 'read-back' | undefined {
  if (d.status.steps.some((s) => !isStepDone(s))) return undefined;
  if (d.spec.suspend) return undefined;
  const turnsDone = d.status.steps.filter((s) => s.kind === 'Model' && s.phase === 'Succeeded').length;
  const exhausted = exhaustedLimit(d.spec, turnsDone, d.status.usage?.totalTokens ?? 0, extensionsOf(d));
  if (exhausted && d.spec.limits.onExhausted !== 'AskForApproval') {
    finish(d, 'Failed', exhausted.reason, exhausted.message);
    return undefined;
  }
  const step: StepRecord = { id: nextStepId(d), kind: 'Model', turn: turnsDone + 1, phase: 'Pending', attempt: 1 };
  d.status.steps.push(step);
  if (exhausted) {
    // The run asks a human to extend its limits instead of failing (limits.onExhausted).
    requestApproval(d, step, 'Budget', `${exhausted.message} Approving grants ${extensionOffer(d.spec)}.`);
    return undefined;
  }
  moveStep(step, 'Running');
  step.startedAt = now(d);
  if (d.o.journal.get(step.id)?.entry.kind === 'ModelResponse') return 'read-back';
  startModelCall(d, step);
  return undefined;
}

function conclude(d: Draft): Decision {
  const s = d.status;
  s.phase = phaseOf(s, d.spec);
  const inFlight = s.steps.filter((st) => !isStepDone(st));
  if (inFlight.length > 0) s.currentStep = truncate(describeSteps(inFlight), 128);
  else delete s.currentStep;
  delete s.waitingFor;
  if (!isFinished(s) && s.startTime) {
    const pending = s.pendingApprovals ?? [];
    if (pending.length > 0) {
      const steps = pending.map((p) => `step ${p.step}${p.kind === 'Tool' ? ` (${p.tool})` : ' (budget extension)'}`);
      setCondition(d, ConditionType.AwaitingApproval, 'True', Reason.ApprovalRequired,
        `Waiting for a decision on ${steps.join(', ')}.`);
    } else {
      setCondition(d, ConditionType.AwaitingApproval, 'False', Reason.NoApprovalPending,
        'No step waits for a decision.');
    }
  }
  if (!isFinished(s)) {
    const waiting = d.waiting ?? waitingFor(d, inFlight);
    if (waiting !== undefined) s.waitingFor = truncate(waiting, 256);
    const { reason, message } = d.hold ?? holdOf(d, inFlight, waiting);
    s.message = truncate(message, STATUS_MESSAGE_MAX);
    setCondition(d, ConditionType.Succeeded, 'Unknown', reason, message);
  }
  const status = fitBudget(d);
  return { status, effects: d.effects,
    ...(d.requeueAfterMs !== undefined ? { requeueAfterMs: Math.max(0, d.requeueAfterMs) } : {}) };
}

/** Why an unfinished run is where it is, for its Succeeded condition and message. */
function holdOf(d: Draft, inFlight: readonly StepRecord[],
  waiting: string | undefined): { reason: Reason; message: string } {
  if (d.status.phase === 'Suspended')
    return { reason: Reason.Suspended, message: 'Suspended: nothing new starts until spec.suspend is false.' };
  const pending = d.status.pendingApprovals ?? [];
  if (pending.length > 0) {
    const { name, namespace } = d.o.run.metadata;
    const steps = pending.map((p) => p.step).join(', ');
    const annotation = approveKey(pending[0]?.step ?? 0);
    return { reason: Reason.ApprovalRequired,
      message: `Waiting for a decision on step ${steps}: kubectl agentrun approve ${name} -n ${namespace} `
        + `(or kubectl annotate agentrun ${name} ${annotation}=<comment>).` };
  }
  const retrying = inFlight.find((st) => st.kind === 'Model' && st.retry?.nextRetryAt);
  if (retrying?.retry) {
    return { reason: Reason.ModelRetrying,
      message: `Model call failed (${retrying.retry.errorClass}: ${truncate(retrying.retry.errorMessage, 200)}); `
        + `attempt ${retrying.attempt} at ${retrying.retry.nextRetryAt ?? ''}.` };
  }
  return { reason: Reason.Running,
    message: `Turn ${d.status.currentTurn ?? 0}: waiting for ${waiting ?? 'the next step'}.` };
}

function waitingFor(d: Draft, inFlight: readonly StepRecord[]): string | undefined {
  if (inFlight.length === 0) return d.spec.suspend ? 'spec.suspend=false' : undefined;
  const pending = d.status.pendingApprovals ?? [];
  if (pending.length > 0) {
    const steps = pending.map((p) => `step ${p.step}${p.kind === 'Tool' ? ` (${p.tool})` : ' (budget)'}`);
    return `approval: ${steps.join(', ')}`;
  }
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

/** Effects that start work a run stopped in the same decision must not start. */
const STARTS_WORK: ReadonlySet<Effect['type']> = new Set(['createPod', 'startModelCall', 'startMCPCall']);

/** Keeps the status under its byte budget: a run that cannot fit fails loudly instead of looping. */
function fitBudget(d: Draft): AgentRunStatus {
  const size = new TextEncoder().encode(JSON.stringify(d.status)).length;
  if (size <= d.o.statusByteBudget) return d.status;
  // Keep the newest step records; the journal ConfigMaps still hold every step.
  const keep = Math.max(10, Math.floor(d.status.steps.length / 4));
  // A run that ended in this decision keeps its outcome: its status grows no more.
  if (d.finished) return { ...d.status, steps: d.status.steps.slice(-keep) };
  const message = `The run's status would be ${size} bytes, over its budget of ${d.o.statusByteBudget}; `
    + 'the run was stopped. Lower limits.maxTurns or use fewer tool calls per run.';
  // The run ends in this decision: nothing it meant to start may start, nothing is in flight.
  const kept = d.effects.filter((e) => !STARTS_WORK.has(e.type));
  d.effects.splice(0, d.effects.length, ...kept);
  finish(d, 'Failed', Reason.StatusTooLarge, message);
  delete d.status.currentStep;
  delete d.status.waitingFor;
  return { ...d.status, steps: d.status.steps.slice(-keep) };
}
