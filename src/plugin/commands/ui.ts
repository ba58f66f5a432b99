/**
 * `kubectl agentrun ui`: a local web console for runs and approvals, acting as the kubeconfig's
 * user. It prints the URL (and opens the browser unless --no-open), and stops on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectPositionals } from '../args.ts';
import { booleanFlag, stringFlag, type CommandContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { startConsole } from '../console/server.ts';

/** Serves the web console on localhost until Ctrl-C, opening the browser unless --no-open. */
export async function ui(ctx: CommandContext): Promise<void> {
  expectPositionals(ctx.positionals, 'ui', []);
  const portText = stringFlag(ctx, 'port') ?? '0';
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`--port must be a port number (0-65535; 0 picks a free one), not "${portText}"`, 'ui');
  }
  const server = await startConsole({ kube: ctx.kube, port: Number(portText) });
  const scope = server.watcher.scope;
  ctx.out.print(`kubectl agentrun ui: ${server.url}`);
  const where = scope.allNamespaces
    ? 'every namespace' :
    `namespaces: ${scope.namespaces.join(', ') || 'none you may list runs in'}`;
  ctx.out.note(`Console for ${ctx.kube.server} as your kubeconfig user, showing ${where}. Ctrl-C stops it.`);
  for (const note of scope.notes) ctx.out.note(`note: ${note}`);
  const cleanup: (() => Promise<void>)[] = [];
  if (!booleanFlag(ctx, 'no-open')) {
    const opened = await openBrowser(server.url);
    if (opened) cleanup.push(opened);
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  for (const c of cleanup) await c();
}

/**
 * Opens the browser on a file that redirects to the URL, rather than on the URL: a command line
 * is readable by every local user (ps), a 0600 file only by us. Returns its cleanup, or undefined
 * when there is no browser to open (no display): the printed URL is then the way in.
 */
async function openBrowser(url: string): Promise<(() => Promise<void>) | undefined> {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'linux' ? 'xdg-open' : undefined;
  if (opener === undefined) return undefined;
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'agentrun-ui-'));
  const file = join(dir, 'open.html');
  // The token is base64url and the URL ours: nothing here needs escaping beyond the quotes.
  const page = `<!doctype html><meta http-equiv="refresh" content="0;url=${url}">`
    + `<a href="${url}">Open the console</a>\n`;
  await writeFile(file, page, { mode: 0o600 });
  const child = spawn(opener, [file], { stdio: 'ignore', detached: true });
  child.on('error', () => {/* no opener: the printed URL still works */});
  child.unref();
  return () => rm(dir, { recursive: true, force: true });
}
