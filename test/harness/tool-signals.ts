/**
 * A tiny HTTP server through which tools in containers talk to the process that tests them: a
 * container cannot see this machine's files, so it appends lines to files and polls for files
 * here. It listens on a real node's IP (an address of this machine that only its pods reach) and
 * touches files under `root` only. Used by the integration tests (test-node.ts) and the chaos suite.
 */
import { existsSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';

export interface ToolSignalServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * `POST /append?file=F[&stamp=1]` appends the body as a line to F (with ` <epoch ms>` when
 * stamped: busybox's date has no milliseconds); `GET /exists?file=F` answers 200 or 404.
 */
export async function startToolSignalServer(host: string, root: string): Promise<ToolSignalServer> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = resolve(url.searchParams.get('file') ?? '');
    if (!file.startsWith(`${base}/`)) { res.writeHead(403).end('outside the scratch dir'); return; }
    if (url.pathname === '/exists') { res.writeHead(existsSync(file) ? 200 : 404).end(); return; }
    if (url.pathname === '/append' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => { chunks.push(c); });
      req.on('end', () => {
        const stamp = url.searchParams.get('stamp') === '1' ? ` ${Date.now()}` : '';
        appendFile(file, `${Buffer.concat(chunks).toString('utf8')}${stamp}\n`)
          .then(() => { res.writeHead(200).end('ok'); }, (error: unknown) => { res.writeHead(500).end(String(error)); });
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((done, fail) => { server.once('error', fail); server.listen(0, host, done); });
  server.unref();
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((done) => { server.closeAllConnections(); server.close(() => { done(); }); }),
  };
}

/**
 * A shell snippet (busybox) that appends the line `lineExpr` (a shell word) to `file` through the
 * server at `url`, and fails the tool (exit 97) when it could not: a lost record is never silent.
 */
export function appendLineSnippet(url: string, file: string, lineExpr: string, stamp = false): string {
  return `wget -q -O /dev/null --post-data ${lineExpr} '${url}/append?file=${encodeURIComponent(file)}${stamp ? '&stamp=1' : ''}' || exit 97`;
}

/** A shell snippet (busybox) that waits until `file` exists, asking the server at `url`. */
export function waitForFileViaSnippet(url: string, file: string, pollSeconds = 0.1): string {
  // 404 until the file exists: busybox wget says so on stderr, which is the tool's output; hush it.
  // (No -T: busybox 1.35's wget crashes with it.)
  return `until wget -q -O /dev/null '${url}/exists?file=${encodeURIComponent(file)}' 2>/dev/null; do sleep ${String(pollSeconds)}; done`;
}
