/**
 * The command line: `kubectl agentrun [global flags] COMMAND [args] [flags]`, with the global
 * flags (kubeconfig, context, namespace) accepted anywhere, as kubectl accepts its own.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: false };

/** Flags every command takes: where the cluster is, as kubectl's flags say, and --help. */
export const GLOBAL_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<string, OptionSpec>;

/** The flags of each command, besides the global ones. */
export const COMMAND_OPTIONS = {
  list: { 'all-namespaces': { type: 'boolean', short: 'A' } },
  describe: { 'show-input': { type: 'boolean' } },
  approve: { yes: { type: 'boolean', short: 'y' }, comment: { type: 'string' }, 'show-input': { type: 'boolean' } },
  reject: { reason: { type: 'string' } },
  transcript: { output: { type: 'string', short: 'o' } },
  logs: { attempt: { type: 'string' } },
  ui: { port: { type: 'string' }, 'no-open': { type: 'boolean' } },
  version: {},
} as const satisfies Record<string, Record<string, OptionSpec>>;

/** The name of a plugin command. */
export type CommandName = keyof typeof COMMAND_OPTIONS;
/** Every plugin command, as error messages list them. */
export const COMMANDS = Object.keys(COMMAND_OPTIONS) as CommandName[];

/** Whether `name` is a plugin command. */
export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_OPTIONS, name);
}

/** Where to find the cluster, as kubectl's flags say. */
export interface GlobalFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
}

/** A parsed command line: a request for help, or a command with its flags and positionals. */
export type ParsedCommandLine =
  | { readonly kind: 'help'; readonly command?: CommandName }
  | {
    readonly kind: 'command';
    readonly command: CommandName;
    readonly global: GlobalFlags;
    readonly positionals: readonly string[];
    readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  };

const ALL_OPTIONS: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
for (const options of Object.values(COMMAND_OPTIONS)) Object.assign(ALL_OPTIONS, options);

function optionsOf(command: CommandName): Record<string, OptionSpec> {
  return { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[command] };
}

/** Parses argv (without node and the script): finds the command, then parses its flags strictly. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  // First pass, lenient: which token is the command? (a global flag's value is not one)
  const { tokens } = parseArgs({ args: [...argv], options: ALL_OPTIONS, strict: false, allowPositionals: true,
    tokens: true });
  const first = tokens.find((t) => t.kind === 'positional');
  const helpAsked = tokens.some((t) => t.kind === 'option' && t.name === 'help');
  if (!first) {
    if (argv.length === 0 || helpAsked) return { kind: 'help' };
    throw new UsageError(`no command given (one of ${COMMANDS.join(', ')})`);
  }
  if (first.value === 'help') {
    const about = tokens.filter((t) => t.kind === 'positional')[1]?.value;
    if (about === undefined) return { kind: 'help' };
    if (!isCommand(about)) throw new UsageError(`unknown command "${about}" (one of ${COMMANDS.join(', ')})`);
    return { kind: 'help', command: about };
  }
  if (!isCommand(first.value)) throw new UsageError(`unknown command "${first.value}" (one of ${COMMANDS.join(', ')})`);
  const command = first.value;
  if (helpAsked) return { kind: 'help', command };

  const rest = argv.filter((_, i) => i !== first.index);
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: optionsOf(command),
      strict: true,
      allowPositionals: true,
      allowNegative: false,
    });
  } catch (error) {
    throw new UsageError(flagProblem(error), command);
  }
  const values = parsed.values;
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  const global: GlobalFlags = {
    ...(str('kubeconfig') !== undefined ? { kubeconfig: str('kubeconfig') } : {}),
    ...(str('context') !== undefined ? { context: str('context') } : {}),
    ...(str('namespace') !== undefined ? { namespace: str('namespace') } : {}),
  };
  for (const [k, v] of Object.entries(global)) {
    if (v === '') throw new UsageError(`--${k} needs a value`, command);
  }
  return { kind: 'command', command, global, positionals: parsed.positionals, flags: values };
}

/** Node's parseArgs messages, reworded for a kubectl user. */
function flagProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1] ?? ''}`;
  const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `flag ${missing[1] ?? ''} needs a value`;
  const noValue = /Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue) return `flag ${noValue[1] ?? ''} takes no value`;
  return message.split('\n')[0] ?? message;
}

/** A step number: a positive integer, as in approve.agentrun.dev/step-N. */
export function parseStepId(text: string, command: CommandName): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text))
    throw new UsageError(`"${text}" is not a step number (a positive integer, as in kubectl agentrun describe)`,
      command);
  return Number(text);
}

/** The positionals of a command, checked against how many it takes. */
export function expectPositionals(positionals: readonly string[], command: CommandName, names: readonly string[],
  options: { rest?: boolean } = {}): void {
  if (positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(positionals.length).join(' and ')}`, command);
  }
  if (!options.rest && positionals.length > names.length) {
    throw new UsageError(`unexpected argument "${positionals[names.length] ?? ''}"`, command);
  }
}
