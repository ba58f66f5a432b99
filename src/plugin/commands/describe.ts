/**
 * `kubectl agentrun describe NAME`: what a human needs to understand a run at a glance, and the
 * exact commands to act on what it waits for.
 */
import type { StepRecord, TokenUsage } from '../../api/agent-run.ts';
import { decisionsFrom, type AnnotatedDecision } from '../../api/approval.ts';
import { expectPositionals } from '../args.ts';
import { booleanFlag, suggest, type CommandContext } from '../context.ts';
import { isCut, pendingSubject, printFullInput } from '../decisions.ts';
import { describeError } from '../api-errors.ts';
import { eventTime, type Run } from '../kube.ts';
import { age, elapsed, table, truncate, when, wrap, type Output } from '../render.ts';

/** How many Events describe shows (the most recent). */
const MAX_EVENTS = 20;
const LABEL_WIDTH = 14;

/** Prints a run's state, steps, pending approvals and Events, with the commands to act on what it waits for. */
export async function describe(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'describe', ['NAME']);
  const [name = ''] = ctx.positionals;
  const run = await ctx.kube.getRun(name);
  const out = ctx.out;
  const now = Date.now();
  const s = run.status ?? {};
  const spec = run.spec;

  field(out, 'Name', run.metadata.name);
  field(out, 'Namespace', run.metadata.namespace);
  field(out, 'Phase', s.phase ?? 'Pending (not picked up by the operator yet)');
  if (s.message !== undefined) field(out, 'Message', s.message);
  field(out, 'Model',
    `${spec.model.name} (max_tokens ${spec.model.maxTokens}, ModelEndpoint ${spec.model.endpointRef.name})`);
  field(out, 'Tokens', usageLine(s.usage));
  const budget = spec.limits.maxTotalTokens === undefined ? 'no token budget' : `${spec.limits.maxTotalTokens} tokens`;
  field(out, 'Limits', `${spec.limits.maxTurns} turn${spec.limits.maxTurns === 1 ? '' : 's'}, ${budget}, `
    + `timeout ${spec.limits.timeout}, approval timeout ${spec.limits.approvalTimeout}`);
  if (s.currentTurn !== undefined) field(out, 'Turn', String(s.currentTurn));
  if (s.currentStep !== undefined) field(out, 'Step', s.currentStep);
  if (s.waitingFor !== undefined) field(out, 'Waiting For', s.waitingFor);
  if (spec.suspend) field(out, 'Suspended', 'yes (spec.suspend): nothing new starts');
  if (spec.cancel) field(out, 'Cancel', 'requested (spec.cancel)');
  field(out, 'Created', when(run.metadata.creationTimestamp, now));
  field(out, 'Started', when(s.startTime, now));
  field(out, 'Completed', when(s.completionTime, now));
  if (s.startTime !== undefined)
    field(out, 'Duration',
      elapsed(s.startTime, s.completionTime, now) + (s.completionTime === undefined ? ' so far' : ''));
  if (s.result !== undefined) {
    out.print('Result:');
    for (const line of wrap(s.result, out.width, '  ')) out.print(line);
  }

  const conditions = s.conditions ?? [];
  out.print(conditions.length === 0 ? 'Conditions:    <none>' : 'Conditions:');
  if (conditions.length > 0) {
    for (const line of table([['TYPE', 'STATUS', 'REASON', 'SINCE', 'MESSAGE'],
      ...conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime, now), c.message])], '  '))
      out.print(line);
  }

  const steps = [...(s.steps ?? [])].sort((a, b) => a.id - b.id);
  out.print(steps.length === 0 ? 'Steps:         <none>' : 'Steps:');
  if (steps.length > 0) {
    const decisions = decisionsFrom(run.metadata.annotations);
    for (const line of table([['ID', 'KIND', 'TOOL', 'PHASE/OUTCOME', 'ATTEMPT', 'POD', 'TOKENS', 'DURATION',
      'APPROVAL', 'WAIT'], ...steps.map((st) => stepRow(run, st, decisions.get(st.id), now))], '  ')) out.print(line);
  }

  await printPendingApprovals(ctx, run, now);
  const ignored = s.ignoredDecisions ?? [];
  if (ignored.length > 0) {
    out.print('Ignored Decisions:');
    for (const line of table([['ANNOTATION', 'VALUE', 'AGE', 'WHY'],
      ...ignored.map((i) => [i.annotation, truncate(i.value, 40), age(i.at, now), i.reason])], '  ')) out.print(line);
  }
  await printEvents(ctx, run, now);
}

function field(out: Output, label: string, value: string): void {
  const prefix = `${label}:`.padEnd(LABEL_WIDTH + 1);
  const lines = wrap(value, out.width - prefix.length);
  out.print(prefix + (lines[0] ?? ''));
  for (const line of lines.slice(1)) out.print(' '.repeat(prefix.length) + line);
}

function usageLine(u: TokenUsage | undefined): string {
  if (!u) return '0';
  return `${u.totalTokens} total: input ${u.inputTokens}, output ${u.outputTokens}, `
    + `cache read ${u.cacheReadInputTokens}, cache write ${u.cacheCreationInputTokens}`;
}

const DONE = new Set(['Succeeded', 'Failed', 'Skipped']);

function stepRow(run: Run, st: StepRecord, annotated: AnnotatedDecision | undefined, now: number): string[] {
  const phase = st.outcome !== undefined ? `${st.phase}/${st.outcome}` : st.phase;
  return [
    String(st.id),
    st.kind,
    st.tool ?? '',
    phase,
    String(st.attempt),
    // An MCP step has no pod: the cell names the MCPServer it called instead.
    st.podName ?? (st.mcpServer !== undefined ? `mcp:${st.mcpServer}` : ''),
    st.usage === undefined ? '' : String(st.usage.totalTokens),
    st.startedAt === undefined
      ? ''
      : elapsed(st.startedAt, st.finishedAt, now) + (st.finishedAt === undefined && !DONE.has(st.phase) ? '+' : ''),
    approvalCell(st, annotated),
    waitCell(run, st, now),
  ];
}

function approvalCell(st: StepRecord, annotated: AnnotatedDecision | undefined): string {
  const a = st.approval;
  if (a) return `${a.decision}${a.by ? ` by ${a.by}` : ''}${a.comment ? `: "${truncate(a.comment, 40)}"` : ''}`;
  if (annotated) return `${annotated.decision} by ${annotated.by ?? '(unrecorded)'}, not yet acted on`;
  return '';
}

function waitCell(run: Run, st: StepRecord, now: number): string {
  if (st.phase === 'AwaitingApproval') {
    const pending = run.status?.pendingApprovals?.find((p) => p.step === st.id);
    const what = pending?.kind === 'Budget' ? 'approval of a budget extension' : 'approval';
    const since = pending?.since ?? st.startedAt;
    return since === undefined ? what : `${what} since ${since} (${age(since, now)})`;
  }
  const r = st.retry;
  if (!r) return '';
  const next = r.nextRetryAt;
  if (!DONE.has(st.phase) && next !== undefined) {
    const inMs = new Date(next).getTime() - now;
    const wait = inMs > 0 ? ` (in ${elapsed(new Date(now).toISOString(), next, now)})` : '';
    return `retry ${r.errorClass} (attempt ${r.attempt} failed) next at ${next}${wait}`;
  }
  return `retried after ${r.errorClass} (attempt ${r.attempt})`;
}

async function printPendingApprovals(ctx: CommandContext, run: Run, now: number): Promise<void> {
  const out = ctx.out;
  const pending = [...(run.status?.pendingApprovals ?? [])].sort((a, b) => a.step - b.step);
  if (pending.length === 0) {
    out.print('Pending Approvals: <none>');
    return;
  }
  out.print('Pending Approvals:');
  const rows = pending.map((p) => [
    String(p.step),
    pendingSubject(p),
    `${p.since} (${age(p.since, now)})`,
    truncate(p.inputPreview, 80),
  ]);
  for (const line of table([['STEP', 'TOOL', 'SINCE', 'INPUT'], ...rows], '  ')) out.print(line);
  for (const p of pending) {
    if (booleanFlag(ctx, 'show-input')) await printFullInput(ctx, run, p);
    else if (isCut(p))
      out.note(
        `note: the input of step ${p.step} is cut in this preview; --show-input prints all ${p.inputBytes ?? 0} bytes`,
      );
  }
  const name = run.metadata.name, ns = run.metadata.namespace;
  const commands: string[][] = [];
  for (const p of pending) {
    commands.push([`To approve step ${p.step}:`, suggest(ctx, ns, ['approve', name, String(p.step)])]);
    commands.push([`To reject step ${p.step}:`,
      suggest(ctx, ns, ['reject', name, String(p.step)], ['--reason', '<why>'])]);
  }
  if (pending.length > 1) commands.push(['To approve all:', suggest(ctx, ns, ['approve', name])]);
  for (const line of table(commands, '  ')) out.print(line);
}

async function printEvents(ctx: CommandContext, run: Run, now: number): Promise<void> {
  const out = ctx.out;
  let events;
  try {
    events = await ctx.kube.runEvents(run);
  } catch (error) {
    out.print(`Events:        <unavailable: ${describeError(error)}>`);
    return;
  }
  if (events.length === 0) {
    out.print('Events:        <none>');
    return;
  }
  const shown = events.slice(-MAX_EVENTS);
  out.print(events.length > shown.length ? `Events (the last ${shown.length} of ${events.length}):` : 'Events:');
  for (const line of table([['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'],
    ...shown.map((e) => [
      e.type ?? '',
      e.reason ?? '',
      age(new Date(eventTime(e)), now),
      e.source?.component || e.reportingComponent || '',
      truncate(e.message ?? '', 200),
    ])], '  ')) out.print(line);
}
