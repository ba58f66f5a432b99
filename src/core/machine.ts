/**
 * The states of steps and runs, and the run phase derived from its steps. A step moves
 * Pending → (AwaitingApproval →) Running → Succeeded | Failed; nothing moves back.
 */
import type { AgentRunSpec, AgentRunStatus, RunPhase, StepRecord } from '../api/agent-run.ts';

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
