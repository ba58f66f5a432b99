/** `kubectl agentrun list`: the runs of a namespace (or all), like `kubectl get agentruns`. */
import { expectPositionals } from '../args.ts';
import { booleanFlag, type CommandContext } from '../context.ts';
import { age, table } from '../render.ts';

/** Prints one line per run: phase, turn, steps, waiting for, age. */
export async function list(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'list', []);
  const all = booleanFlag(ctx, 'all-namespaces');
  const runs = await ctx.kube.listRuns(all ? undefined : ctx.kube.namespace);
  if (runs.length === 0) {
    ctx.out.note(all ? 'No agentruns found.' : `No agentruns found in ${ctx.kube.namespace} namespace.`);
    return;
  }
  runs.sort((a, b) =>
    a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name)
  );
  const now = Date.now();
  const header = ['NAME', 'PHASE', 'STEP', 'TURN', 'TOKENS', 'WAITING-FOR', 'AGE'];
  const rows = runs.map((run) => {
    const s = run.status;
    return [
      run.metadata.name,
      s?.phase ?? '',
      s?.currentStep ?? '',
      s?.currentTurn === undefined ? '' : String(s.currentTurn),
      s?.usage === undefined ? '' : String(s.usage.totalTokens),
      s?.waitingFor ?? '',
      age(run.metadata.creationTimestamp, now),
    ];
  });
  const lines = all
    ? table([['NAMESPACE', ...header], ...rows.map((r, i) => [runs[i]?.metadata.namespace ?? '', ...r])])
    : table([header, ...rows]);
  for (const line of lines) ctx.out.print(line);
}
