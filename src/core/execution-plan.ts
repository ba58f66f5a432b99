/**
 * The durable order of a decision's effects: the one place it is written. The reconciler runs a
 * plan phase by phase, the replay simulation runs the same plan, and the crash points sit at its
 * phase boundaries.
 *
 * One durable write sits on a step's critical path: the journal entry. Status is not the record
 * of a result (the operator's own journal entry is, verified on every read), so once the entry
 * is stored the next side effect starts while status catches up:
 *
 *   1. finalizer — before anything that must be cleaned up;
 *   2. journal   — results, durable before anything acts on them;
 *   3. start ‖ status — pods are created and model calls started together with the status write.
 *      Both are safe to repeat after a crash before status lands: a pod's name derives from its
 *      step and attempt (creating it again adopts it), and a model call interrupted by a crash is
 *      issued again at most once (the documented cost of a crash mid-call);
 *   4. settle — what destroys evidence or announces state waits for status: releasing or deleting
 *      a pod (its end is what a restarted operator reads to decide a retry), cancelling a call,
 *      Events (they tell about what status says), MCP calls whose intent must be recorded first
 *      (a non-idempotent call interrupted by a crash is reported, not repeated), and the
 *      finalizer's removal or the run's deletion.
 *
 * An MCP call of a step the decision's model answer asks for starts with the pods (phase 3): the
 * answer's journal entry names it (mcpCallsStarted) and is its intent, so a crash before status
 * lands is read back from the journal as "it may have been called" (core/mcp-steps.ts). Any later
 * MCP call (a step that waited for a slot, approval or a retry) keeps its intent in status first.
 *
 * An MCP task's handle is a journal entry (phase 2) before the task is polled (phase 3): polling
 * reads the task and is safe to repeat, and a restarted operator polls the same task again.
 *
 * Status is not the record, so it need not hold up the next step. A decision with nothing to
 * settle after its status (no Events, deletions or later MCP calls) may leave it behind:
 *   - statusMayWait: an answer whose MCP calls start with it. Everything its status says (the model
 *     step done, its MCP steps Running) a restarted operator reads back from the answer's entry,
 *     and the call usually ends within milliseconds. The status waits in memory (at most
 *     STATUS_WAIT_MAX_MS) and is written with the next decision's: one write per MCP turn, not two.
 *   - statusInBackground: a decision that starts a model call. Its status is written while the
 *     run's next decision (the answer) may already be made and journaled; status writes stay one
 *     at a time, in decision order.
 * A restarted operator reads a journal that is ahead of status back step by step (the reconciler's
 * first look reads the entries past the last step status names; decide() reads each back as the
 * step it belongs to), so the decisions a lost status said are made again from their entries.
 */
import type { Effect } from './effects.ts';

type Of<T extends Effect['type']> = Extract<Effect, { type: T }>;

/** Which phase each effect belongs to; adding an effect type without a phase does not compile. */
const PHASE_OF: { readonly [T in Effect['type']]: 'finalizer' | 'journal' | 'start' | 'settle' } = {
  addFinalizer: 'finalizer',
  writeJournal: 'journal',
  createPod: 'start',
  startModelCall: 'start',
  deletePod: 'settle',
  releasePod: 'settle',
  deleteEndedPods: 'settle',
  cancelModelCall: 'settle',
  startMCPCall: 'settle',
  // Reading a task is safe to repeat, and its handle is durable before this phase (journal).
  pollMCPTask: 'start',
  event: 'settle',
  removeFinalizer: 'settle',
  deleteRun: 'settle',
};

/** How long a status that may wait is kept in memory before it is written on its own. */
export const STATUS_WAIT_MAX_MS = 250;

/** A decision's effects in the order that keeps the run durable. */
export interface ExecutionPlan {
  readonly addFinalizer: boolean;
  readonly journal: readonly Of<'writeJournal'>[];
  /** Started together with the status write, after the journal. */
  readonly start: readonly Effect[];
  /** After the status write (or at once when status is unchanged). */
  readonly settle: readonly Effect[];
  /**
   * The status may be written with the next decision's: this one starts MCP calls its journaled
   * model answer names, which a first look reads back, and has nothing to settle after its status.
   */
  readonly statusMayWait: boolean;
  /** The status may be written behind the decision: it starts a model call and settles nothing after it. */
  readonly statusInBackground: boolean;
}

/** Splits a decision's effects into the phases of the durable order, keeping their relative order. */
export function planExecution(effects: readonly Effect[]): ExecutionPlan {
  const journal: Of<'writeJournal'>[] = [];
  const start: Effect[] = [];
  const settle: Effect[] = [];
  let addFinalizer = false;
  for (const effect of effects) {
    const phase = effect.type === 'startMCPCall' && effect.withAnswer === true ? 'start' : PHASE_OF[effect.type];
    switch (phase) {
      case 'finalizer':
        addFinalizer = true;
        break;
      case 'journal':
        if (effect.type === 'writeJournal') journal.push(effect);
        break;
      case 'start':
        start.push(effect);
        break;
      case 'settle':
        settle.push(effect);
        break;
    }
  }
  const answerCalls = start.some((e) => e.type === 'startMCPCall' && e.withAnswer === true);
  const statusMayWait = answerCalls && !addFinalizer && settle.length === 0
    && journal.some((e) => e.entry.kind === 'ModelResponse');
  const statusInBackground = !addFinalizer && settle.length === 0 && start.some((e) => e.type === 'startModelCall');
  return { addFinalizer, journal, start, settle, statusMayWait, statusInBackground };
}

/** The phase an effect type runs in (for tests and docs). */
export function phaseOf(type: Effect['type']): 'finalizer' | 'journal' | 'start' | 'settle' {
  return PHASE_OF[type];
}
