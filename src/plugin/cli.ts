/**
 * The plugin's top level: parses the command line, loads the kubeconfig, runs one command, and
 * turns every failure into one line on stderr and exit status 1.
 */
import { parseCommandLine, type CommandName } from './args.ts';
import type { CommandContext, Input } from './context.ts';
import { UsageError } from './errors.ts';
import { COMMAND_HELP, PLUGIN_HELP } from './help.ts';
import type { Kube } from './kube.ts';
import { streamOutput } from './render.ts';

type Runner = (ctx: CommandContext) => Promise<void>;

/** Commands load on demand, so --help and usage errors answer without loading the Kubernetes client. */
const RUNNERS: Record<CommandName, () => Promise<Runner>> = {
  list: async () => (await import('./commands/list.ts')).list,
  describe: async () => (await import('./commands/describe.ts')).describe,
  approve: async () => (await import('./commands/approve.ts')).approve,
  reject: async () => (await import('./commands/reject.ts')).reject,
  transcript: async () => (await import('./commands/transcript.ts')).transcript,
  logs: async () => (await import('./commands/logs.ts')).logs,
  ui: async () => (await import('./commands/ui.ts')).ui,
  version: async () => (await import('./commands/version.ts')).version,
};

/** What the plugin uses of its process: argv, the standard streams and the environment; tests pass their own. */
export interface Process {
  readonly argv: readonly string[];
  readonly stdin: Input;
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Runs the plugin; resolves to the exit status. */
export async function runPlugin(proc: Process): Promise<number> {
  const out = streamOutput(proc.stdout, proc.stderr, proc.env);
  const fail = (line: string): number => {
    proc.stderr.write(`${line}\n`);
    return 1;
  };
  let parsed;
  try {
    parsed = parseCommandLine(proc.argv);
  } catch (error) {
    if (error instanceof UsageError) {
      const help = error.command ? `kubectl agentrun ${error.command} --help` : 'kubectl agentrun --help';
      return fail(`error: ${error.message} (see ${help})`);
    }
    return fail(`error: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (parsed.kind === 'help') {
    proc.stdout.write(parsed.command ? COMMAND_HELP[parsed.command] : PLUGIN_HELP);
    return 0;
  }
  let kube: Kube | undefined;
  try {
    const [runner, { Kube: KubeClass }] = await Promise.all([RUNNERS[parsed.command](), import('./kube.ts')]);
    const global = parsed.global;
    await runner({
      command: parsed.command,
      out,
      input: proc.stdin,
      prompt: proc.stderr,
      global,
      positionals: parsed.positionals,
      flags: parsed.flags,
      // Loaded on first use, so that a command's usage errors come before kubeconfig problems.
      get kube() {
        return kube ??= KubeClass.load(global);
      },
    });
    return 0;
  } catch (error) {
    if (error instanceof UsageError)
      return fail(`error: ${error.message} (see kubectl agentrun ${error.command ?? parsed.command} --help)`);
    const { describeError } = await import('./api-errors.ts');
    return fail(describeError(error, kube?.server));
  }
}
