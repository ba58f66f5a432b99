/** What every command gets: the cluster, where to write, the terminal it may ask on, its arguments. */
import type { CommandName, GlobalFlags } from './args.ts';
import type { Kube } from './kube.ts';
import type { Output } from './render.ts';

/** The input a command may ask a question on. */
export interface Input extends NodeJS.ReadableStream {
  readonly isTTY?: boolean;
}

/** What a command runs with: the cluster, where to print, its parsed flags and positionals. */
export interface CommandContext {
  readonly command: CommandName;
  readonly kube: Kube;
  readonly out: Output;
  readonly input: Input;
  /** Where prompts go (stderr, so that stdout stays the result). */
  readonly prompt: NodeJS.WritableStream;
  readonly global: GlobalFlags;
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
}

/** A string flag's value, if given. */
export function stringFlag(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** Whether a boolean flag was given. */
export function booleanFlag(ctx: CommandContext, name: string): boolean {
  return ctx.flags[name] === true;
}

/**
 * This plugin's command line for a follow-up: `args`, an explicit namespace, the same context
 * flags this command was given, then `flags`.
 */
export function suggest(ctx: CommandContext, namespace: string, args: readonly string[],
  flags: readonly string[] = []): string {
  const context = [
    ...(ctx.global.kubeconfig !== undefined ? ['--kubeconfig', ctx.global.kubeconfig] : []),
    ...(ctx.global.context !== undefined ? ['--context', ctx.global.context] : []),
  ];
  return ['kubectl agentrun', ...[...args, '-n', namespace, ...context, ...flags].map(shellQuote)].join(' ');
}

/** Quotes an argument for a POSIX shell when it needs it. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
