/**
 * Test-only crash points: with AGENTRUN_CRASH_POINT=<name>[@<n>] the process SIGKILLs itself the
 * n-th time it reaches that boundary, so tests can prove recovery at each one without timing luck.
 */
export const CrashPoint = {
  /** A model response is journaled; the status that records it is not written yet. */
  afterModelJournal: 'after-model-journal',
  /**
   * A decision's pods are created (or being created) and its status, which records their steps,
   * is written; nothing after it (finalizer releases of older pods, Events) has happened yet.
   */
  afterToolIntent: 'after-tool-intent',
  /** Journal written, the decision's pods created and model call started; its status not yet written. */
  afterStartBeforeStatus: 'after-start-before-status',
  /** MCP calls started with the model answer that names them; the status that records it not yet written. */
  afterAnswerCallsStarted: 'after-answer-calls-started',
  /** A tool pod finished and its output was read; the result is not journaled yet. */
  beforeToolJournal: 'before-tool-journal',
  /** A tool result is journaled; the status that records it is not written yet. */
  afterToolJournal: 'after-tool-journal',
  /** The run's final status is decided but not written. */
  beforeFinalStatus: 'before-final-status',
} as const;
export type CrashPoint = (typeof CrashPoint)[keyof typeof CrashPoint];

const configured = process.env.AGENTRUN_CRASH_POINT;
const [target, nth] = (configured ?? '').split('@');
const hitsBeforeCrash = Number(nth ?? '1') || 1;
let hits = 0;

/** Kills this process here when AGENTRUN_CRASH_POINT names this point (no-op otherwise). */
export function crashPoint(point: CrashPoint): void {
  if (target !== point) return;
  hits++;
  if (hits < hitsBeforeCrash) return;
  process.stderr.write(`AGENTRUN_CRASH_POINT ${point} reached: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}

const behindDelayMs = Number(process.env.AGENTRUN_TEST_STATUS_BEHIND_DELAY_MS ?? '0') || 0;

/**
 * Test-only: with AGENTRUN_TEST_STATUS_BEHIND_DELAY_MS a status written behind its decision lands
 * that much later, so tests can stop the process while status lags its journal by several decisions.
 */
export async function statusBehindDelay(): Promise<void> {
  if (behindDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, behindDelayMs));
}
