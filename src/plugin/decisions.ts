/**
 * Deciding on pending steps, shared by approve and reject: check the steps are pending, show
 * them, confirm, then set the decision annotations with one merge patch as the current user.
 * The apiserver authorises the decision (ValidatingAdmissionPolicy) and records who made it
 * (MutatingAdmissionPolicy); this code never writes decided-by itself.
 */
import { createInterface } from 'node:readline';
import type { AgentRunStatus } from '../api/agent-run.ts';
import { approveKey, decidedByKey, decisionsFrom, rejectKey } from '../api/approval.ts';
import type { CommandContext } from './context.ts';
import { apiStatus, httpStatus } from './api-errors.ts';
import { PluginError } from './errors.ts';
import type { Run } from './kube.ts';
import { pendingInput } from './journal.ts';
import { age, table, truncate } from './render.ts';

type Pending = NonNullable<AgentRunStatus['pendingApprovals']>[number];

/** What a pending approval is about: the tool, or a budget extension (limits.onExhausted). */
export function pendingSubject(p: Pick<Pending, 'kind' | 'tool'>): string {
  return p.kind === 'Budget' ? 'budget extension' : p.tool;
}

/** An approve or reject command, as parsed: which run and steps, and how to confirm. */
export interface DecisionRequest {
  readonly verb: 'approve' | 'reject';
  readonly name: string;
  /** The steps to decide on; empty means every pending step. */
  readonly steps: readonly number[];
  /** The annotation's value: the comment, or the reason. */
  readonly text: string;
  /** Ask y/N on the terminal before deciding (refuse without one). */
  readonly confirm: boolean;
  /** Print every target's whole input (it is printed anyway when the preview is cut and confirm is on). */
  readonly showInput?: boolean;
}

/** Conflicting writes retried before giving up; each retry re-checks on a fresh read. */
const MAX_CONFLICTS = 5;

/**
 * Writes approve or reject annotations on a run's pending steps as the current user, after showing
 * what is decided on; retries on conflicts with a fresh read.
 */
export async function decideOnSteps(ctx: CommandContext, req: DecisionRequest): Promise<void> {
  const out = ctx.out;
  let run = await ctx.kube.getRun(req.name);
  let targets = selectTargets(run, req);
  const past = req.verb === 'approve' ? 'approved' : 'rejected';
  const ref = `agentrun "${run.metadata.name}" in namespace "${run.metadata.namespace}"`;

  const pendingCount = run.status?.pendingApprovals?.length ?? 0;
  const ofPending = pendingCount > targets.length ? ` of ${pendingCount} awaiting approval` : '';
  out.print(
    `${ref}: ${req.verb === 'approve' ? 'approving' : 'rejecting'} ${plural(targets.length, 'step')}${ofPending}`,
  );
  const now = Date.now();
  const rows = targets.map((p) => [
    String(p.step),
    pendingSubject(p),
    `${age(p.since, now)} ago`,
    truncate(p.inputPreview, Math.max(30, out.width - 40)),
  ]);
  for (const line of table([['STEP', 'TOOL', 'SINCE', 'INPUT'], ...rows], '  ')) out.print(line);
  for (const p of targets) {
    if (req.showInput === true || (req.confirm && isCut(p))) await printFullInput(ctx, run, p);
  }
  if (req.verb === 'reject' && run.spec.approvals?.onReject === 'Fail') {
    out.note('note: this run has spec.approvals.onReject=Fail: rejecting a step fails the whole run');
  }

  if (req.confirm) {
    const list = targets.map((p) => `step ${p.step} (${pendingSubject(p)})`).join(', ');
    if (ctx.input.isTTY !== true) {
      throw new PluginError(`not ${past}: confirmation needs a terminal and stdin is not one; `
        + `re-run with --yes to ${req.verb} ${list} without asking`);
    }
    const yes = await ask(ctx, `${capitalise(req.verb)} ${list} of ${ref}? [y/N] `);
    if (!yes) throw new PluginError(`aborted: nothing was ${past}`);
  }

  const keyOf = req.verb === 'approve' ? approveKey : rejectKey;
  let patched: Run | undefined;
  for (let attempt = 1; patched === undefined; attempt++) {
    const annotations = Object.fromEntries(targets.map((p) => [keyOf(p.step), req.text]));
    try {
      patched = await ctx.kube.annotateRun(run, annotations);
    } catch (error) {
      if (!(httpStatus(error) === 409 && apiStatus(error)?.reason !== 'AlreadyExists') || attempt >= MAX_CONFLICTS)
        throw error;
      // The run changed since we read it (the operator wrote status): re-check the same steps.
      run = await ctx.kube.getRun(req.name);
      targets = selectTargets(run, { ...req, steps: targets.map((p) => p.step) });
    }
  }

  const unrecorded: number[] = [];
  for (const p of targets) {
    const by = patched.metadata.annotations?.[decidedByKey(p.step)];
    if (by === undefined) unrecorded.push(p.step);
    out.print(`step ${p.step} (${pendingSubject(p)}) ${past}${by !== undefined ? `, decided by ${by}` : ''}`);
  }
  if (unrecorded.length > 0) {
    out.note(`note: the apiserver recorded no ${decidedByKey(unrecorded[0] ?? 0)}, so the MutatingAdmissionPolicy `
      + 'agentrun-record-approver (Kubernetes 1.36+) is not active on this cluster; the operator ignores a decision '
      + 'without it unless it runs with --require-approver-identity=false');
  }
}

/** The preview of a pending tool input does not show all of it. */
export function isCut(p: Pending): boolean {
  return p.kind !== 'Budget' && p.inputBytes !== undefined && Buffer.byteLength(p.inputPreview) < p.inputBytes;
}

/** Prints a pending step's whole input, read from the journal and checked against the digest the operator recorded. */
export async function printFullInput(ctx: CommandContext, run: Run, p: Pending): Promise<void> {
  const input = await pendingInput(ctx.kube, run, p, (m) => {
    ctx.out.note(m);
  });
  if (!input) {
    ctx.out.note(
      `warning: step ${p.step}: the whole input could not be read from the journal; only the preview is known`,
    );
    return;
  }
  const matches = input.matches ? ', matches the digest the operator recorded' : '';
  ctx.out.print(
    `Step ${p.step} (${pendingSubject(p)}) input, ${p.inputBytes ?? Buffer.byteLength(input.text)} bytes${matches}:`,
  );
  ctx.out.print(input.text);
  if (!input.matches)
    ctx.out.note(
      `warning: step ${p.step}: this input does not match the digest in the pending approval (${p.inputDigest ?? ''})`,
    );
}

/** The pending entries to decide on; any requested step that is not pending is an error. */
function selectTargets(run: Run, req: DecisionRequest): Pending[] {
  const pending = [...(run.status?.pendingApprovals ?? [])].sort((a, b) => a.step - b.step);
  const decided = decisionsFrom(run.metadata.annotations);
  const describeDecided = (step: number): string => {
    const d = decided.get(step);
    if (!d) return '';
    const ignored = run.status?.ignoredDecisions?.filter((i) => i.annotation === d.annotation).at(-1);
    const by = d.by !== undefined ? ` by ${d.by}` : ', no decided-by recorded';
    const why = ignored ? `, ignored by the operator: ${ignored.reason}` : '';
    return `${d.decision.toLowerCase()} (${d.annotation}${by})${why}`;
  };
  const pendingList = pending.length === 0
    ? 'no step is awaiting approval'
    : `awaiting approval: ${pending.map((p) => `step ${p.step} (${pendingSubject(p)})`).join(', ')}`;
  const ref = `agentrun "${run.metadata.name}"`;

  if (req.steps.length === 0) {
    if (pending.length === 0)
      throw new PluginError(`${ref} has no step awaiting approval (phase ${run.status?.phase ?? 'Pending'})`);
    const open = pending.filter((p) => !decided.has(p.step));
    if (open.length === 0) {
      const decisions = pending.map((p) => `step ${p.step} ${describeDecided(p.step)}`).join(', ');
      throw new PluginError(
        `every step of ${ref} awaiting approval already has a decision the operator has not acted on yet: ${decisions}`,
      );
    }
    return open;
  }
  const targets: Pending[] = [];
  for (const step of new Set(req.steps)) {
    const p = pending.find((x) => x.step === step);
    if (!p) {
      const record = run.status?.steps?.find((s) => s.id === step);
      const approval = record?.approval;
      const decision = approval ? `, ${approval.decision}${approval.by !== undefined ? ` by ${approval.by}` : ''}` : '';
      const what = record === undefined ? `the run has no step ${step}` : `it is ${record.phase}${decision}`;
      throw new PluginError(`step ${step} of ${ref} is not awaiting approval (${what}); ${pendingList}`);
    }
    if (decided.has(step)) {
      throw new PluginError(
        `step ${step} of ${ref} already has a decision the operator has not acted on yet: ${describeDecided(step)}`,
      );
    }
    targets.push(p);
  }
  return targets;
}

/** Asks a y/N question on the terminal; anything but y/yes (or end of input) is no. */
async function ask(ctx: CommandContext, question: string): Promise<boolean> {
  const rl = createInterface({ input: ctx.input, output: ctx.prompt, terminal: true });
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once('close', () => {
        resolve(undefined);
      });
      rl.once('SIGINT', () => {
        rl.close();
      });
      rl.question(question, resolve);
    });
    if (answer === undefined) ctx.prompt.write('\n');
    return answer !== undefined && /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
