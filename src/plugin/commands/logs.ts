/**
 * `kubectl agentrun logs NAME STEP`: the tool pod's log through the apiserver; when the pod is
 * gone (cleaned up, TTL, node lost), the output the operator journaled for the step.
 */
import { toolPodName } from '../../core/naming.ts';
import { expectPositionals, parseStepId } from '../args.ts';
import { stringFlag, suggest, type CommandContext } from '../context.ts';
import { PluginError, UsageError } from '../errors.ts';
import { readEntry } from '../journal.ts';

/** The container name of every tool pod (src/core/tool-pod.ts). */
export const TOOL_CONTAINER = 'tool';

/** Prints a tool step's log from its pod, or the journaled output when the pod is gone. */
export async function logs(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'logs', ['NAME', 'STEP']);
  const [name = '', stepText = ''] = ctx.positionals;
  const stepId = parseStepId(stepText, 'logs');
  const attemptFlag = stringFlag(ctx, 'attempt');
  if (attemptFlag !== undefined && !/^[1-9][0-9]{0,5}$/.test(attemptFlag))
    throw new UsageError(`--attempt must be a positive integer, not "${attemptFlag}"`, 'logs');

  const run = await ctx.kube.getRun(name);
  const { namespace } = run.metadata;
  const steps = run.status?.steps ?? [];
  const step = steps.find((s) => s.id === stepId);
  if (!step) {
    const ids = steps.map((s) => s.id);
    const range = ids.length === 0 ? 'it has no steps yet' : `steps ${Math.min(...ids)}-${Math.max(...ids)}`;
    throw new PluginError(`agentrun "${name}" has no step ${stepId} (${range})`);
  }
  if (step.kind !== 'Tool') {
    const transcript = suggest(ctx, namespace, ['transcript', name]);
    throw new PluginError(`step ${stepId} of agentrun "${name}" is a model call, which runs no pod; see ${transcript}`);
  }
  const attempt = attemptFlag === undefined ? step.attempt : Number(attemptFlag);
  if (attempt > step.attempt) {
    const attempts = `${step.attempt} attempt${step.attempt === 1 ? '' : 's'}`;
    throw new PluginError(`step ${stepId} of agentrun "${name}" has had ${attempts}, not ${attempt}`);
  }
  const pod = attempt === step.attempt && step.podName !== undefined
    ? step.podName
    : toolPodName(name, stepId, attempt);

  const neverRan = step.podName === undefined && attemptFlag === undefined;
  const log = neverRan ? undefined : await ctx.kube.podLog(namespace, pod, TOOL_CONTAINER);
  if (log !== undefined) {
    if (log !== '') ctx.out.print(log.replace(/\n$/, ''));
    return;
  }

  const entry = await readEntry(ctx.kube, run, step, (m) => {
    ctx.out.note(m);
  });
  const why = neverRan
    ? `step ${stepId} ran no pod (${step.phase}${step.outcome ? `/${step.outcome}` : ''})`
    : `pod ${pod} is gone`;
  if (entry?.kind !== 'ToolResult') {
    throw new PluginError(
      `${why} and step ${stepId} has no journaled output${step.journal ? '' : ` yet (phase ${step.phase})`}`,
    );
  }
  if (attempt !== entry.attempt) {
    throw new PluginError(`${why}, and the journal holds the output of attempt ${entry.attempt} of step ${stepId}, `
      + `not of attempt ${attempt}`);
  }
  const truncated = entry.truncated ? ', truncated at limits.maxToolOutputBytes' : '';
  const exit = entry.exitCode !== undefined ? `, exit code ${entry.exitCode}` : '';
  ctx.out.note(
    `${why}; showing the output journaled for step ${stepId} instead (what the model got${truncated}${exit})`,
  );
  if (entry.output !== '') ctx.out.print(entry.output.replace(/\n$/, ''));
}
