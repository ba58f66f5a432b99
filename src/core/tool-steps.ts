/** Tool steps: validate the call, run it in a pod, classify how the pod ended, journal the result. */
import type { StepRecord } from '../api/agent-run.ts';
import { StepOutcome } from '../api/conditions.ts';
import type { ResolvedTool, ToolResultEntry } from '../api/journal-entry.ts';
import { isStepDone, moveStep } from './machine.ts';
import { journalName, toolPodName } from './naming.ts';
import type { PodObservation } from './observed.ts';
import { toolInputProblem } from './tool-input.ts';
import { fitToolOutput } from './caps.ts';
import { buildToolPod } from './tool-pod.ts';
import { DECISION_JOURNAL_BUDGET_CHARS, event, journal, now, requeueAt, truncate, type Draft } from './draft.ts';
import { requestApproval } from './approvals.ts';
import { settlePod } from './lifecycle.ts';
import { adoptCalledWithAnswer, isMCPTool, progressMCPCall, startMCPCall } from './mcp-steps.ts';

/** How long a finished pod's output may stay unreadable before the step gives up on it. */
export const RESULT_CAPTURE_GRACE_MS = 120_000;
/** While a log read is in flight its completion enqueues the run; this is only a safety net. */
export const OUTPUT_READ_RECHECK_MS = 30_000;

/**
 * Tool pods one decision may start; a run allowed 32 parallel tools starts them 8 per turn of
 * the queue (requeued at once), so its burst does not hold the connection every run shares.
 */
export const DECISION_POD_BUDGET = 8;

/** Moves every unfinished tool step on, starting at most DECISION_POD_BUDGET pods per decision. */
export function progressToolSteps(d: Draft): void {
  let running = d.status.steps.filter((s) => s.kind === 'Tool' && s.phase === 'Running').length;
  let started = 0;
  for (const step of d.status.steps) {
    if (step.kind !== 'Tool' || isStepDone(step)) continue;
    const recorded = d.o.journal.get(step.id);
    if (recorded?.entry.kind === 'ToolResult') {
      if (step.phase === 'Running') running--;
      completeToolStep(d, step, recorded.entry, recorded.digest);
      continue;
    }
    if (step.phase === 'Pending') {
      const tool = d.calledWithAnswer.has(step.id) ? d.tools.find((t) => t.name === step.tool) : undefined;
      if (tool && isMCPTool(tool)) {
        adoptCalledWithAnswer(d, step, tool);
        if (!isStepDone(step)) running++;
        continue;
      }
      if (d.spec.suspend || running >= d.spec.limits.maxParallelTools) continue;
      if (started >= DECISION_POD_BUDGET) {
        requeueAt(d, d.o.now);
        continue;
      }
      if (startToolStep(d, step)) {
        running++;
        started++;
      }
      continue;
    }
    if (step.phase === 'Running') {
      if (d.o.toolOutputs.has(step.id) && d.journalChars >= DECISION_JOURNAL_BUDGET_CHARS) {
        // Its output is read; it is recorded in the next reconcile, after the other runs' turn.
        requeueAt(d, d.o.now);
        continue;
      }
      progressRunningTool(d, step);
      if (isStepDone(step)) running--; // its slot is free for a Pending step later in the list
    }
  }
}

/** Validates the call and starts its first pod; returns true when a pod was requested. */
export function startToolStep(d: Draft, step: StepRecord): boolean {
  const tool = d.tools.find((t) => t.name === step.tool);
  if (!tool) {
    const known = d.tools.map((t) => t.name).join(', ') || 'none';
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.UnknownTool,
      output: `Error: there is no tool named "${step.tool ?? ''}". Available tools: ${known}.` });
    return false;
  }
  const problem = toolInputProblem(tool.inputSchema, toolInputOf(d, step));
  if (problem !== undefined) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.InvalidInput,
      output: `Error: the input does not match the tool's inputSchema: ${problem}` });
    return false;
  }
  if (tool.requiresApproval && !step.approval) {
    requestApproval(d, step, 'Tool', JSON.stringify(toolInputOf(d, step) ?? {}));
    return false;
  }
  moveStep(step, 'Running');
  step.startedAt = now(d);
  if (isMCPTool(tool)) startMCPCall(d, step, tool, d.answer?.toolSteps.has(step.id) === true);
  else createPodFor(d, step, tool);
  return true;
}

/** Asks for the pod of the step's current attempt; its name derives from the step, so a repeated create is harmless. */
export function createPodFor(d: Draft, step: StepRecord, tool: ResolvedTool): void {
  const { name, namespace, uid } = d.o.run.metadata;
  if (!tool.container) return; // an MCP tool: never a pod
  step.podName = toolPodName(name, step.id, step.attempt);
  d.effects.push({
    type: 'createPod',
    stepId: step.id,
    pod: buildToolPod({ run: { name, namespace, uid, spec: d.spec }, stepId: step.id, attempt: step.attempt,
      podName: step.podName, tool: { ...tool, container: tool.container }, input: toolInputOf(d, step) }),
  });
}

/** Follows a running tool call: its pod (or MCP call) until a result is recorded, retried, or given up. */
export function progressRunningTool(d: Draft, step: StepRecord): void {
  const tool = d.tools.find((t) => t.name === step.tool);
  if (tool && isMCPTool(tool)) {
    progressMCPCall(d, step, tool);
    return;
  }
  const pod = step.podName ? d.o.pods.get(step.podName) : undefined;
  if (!tool) return; // cannot happen: unknown tools never get a pod
  if (!pod) {
    const refused = step.podName ? d.o.rejectedPods?.get(step.podName) : undefined;
    if (refused !== undefined) {
      // Creating it again would be refused again: the model is told, the run goes on.
      recordToolResult(d, step, { isError: true, outcome: StepOutcome.PodRejected,
        output: `Error: the tool's pod could not be created; the cluster refused it (${refused}). `
          + 'The tool definition needs fixing; calling it again will fail the same way.' });
      return;
    }
    // Intent recorded, pod never seen: the process died before creating it. Creating is idempotent.
    createPodFor(d, step, tool);
    return;
  }
  if (pod.interrupted || (pod.deleting && pod.disrupted) || !pod.exists) {
    // Killed by a deletion or lost with its node, not ended by itself. The pod finalizer kept it
    // around until now, so this is seen even when it happened while the operator was down.
    retryOrGiveUp(d, step, tool, pod);
    return;
  }
  if (pod.terminated || pod.phase === 'Succeeded' || (pod.phase === 'Failed' && pod.started)) {
    collectToolResult(d, step, tool, pod);
    return;
  }
  if (pod.deleting) return; // deleted while running: wait for its container to stop, then classify
  if (!pod.started && pod.phase === 'Pending' && cannotStart(d, step, tool, pod)) return;
  if (pod.phase !== 'Failed') return; // still pending or running
  retryOrGiveUp(d, step, tool, pod);
}

/** Kubelet waiting reasons that say the image cannot be pulled; they do not clear by themselves. */
export const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'RegistryUnavailable',
]);
/** Kubelet waiting reasons of a container whose config cannot be made (a missing Secret or key). */
const CONFIG_REASONS = new Set(['CreateContainerConfigError']);
/**
 * The runtime refused to start the container (e.g. its command is missing). containerd reports
 * it as a StartError termination; a kubelet that shows it as a waiting reason will not start this
 * pod again (restartPolicy Never), so it is a pod that failed before its tool ran.
 */
const RUN_REASONS = new Set(['RunContainerError']);

/**
 * A pending pod whose container cannot start ends the step at once (nothing ran, so nothing to
 * undo): waiting out the tool's timeout would tell the model "timed out" about a typo in an image
 * name. A pod no node can take stays (capacity may come) and says why. Returns true when handled.
 */
function cannotStart(d: Draft, step: StepRecord, tool: ResolvedTool, pod: PodObservation): boolean {
  const waiting = pod.waiting;
  const detail = waiting ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : '';
  if (waiting && IMAGE_PULL_REASONS.has(waiting.reason)) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.ImagePullFailed,
      output: `Error: the tool's image "${tool.container?.image ?? ''}" could not be pulled (${detail}); `
        + 'the tool did not run.' });
    return true;
  }
  if (waiting && CONFIG_REASONS.has(waiting.reason)) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.ContainerConfigError,
      output: `Error: the tool's container could not be configured (${detail}); the tool did not run.` });
    return true;
  }
  if (waiting && RUN_REASONS.has(waiting.reason)) {
    retryOrGiveUp(d, step, tool, { ...pod, reason: waiting.reason,
      ...(waiting.message ? { message: waiting.message } : {}) });
    return true;
  }
  if (pod.unschedulable !== undefined) {
    d.waiting = `pod ${pod.name} to be scheduled (Unschedulable: ${pod.unschedulable})`;
    return true;
  }
  return false;
}

/** A pod that failed before its tool ran, or vanished: retry when safe, else tell the model. */
export function retryOrGiveUp(d: Draft, step: StepRecord, tool: ResolvedTool, pod: PodObservation): void {
  const mayHaveRun = pod.started;
  const safeToRetry = !mayHaveRun || tool.idempotent;
  const what = pod.exists && !pod.deleting && !pod.interrupted
    ? `failed before its tool ran (${pod.reason ?? 'unknown reason'}${pod.message ? `: ${pod.message}` : ''})`
    : `was deleted${pod.disrupted ? ' because its node was lost' : ''}`;
  if (safeToRetry && step.attempt <= tool.retries) {
    event(d, 'Warning', 'ToolRetrying',
      `Step ${step.id} (${tool.name}): pod ${pod.name} ${what}; starting attempt ${step.attempt + 1}.`);
    settlePod(d, pod);
    step.attempt += 1;
    createPodFor(d, step, tool);
    return;
  }
  const output = !safeToRetry
    ? `Error: the tool pod ${what} while the tool was running. The tool is not idempotent, so it was not run again; `
      + 'it may or may not have had its effect.'
    : `Error: the tool pod ${what} on each of ${step.attempt} attempts; giving up.`;
  recordToolResult(d, step, { isError: true, outcome: safeToRetry ? StepOutcome.RetriesExhausted : StepOutcome.PodLost,
    output });
}

/** Turns an ended pod's exit code and output into the step's result, or retries a call killed for memory. */
export function collectToolResult(d: Draft, step: StepRecord, tool: ResolvedTool, pod: PodObservation): void {
  const oom = pod.terminated?.reason === 'OOMKilled';
  if (oom && tool.idempotent && step.attempt <= tool.retries) {
    retryOrGiveUp(d, step, tool, { ...pod, started: true });
    return;
  }
  const output = d.o.toolOutputs.get(step.id);
  const finishedAt = pod.terminated?.finishedAt ? Date.parse(pod.terminated.finishedAt) : d.o.now;
  let text: string;
  let truncated = false;
  if (output?.ok) {
    text = output.text;
    truncated = output.truncated;
    // A tool that writes a termination message on success returns that instead of its log.
    if (pod.terminated?.exitCode === 0 && pod.terminated.message) text = pod.terminated.message;
  } else if (!pod.terminated) {
    // No container reported an end, so there is no log to wait for: the pod's phase says what happened.
    text = '';
  } else if (output === undefined) {
    // The log is being read (off the reconcile path) and the read enqueues the run when it is done.
    // Status is left as it is: saying so would cost a write for a wait of milliseconds.
    requeueAt(d, d.o.now + OUTPUT_READ_RECHECK_MS);
    return;
  } else if ((pod.deleting || !pod.exists) && !pod.terminated.message && tool.idempotent &&
    step.attempt <= tool.retries) {
    // The pod went (deleted, evicted) with its log before it was read: the output is lost for
    // good; an idempotent tool runs again rather than leave the model without its result.
    retryOrGiveUp(d, step, tool, { ...pod, started: true });
    return;
  } else if (d.o.now - finishedAt < RESULT_CAPTURE_GRACE_MS) {
    d.waiting = `output of pod ${pod.name}`;
    requeueAt(d, d.o.now + 2000);
    return;
  } else if (pod.terminated.message) {
    text = pod.terminated.message;
  } else {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.ResultUnavailable,
      exitCode: pod.terminated.exitCode,
      output: `Error: the tool finished but its output could not be read (${output.error}).` });
    return;
  }
  const limit = d.spec.limits.maxToolOutputBytes;
  if (text.length > limit) {
    text = text.slice(0, limit);
    truncated = true;
  }
  if (truncated) text += `\n[output truncated to the first ${limit} bytes]`;
  const exitCode = pod.terminated?.exitCode;
  if (pod.reason === 'DeadlineExceeded' || (exitCode === undefined && pod.phase === 'Failed')) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.TimedOut, truncated,
      output: `Error: the tool did not finish within its timeout (${tool.timeoutSeconds}s) and was stopped.`
        + (text ? `\nOutput so far:\n${text}` : '') });
    return;
  }
  if (oom) {
    recordToolResult(d, step, { isError: true, outcome: StepOutcome.PodLost, exitCode, truncated,
      output: `Error: the tool ran out of memory and was killed.${text ? `\nOutput so far:\n${text}` : ''}` });
    return;
  }
  recordToolResult(d, step, exitCode === 0
    ? { isError: false, outcome: StepOutcome.Completed, exitCode, truncated, output: text }
    : { isError: true, outcome: StepOutcome.ToolError, exitCode, truncated,
      output: `Error: the tool exited with code ${exitCode ?? 'unknown'}.\n${text}` });
}

/** Journals a tool result, its output cut so the entry fits, and completes the step with it. */
export function recordToolResult(d: Draft, step: StepRecord,
  r: Pick<ToolResultEntry, 'isError' | 'outcome' | 'output'> & { exitCode?: number | undefined; truncated?: boolean;
    mcp?: ToolResultEntry['mcp'] }): void {
  const build = (output: string, truncated: boolean): ToolResultEntry => ({
    kind: 'ToolResult',
    stepId: step.id,
    tool: step.tool ?? '',
    toolUseId: step.toolUseId ?? '',
    attempt: step.attempt,
    output,
    isError: r.isError,
    outcome: r.outcome,
    truncated,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(step.podName ? { podName: step.podName } : {}),
    ...(r.mcp ? { mcp: r.mcp } : {}),
  });
  // maxToolOutputBytes counts raw bytes; the entry is JSON, where a control character takes 6.
  const fitted = fitToolOutput(r.output, (output) => build(output, true));
  const entry = build(fitted.output, (r.truncated ?? false) || fitted.cut);
  completeToolStep(d, step, entry, journal(d, journalName(d.o.run.metadata.name, step.id), step.id, entry));
}

/** Marks a tool step done from its journaled result and lets go of its pod. */
export function completeToolStep(d: Draft, step: StepRecord, entry: ToolResultEntry, digest: string): void {
  moveStep(step, entry.isError ? 'Failed' : 'Succeeded');
  step.outcome = entry.outcome;
  step.attempt = entry.attempt;
  step.finishedAt = now(d);
  step.startedAt ??= step.finishedAt;
  step.journal = { name: journalName(d.o.run.metadata.name, step.id), digest };
  if (entry.exitCode !== undefined)
    step.message = `exit code ${entry.exitCode}${entry.truncated ? ', output truncated' : ''}`;
  if (entry.mcp) {
    // Also when status never saw the step Running (its answer's status waited, then a restart).
    step.mcpServer = entry.mcp.server;
    step.message = truncate(`MCP ${entry.mcp.server}/${entry.mcp.tool}: ${entry.outcome}`, 1024);
  }
  settlePod(d, step.podName ? d.o.pods.get(step.podName) : undefined);
  if (entry.isError || d.o.stepEvents)
    event(d, entry.isError ? 'Warning' : 'Normal', entry.isError ? 'ToolFailed' : 'ToolSucceeded',
      `Step ${step.id} (${entry.tool}) ${entry.outcome}`
        + `${entry.exitCode !== undefined ? ` with exit code ${entry.exitCode}` : ''}.`);
}

/** The input the model gave the step's tool call, from the journaled model response. */
export function toolInputOf(d: Draft, step: StepRecord): unknown {
  for (const { entry } of d.journal.values()) {
    if (entry.kind !== 'ModelResponse' || entry.turn !== step.turn) continue;
    const use = entry.response.content.find((b) => b.type === 'tool_use' && b.id === step.toolUseId);
    if (use) return use.input;
  }
  return undefined;
}
