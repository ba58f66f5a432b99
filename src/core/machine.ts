/**
 * The states of steps and runs, and the run phase derived from its steps. Every change of a
 * step's phase goes through moveStep(), along STEP_MOVES.
 */
import type { AgentRunSpec, AgentRunStatus, RunPhase, StepPhase, StepRecord } from '../api/agent-run.ts';

/**
 * Every move a step may make. Forward only, but for one edge: an approved tool step goes back to
 * Pending to wait for a free slot under limits.maxParallelTools, like any other tool step.
 * A step is created Pending (tools) or Running (model calls); a done step never moves.
 */
export const STEP_MOVES: { readonly [P in StepPhase]: readonly StepPhase[] } = {
  Pending: ['AwaitingApproval', 'Running', 'Succeeded', 'Failed'],
  AwaitingApproval: ['Pending', 'Running', 'Succeeded', 'Failed'],
  Running: ['Succeeded', 'Failed'],
  Succeeded: [],
  Failed: [],
  Skipped: [],
};

/** Whether a step may move from one phase to another (staying put is not a move). */
export function isStepMove(from: StepPhase, to: StepPhase): boolean {
  return STEP_MOVES[from].includes(to);
}

/** Moves a step to `to`; a move the table does not allow is a bug in decide(), and throws. */
export function moveStep(step: StepRecord, to: StepPhase): void {
  if (step.phase === to) return;
  if (!isStepMove(step.phase, to)) throw new Error(`step ${step.id} cannot move from ${step.phase} to ${to}`);
  step.phase = to;
}

const FINISHED_RUN: ReadonlySet<RunPhase> = new Set(['Succeeded', 'Failed', 'Cancelled']);
const DONE_STEP: ReadonlySet<StepRecord['phase']> = new Set(['Succeeded', 'Failed', 'Skipped']);

/** True once the run reached a final phase; nothing about it changes afterwards but cleanup. */
export function isFinished(status: AgentRunStatus): boolean {
  return status.phase !== undefined && FINISHED_RUN.has(status.phase);
}

/** True once the step's outcome is recorded (journaled, or given up). */
export function isStepDone(step: StepRecord): boolean {
  return DONE_STEP.has(step.phase);
}

/** The phase a human sees, derived from the steps. */
export function phaseOf(status: AgentRunStatus, spec: AgentRunSpec): RunPhase {
  if (isFinished(status) && status.phase) return status.phase;
  const steps = status.steps ?? [];
  if (steps.some((s) => s.phase === 'AwaitingApproval')) return 'AwaitingApproval';
  const inFlight = steps.some((s) => s.phase === 'Running');
  if (spec.suspend && !inFlight) return 'Suspended';
  return status.startTime ? 'Running' : 'Pending';
}
