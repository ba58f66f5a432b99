/**
 * `kubectl agentrun version`: which plugin this is. The single executable (scripts/build-plugin.ts)
 * has its version and commit compiled in; run from a checkout, it reads package.json.
 */
import { readFileSync } from 'node:fs';
import { isSea } from 'node:sea';
import type { CommandContext } from '../context.ts';
import { expectPositionals } from '../args.ts';

/** Replaced by the single-executable build (esbuild `define`); absent when run from a checkout. */
declare const AGENTRUN_BUILD: { readonly version: string; readonly commit: string } | undefined;

/** The plugin's version, the commit it was built from, and how it runs. */
export interface PluginVersion {
  readonly version: string;
  /** The git commit it was built from, or "source" when run from a checkout. */
  readonly commit: string;
  readonly node: string;
  /** True when this is the single executable, Node.js and the plugin in one file. */
  readonly singleExecutable: boolean;
}

/** This plugin's version, and how it runs. */
export function pluginVersion(): PluginVersion {
  const build = typeof AGENTRUN_BUILD === 'undefined' ? undefined : AGENTRUN_BUILD;
  const version = build?.version ?? (JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string }).version;
  return { version, commit: build?.commit ?? 'source', node: process.version, singleExecutable: isSea() };
}

/** `kubectl agentrun version`: prints the plugin's version, commit and runtime. */
export async function version(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'version', []);
  const v = pluginVersion();
  const how = v.singleExecutable ? 'single executable' : 'run by node';
  ctx.out.print(`kubectl-agentrun ${v.version} (commit ${v.commit}, Node.js ${v.node}, ${how})`);
  return Promise.resolve();
}
