/**
 * A timestamping pass-through in front of the real MCP server (server-everything): every client
 * (the operator, the peer agents) talks to the server through it, so the benchmark sees when each
 * `tools/call` reached the server side and when the server's answer had been passed back in full.
 * It forwards bytes unchanged (SSE included) and adds well under a millisecond on loopback.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { freePort } from '../../test/harness/control-plane.ts';

export interface ProxiedCall {
  /** `params.arguments.message` of the call (the benchmark puts its run key and turn there). */
  readonly message: string;
  /** Epoch ms: the request arrived here. */
  readonly receivedAt: number;
  /** Epoch ms: the server's response had been passed on in full. */
  answeredAt?: number;
}

export interface MCPProxy {
  /** http://127.0.0.1:PORT/mcp */
  readonly url: string;
  readonly calls: ProxiedCall[];
  close(): Promise<void>;
}

function callOf(body: Buffer): string | undefined {
  try {
    const msg = JSON.parse(body.toString('utf8')) as { method?: string; params?: { arguments?: { message?: unknown } } };
    if (msg.method !== 'tools/call') return undefined;
    const message = msg.params?.arguments?.message;
    return typeof message === 'string' ? message : '';
  } catch { return undefined; }
}

/** Starts the proxy on a free port of 127.0.0.1, forwarding to `target` (same path). */
export async function startMCPProxy(target: string): Promise<MCPProxy> {
  const upstream = new URL(target);
  const calls: ProxiedCall[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, call: ProxiedCall | undefined) => {
    const out = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.once('end', () => { if (call) call.answeredAt = Date.now(); });
    });
    out.once('error', (e) => { res.destroy(e); });
    res.once('close', () => { out.destroy(); });
    out.end(body);
  };
  const server = createServer((req, res) => {
    const receivedAt = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { chunks.push(c); });
    req.once('end', () => {
      const body = Buffer.concat(chunks);
      const message = req.method === 'POST' ? callOf(body) : undefined;
      const call = message === undefined ? undefined : { message, receivedAt };
      if (call) calls.push(call);
      forward(req, res, body, call);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => { server.listen(port, '127.0.0.1', resolve); });
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    },
  };
}
