/** `kubectl agentrun approve NAME [STEP...]`: approve pending tool calls, as the current user. */
import { expectPositionals, parseStepId } from '../args.ts';
import { booleanFlag, stringFlag, type CommandContext } from '../context.ts';
import { decideOnSteps } from '../decisions.ts';

/** The annotation value of an approval given without --comment. */
export const DEFAULT_COMMENT = 'approved via kubectl agentrun';

/** `kubectl agentrun approve NAME [STEP...]`: approves steps awaiting approval, by default every open one. */
export async function approve(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'approve', ['NAME'], { rest: true });
  const [name = '', ...steps] = ctx.positionals;
  await decideOnSteps(ctx, {
    verb: 'approve',
    name,
    steps: steps.map((s) => parseStepId(s, 'approve')),
    text: stringFlag(ctx, 'comment') ?? DEFAULT_COMMENT,
    confirm: !booleanFlag(ctx, 'yes'),
    showInput: booleanFlag(ctx, 'show-input'),
  });
}
