/**
 * The operator's one HTTP port: GET /metrics (Prometheus text format), /healthz (the process and
 * its event loop answer) and /readyz (the operator can do its job: caches synced, and either the
 * leader or a synced standby). Plain node:http, no framework.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../controller/index.ts';

/** Whether the operator is ready, and if not, why (the /readyz body). */
export interface Readiness {
  readonly ready: boolean;
  readonly reason: string;
}

/** What the /metrics, /healthz and /readyz server serves, and where it listens. */
export interface ObservabilityServerOptions {
  readonly port: number;
  /** Interface to listen on (default all: '::' falls back to IPv4 where there is no IPv6). */
  readonly host?: string;
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly readiness: () => Readiness;
  readonly log: Logger;
}

/** The running /metrics, /healthz and /readyz server. */
export interface ObservabilityServer {
  /** The port actually bound (useful with port 0 in tests). */
  readonly port: number;
  close(): Promise<void>;
}

/** Starts listening; rejects if the port cannot be bound. */
export async function startObservabilityServer(options: ObservabilityServerOptions): Promise<ObservabilityServer> {
  const server = createServer((req, res) => {
    void handle(options, req, res);
  });
  // Probes and scrapes are short; do not let a slow client hold a socket.
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await listen(server, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  options.log.info({ port }, 'serving /metrics, /healthz and /readyz');
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
      server.closeAllConnections();
    }),
  };
}

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(err);
    };
    server.once('error', onError);
    server.listen({ port, ...(host ? { host } : {}) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function handle(options: ObservabilityServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    reply(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    return;
  }
  try {
    switch (path) {
      case '/healthz':
      case '/livez':
        reply(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const { ready, reason } = options.readiness();
        reply(res, ready ? 200 : 503, `${reason}\n`);
        return;
      }
      case '/metrics': {
        const { contentType, body } = await options.metrics();
        reply(res, 200, body, { 'content-type': contentType });
        return;
      }
      default:
        reply(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  } catch (err) {
    options.log.warn({ err, path }, 'observability request failed');
    reply(res, 500, 'internal error\n');
  }
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
