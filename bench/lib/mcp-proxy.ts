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
  /** How many `initialize` requests (sessions opened) and TCP connections it has seen so far. */
  counts(): { initialize: number; connections: number };
  close(): Promise<void>;
}

/** A POST's JSON-RPC method, and for a tools/call its `message` argument. */
function parse(body: Buffer): { method?: string; message?: string } {
  try {
    const msg = JSON.parse(body.toString('utf8')) as { method?: string; params?: { arguments?: { message?: unknown } } };
    const message = msg.params?.arguments?.message;
    return { method: msg.method, message: msg.method === 'tools/call' ? (typeof message === 'string' ? message : '') : undefined };
  } catch { return {}; }
}

/** Starts the proxy on a free port of 127.0.0.1, forwarding to `target` (same path). */
export async function startMCPProxy(target: string): Promise<MCPProxy> {
  const upstream = new URL(target);
  const calls: ProxiedCall[] = [];
  const counts = { initialize: 0, connections: 0 };
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
      const { method, message } = req.method === 'POST' ? parse(body) : {};
      if (method === 'initialize') counts.initialize++;
      const call = message === undefined ? undefined : { message, receivedAt };
      if (call) calls.push(call);
      forward(req, res, body, call);
    });
  });
  server.on('connection', () => { counts.connections++; });
  const port = await freePort();
  await new Promise<void>((resolve) => { server.listen(port, '127.0.0.1', resolve); });
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    calls,
    counts: () => ({ ...counts }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    },
  };
}
