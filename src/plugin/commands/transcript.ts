/**
 * `kubectl agentrun transcript NAME`: the conversation rebuilt from the journal — the task, then
 * per turn what the model said and called, what the tools returned, and the result. `-o json`
 * gives the entries and the Messages API conversation the operator builds from them.
 */
import type { StepRecord } from '../../api/agent-run.ts';
import { buildModelRequest, finalText } from '../../core/conversation.ts';
import type { JournalEntry, ModelResponseEntry, ToolResultEntry, WireBlock } from '../../api/journal-entry.ts';
import { expectPositionals } from '../args.ts';
import { stringFlag, type CommandContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { readJournal, type JournaledStep } from '../journal.ts';
import type { Run } from '../kube.ts';
import { age, heading, truncate, wrap, type Output } from '../render.ts';

/** Prints the run's conversation from its journal, as text or (-o json) as entries and the rebuilt request. */
export async function transcript(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'transcript', ['NAME']);
  const format = stringFlag(ctx, 'output') ?? 'text';
  if (format !== 'text' && format !== 'json')
    throw new UsageError(`unknown output format "${format}" (text or json)`, 'transcript');
  const [name = ''] = ctx.positionals;
  const run = await ctx.kube.getRun(name);
  const journaled = await readJournal(ctx.kube, run, (m) => {
    ctx.out.note(m);
  });
  if (format === 'json') printJson(ctx.out, run, journaled);
  else printText(ctx.out, run, journaled);
}

function printJson(out: Output, run: Run, journaled: readonly JournaledStep[]): void {
  const entries = journaled.flatMap((j) => (j.entry ? [j.entry] : []));
  const s = run.status ?? {};
  const doc = {
    run: {
      name: run.metadata.name,
      namespace: run.metadata.namespace,
      ...(run.metadata.uid !== undefined ? { uid: run.metadata.uid } : {}),
      phase: s.phase ?? 'Pending',
      model: run.spec.model.name,
      ...(run.spec.systemPrompt !== undefined ? { systemPrompt: run.spec.systemPrompt } : {}),
      prompt: run.spec.prompt,
      ...(s.usage !== undefined ? { usage: s.usage } : {}),
      ...(s.startTime !== undefined ? { startTime: s.startTime } : {}),
      ...(s.completionTime !== undefined ? { completionTime: s.completionTime } : {}),
      ...(s.result !== undefined ? { result: s.result } : {}),
      ...(s.message !== undefined ? { message: s.message } : {}),
    },
    steps: entries,
    messages: buildModelRequest(run.spec, [], entries).messages,
  };
  out.print(JSON.stringify(doc, null, 2));
}

function printText(out: Output, run: Run, journaled: readonly JournaledStep[]): void {
  const { style, width } = out;
  const s = run.status ?? {};
  const summary = [
    `AgentRun ${run.metadata.namespace}/${run.metadata.name}`,
    `model ${run.spec.model.name}`,
    s.phase ?? 'Pending',
    `${s.currentTurn ?? 0} turn${s.currentTurn === 1 ? '' : 's'}`,
    `${s.usage?.totalTokens ?? 0} tokens`,
  ].join(' · ');
  out.print(style.bold(summary));
  const block = (title: string, body: string, indent = ''): void => {
    out.print();
    out.print(heading(title, width, style));
    for (const line of wrap(body, width, indent)) out.print(line);
  };
  if (run.spec.systemPrompt !== undefined) block('System prompt', run.spec.systemPrompt);
  block('Task', run.spec.prompt);

  const stepOfToolUse = new Map<string, number>();
  for (const { step } of journaled) if (step.toolUseId !== undefined) stepOfToolUse.set(step.toolUseId, step.id);
  const pending = new Map((s.pendingApprovals ?? []).map((p) => [p.step, p]));
  let lastModel: ModelResponseEntry | undefined;

  for (const { step, entry } of journaled) {
    out.print();
    if (step.kind === 'Model') {
      if (entry?.kind === 'ModelResponse') lastModel = entry;
      printModelStep(out, step, entry, stepOfToolUse);
    } else {
      printToolStep(out, step, entry, pending.get(step.id)?.since);
    }
  }

  out.print();
  const phase = s.phase ?? 'Pending';
  if (phase === 'Succeeded') {
    const text = lastModel ? finalText(lastModel.response.content) : '';
    out.print(heading('Result', width, style));
    for (const line of wrap(text !== '' ? text : (s.result ?? ''), width)) out.print(line);
  } else if (phase === 'Failed' || phase === 'Cancelled') {
    out.print(heading(`Run ${phase}`, width, style));
    for (const line of wrap(s.message ?? '', width)) out.print(style.red(line));
  } else {
    out.print(heading(`Run ${phase}`, width, style));
    const now = s.waitingFor !== undefined ? `waiting for ${s.waitingFor}` : (s.message ?? 'in progress');
    for (const line of wrap(now, width)) out.print(style.dim(line));
  }
}

function printModelStep(out: Output, step: StepRecord, entry: JournalEntry | undefined,
  stepOfToolUse: ReadonlyMap<string, number>): void {
  const { style, width } = out;
  const meta = [`Turn ${step.turn}`, 'assistant', `step ${step.id}`];
  if (entry?.kind !== 'ModelResponse') {
    out.print(heading(meta.join(' · '), width, style));
    let note: string;
    if (step.phase === 'Succeeded' || step.phase === 'Failed')
      note = noEntryNote(step);
    else if (step.phase === 'AwaitingApproval')
      note = '(the run reached a limit and waits for approval of a budget extension before this call)';
    else if (step.retry?.nextRetryAt !== undefined)
      note = `(model call failed: ${step.retry.errorClass}: ${step.retry.errorMessage}; `
        + `retry ${step.attempt} at ${step.retry.nextRetryAt})`;
    else if (step.phase === 'Pending') note = '(not started yet)';
    else note = '(model call in flight)';
    for (const line of wrap(note, width)) out.print(style.dim(line));
    return;
  }
  const u = entry.response.usage;
  const cacheRead = u.cache_read_input_tokens ? `, ${u.cache_read_input_tokens} cache read` : '';
  const cacheWrite = u.cache_creation_input_tokens ? `, ${u.cache_creation_input_tokens} cache write` : '';
  meta.push(`${u.input_tokens} in, ${u.output_tokens} out${cacheRead}${cacheWrite}`);
  out.print(heading(meta.join(' · '), width, style));
  const a = step.approval;
  if (a) {
    const by = a.by !== undefined ? ` by ${a.by}` : '';
    out.print(style.dim(`(budget extension ${a.decision.toLowerCase()}${by}${a.comment ? `: ${a.comment}` : ''})`));
  }
  for (const b of entry.response.content) printBlock(out, b, stepOfToolUse);
  const stop = entry.response.stop_reason;
  if (stop !== 'end_turn' && stop !== 'tool_use') out.print(style.yellow(`(stopped: ${stop ?? 'no stop_reason'})`));
}

function printBlock(out: Output, b: WireBlock, stepOfToolUse: ReadonlyMap<string, number>): void {
  const { style, width } = out;
  switch (b.type) {
    case 'text':
      for (const line of wrap(typeof b.text === 'string' ? b.text.replace(/\n+$/, '') : '', width)) out.print(line);
      return;
    case 'tool_use': {
      const id = typeof b.id === 'string' ? b.id : '';
      const stepId = stepOfToolUse.get(id);
      const name = typeof b.name === 'string' ? b.name : '?';
      out.print(
        style.cyan(`→ tool call ${name}${id ? ` (${id})` : ''}${stepId !== undefined ? ` · step ${stepId}` : ''}`),
      );
      for (const line of wrap(JSON.stringify(b.input ?? {}, null, 2), width, '    ')) out.print(line);
      return;
    }
    case 'thinking':
      out.print(style.dim('(thinking)'));
      for (const line of wrap(typeof b.thinking === 'string' ? b.thinking : '', width, '  '))
        out.print(style.dim(line));
      return;
    case 'redacted_thinking':
      out.print(style.dim('(redacted thinking)'));
      return;
    default: {
      const { type, ...rest } = b;
      out.print(style.dim(`[${type}] ${truncate(JSON.stringify(rest), Math.max(40, width - type.length - 3))}`));
    }
  }
}

function printToolStep(out: Output, step: StepRecord, entry: JournalEntry | undefined,
  awaitingSince: string | undefined): void {
  const { style, width } = out;
  const meta = ['Tool result', step.tool ?? '?',
    ...(step.mcpServer !== undefined ? [`MCP server ${step.mcpServer}`] : []), `step ${step.id}`];
  if (entry?.kind !== 'ToolResult') {
    out.print(heading(meta.join(' · '), width, style));
    let note: string;
    if (step.phase === 'AwaitingApproval')
      note = `(awaiting approval${awaitingSince !== undefined ? ` for ${age(awaitingSince)}` : ''})`;
    else if (step.phase === 'Running') {
      const where = step.podName ? ` in pod ${step.podName}` : step.mcpServer ? ` on MCP server ${step.mcpServer}` : '';
      note = `(running${where}, attempt ${step.attempt})`;
    }
    else if (step.phase === 'Pending') note = '(not started yet)';
    else note = noEntryNote(step);
    for (const line of wrap(note, width)) out.print(style.dim(line));
    return;
  }
  printToolResult(out, step, entry, meta);
}

/** The note for a step that ended without a journal entry: its phase, outcome and message. */
function noEntryNote(step: StepRecord): string {
  const outcome = step.outcome ? `/${step.outcome}` : '';
  return `(${step.phase}${outcome}; no journal entry${step.message ? `: ${step.message}` : ''})`;
}

function printToolResult(out: Output, step: StepRecord, entry: ToolResultEntry, meta: string[]): void {
  const { style, width } = out;
  if (entry.isError) meta.push('ERROR');
  meta.push(entry.outcome);
  if (entry.exitCode !== undefined) meta.push(`exit ${entry.exitCode}`);
  if (entry.attempt > 1) meta.push(`attempt ${entry.attempt}`);
  out.print(heading(meta.join(' · '), width, style));
  const a = step.approval;
  if (a)
    out.print(
      style.dim(
        `(${a.decision.toLowerCase()}${a.by !== undefined ? ` by ${a.by}` : ''}${a.comment ? `: ${a.comment}` : ''})`,
      ),
    );
  const lines = wrap(entry.output.replace(/\n+$/, ''), width);
  for (const line of lines) out.print(entry.isError ? style.red(line) : line);
  if (entry.truncated)
    out.print(style.yellow('[output truncated: the model got only the first limits.maxToolOutputBytes bytes]'));
}
