/** `kubectl agentrun reject NAME STEP... --reason TEXT`: reject pending tool calls, as the current user. */
import { expectPositionals, parseStepId } from '../args.ts';
import { stringFlag, type CommandContext } from '../context.ts';
import { decideOnSteps } from '../decisions.ts';
import { UsageError } from '../errors.ts';

/** Rejects the given steps with the --reason the model is told. */
export async function reject(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'reject', ['NAME', 'STEP'], { rest: true });
  const [name = '', ...steps] = ctx.positionals;
  const stepIds = steps.map((s) => parseStepId(s, 'reject'));
  const reason = stringFlag(ctx, 'reason')?.trim();
  if (reason === undefined || reason === '') {
    throw new UsageError(
      '--reason is required: say why the step is rejected (the run records it, and the model may read it)',
      'reject',
    );
  }
  await decideOnSteps(ctx, { verb: 'reject', name, steps: stepIds, text: reason, confirm: false });
}
