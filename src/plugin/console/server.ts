/**
 * The console's HTTP server, bound to 127.0.0.1 only. It holds no credentials of its own: every
 * API request it makes is the kubeconfig user's (kube.ts), so RBAC and the admission policies
 * decide, and the apiserver records who approved. Every request passes security.ts first.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError, httpStatus } from '../api-errors.ts';
import { PluginError } from '../errors.ts';
import type { Kube } from '../kube.ts';
import { readAsset } from './assets.ts';
import { pendingDetails, runDetail } from './data.ts';
import { BodyError, decide, parseDecision } from './decide.ts';
import { SECURITY_HEADERS, hostAllowed, newToken, refuse, sessionCookie, tokenMatches } from './security.ts';
import { RunWatcher, type RunChange } from './watch.ts';

/** Static files, read once at start; nothing else on disk is ever served. */
const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  ...Object.fromEntries(['console', 'dom', 'state', 'runs', 'inbox', 'run'].map((m) => [`/${m}.js`, {
    file: `${m}.js`,
    type: 'text/javascript; charset=utf-8',
  }])),
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};
/** A decision body is a step, a verb and a short text. */
const MAX_BODY_BYTES = 16 * 1024;
/** Browser tabs streaming the live list at once; more would only hold sockets open. */
const MAX_STREAMS = 32;
const HEARTBEAT_MS = 15_000;
const NAME = '[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?';
const RUN_PATH = new RegExp(`^/api/runs/(${NAME})/(${NAME})(/pending|/decisions)?$`);

/** How to start the console: the cluster, the port, and stand-ins for tests. */
export interface ConsoleOptions {
  readonly kube: Kube;
  /** 0: a free port chosen by the system. */
  readonly port?: number;
  /** For tests: a token instead of a random one. */
  readonly token?: string;
  /** For tests: where the live list comes from (default: a RunWatcher on `kube`). */
  readonly source?: RunSource;
}

/** The live runs list the server streams: RunWatcher, or a stand-in in unit tests. */
export type RunSource = Pick<RunWatcher, 'scope' | 'snapshot' | 'subscribe' | 'start' | 'stop'>;

/** A started console: where it listens, its session token and URL, and how to stop it. */
export interface RunningConsole {
  readonly port: number;
  readonly token: string;
  /** The URL that opens the console: it carries the token once, then a cookie does. */
  readonly url: string;
  readonly watcher: RunSource;
  close(): Promise<void>;
}

/** Starts the console; resolves once it listens and the runs watch has started. */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const token = options.token ?? newToken();
  const assets = new Map(Object.entries(ASSETS).map(([path, a]) => [path, {
    body: readAsset(a.file),
    type: a.type,
  }]));
  const watcher = options.source ?? new RunWatcher(options.kube);
  const streams = new Set<ServerResponse>();
  let port = 0;
  const server: Server = createServer((req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    handle(req, res).catch((error: unknown) => {
      sendError(res, error);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // The token in the printed URL becomes a cookie, and leaves the address bar (and history).
    const offered = url.searchParams.get('token');
    if (offered !== null && req.method === 'GET' && url.pathname === '/' && hostAllowed(req.headers.host, port)) {
      if (!tokenMatches(offered, token)) {
        sendJson(res, 401, { error: 'wrong token' });
        return;
      }
      res.writeHead(303, { 'Set-Cookie': sessionCookie(port, token), Location: '/' }).end();
      return;
    }
    const refusal = refuse({
      method: req.method,
      host: req.headers.host,
      origin: req.headers.origin,
      cookie: req.headers.cookie,
      contentType: req.headers['content-type'],
    }, port, token);
    if (refusal) {
      sendJson(res, refusal.status, { error: refusal.message });
      return;
    }

    const asset = req.method === 'GET' ? assets.get(url.pathname) : undefined;
    if (asset) {
      res.writeHead(200, { 'Content-Type': asset.type }).end(asset.body);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/events') {
      stream(res);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/info') {
      sendJson(res, 200, { server: options.kube.server, namespace: options.kube.namespace, scope: watcher.scope });
      return;
    }
    const match = RUN_PATH.exec(url.pathname);
    if (match) {
      const [, namespace = '', , name = '', , sub] = match;
      if (req.method === 'GET' && sub === undefined) {
        sendJson(res, 200, await runDetail(options.kube, namespace, name));
        return;
      }
      if (req.method === 'GET' && sub === '/pending') {
        sendJson(res, 200, await pendingDetails(options.kube, namespace, name));
        return;
      }
      if (req.method === 'POST' && sub === '/decisions') {
        const decision = parseDecision(await readBody(req));
        sendJson(res, 200, await decide(options.kube, namespace, name, decision));
        return;
      }
    }
    sendJson(res, 404, { error: 'not found' });
  }

  function stream(res: ServerResponse): void {
    if (streams.size >= MAX_STREAMS) {
      sendJson(res, 503, { error: 'too many open console tabs' });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    const send = (change: RunChange): void => {
      res.write(`event: ${change.type}\ndata: ${JSON.stringify(change)}\n\n`);
    };
    send({ type: 'snapshot', runs: watcher.snapshot(), scope: watcher.scope });
    const unsubscribe = watcher.subscribe(send);
    const heartbeat = setInterval(() => {
      res.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    streams.add(res);
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  try {
    await watcher.start();
  } catch (error) {
    watcher.stop();
    server.close();
    throw error;
  }
  return {
    port,
    token,
    url: `http://127.0.0.1:${port}/?token=${token}`,
    watcher,
    close: async () => {
      watcher.stop();
      for (const res of streams) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

/** An API refusal keeps its HTTP status and the apiserver's message; a plugin error is a 409. */
function sendError(res: ServerResponse, error: unknown): void {
  const status = httpStatus(error) ?? (error instanceof PluginError ? (error instanceof BodyError ? 400 : 409) : 500);
  sendJson(res, status, { error: describeError(error) });
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyError(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new BodyError('the request body is not JSON');
  }
}
