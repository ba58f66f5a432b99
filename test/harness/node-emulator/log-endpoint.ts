/**
 * Container log files and the kubelet's /containerLogs endpoint (follow, tailLines, limitBytes).
 */
import { once } from 'node:events';
import { mkdir, open, writeFile, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { dirname } from 'node:path';
import { FOLLOW_POLL_MS, LOCALHOST } from './constants.ts';
import type { LogTarget } from './types.ts';
import { sleep } from './util.ts';

interface LogQuery {
  readonly follow: boolean;
  readonly previous: boolean;
  readonly tailLines?: number;
  readonly limitBytes?: number;
}

/** The log options of a /containerLogs request (follow, tailLines, limitBytes, previous). */
export function parseLogQuery(params: URLSearchParams): LogQuery {
  const count = (name: string) => {
    const value = Number.parseInt(params.get(name) ?? '', 10);
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  };
  return { follow: params.get('follow') === 'true', previous: params.get('previous') === 'true', tailLines: count('tailLines'), limitBytes: count('limitBytes') };
}

/** Sends a log file; with follow, keeps sending what is appended while `live()` holds. */
export async function streamLog(response: ServerResponse, file: string, query: LogQuery, live: () => boolean, closed: AbortSignal): Promise<void> {
  const handle = await open(file, 'r');
  try {
    let position = query.tailLines === undefined ? 0 : await tailOffset(handle, query.tailLines);
    let budget = query.limitBytes ?? Number.POSITIVE_INFINITY;
    response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    for (;;) {
      // Read liveness before the data: whatever a process wrote before it exited is then still sent.
      const more = query.follow && live();
      const sent = await copyToResponse(handle, position, budget, response, closed);
      position += sent;
      budget -= sent;
      if (!more || budget <= 0 || !await sleep(FOLLOW_POLL_MS, closed)) break;
    }
  } finally {
    await handle.close();
    response.end();
  }
}

/** Copies from `position` to the end of the file, at most `budget` bytes; returns the count. */
async function copyToResponse(handle: FileHandle, position: number, budget: number, response: ServerResponse, closed: AbortSignal): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  while (sent < budget && !closed.aborted) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, budget - sent), position + sent);
    if (bytesRead === 0) break;
    sent += bytesRead;
    if (!response.write(Buffer.from(chunk.subarray(0, bytesRead)))) await once(response, 'drain', { signal: closed });
  }
  return sent;
}

/** Offset where the last `lines` lines start (a final newline does not start another line). */
async function tailOffset(handle: FileHandle, lines: number): Promise<number> {
  const { size } = await handle.stat();
  if (lines === 0) return size;
  const chunk = Buffer.alloc(64 * 1024);
  let newlines = 0;
  for (let end = size; end > 0;) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (chunk[i] !== 0x0a || start + i === size - 1) continue;
      if (++newlines === lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

/** The last `lines` lines of a log file, at most `maxBytes` of them. */
export async function readLogTail(file: string, lines: number, maxBytes: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.max(await tailOffset(handle, lines), size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The first `maxBytes` of a file; '' if it does not exist. */
export async function readHead(file: string, maxBytes: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const buffer = Buffer.alloc(maxBytes);
    const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Creates an empty file (and its directory), or empties an existing one. */
export async function emptyFile(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, '');
}

/** Answers a request with a plain-text body. */
export function reply(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(message);
}

/** Finds the log a request names: a file to stream, or the HTTP status and message to answer. */
export type LogLookup = (namespace: string, pod: string, container: string, previous: boolean) => LogTarget;

/**
 * Starts the kubelet's HTTPS log endpoint on 127.0.0.1 (a free port). Like a kubelet, it admits
 * only clients with a certificate from the cluster CA (the apiserver).
 */
export async function listenForLogRequests(
  tls: { cert: Buffer; key: Buffer }, ca: Buffer, onRequest: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ ...tls, ca, requestCert: true, rejectUnauthorized: true }, onRequest);
  server.listen(0, LOCALHOST);
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('log server has no port');
  return { server, port: address.port };
}

/** Answers one `GET /containerLogs/{namespace}/{pod}/{container}` request from what `lookup` finds. */
export async function serveContainerLogs(request: IncomingMessage, response: ServerResponse, lookup: LogLookup): Promise<void> {
  const url = new URL(request.url ?? '/', 'https://kubelet');
  const path = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (request.method !== 'GET' || !path) {
    reply(response, 404, 'the node emulator serves only GET /containerLogs/{namespace}/{pod}/{container}\n');
    return;
  }
  const [namespace, podName, container] = path.slice(1).map((part) => decodeURIComponent(part));
  const query = parseLogQuery(url.searchParams);
  const target = lookup(namespace ?? '', podName ?? '', container ?? '', query.previous);
  if ('status' in target) {
    reply(response, target.status, `${target.message}\n`);
    return;
  }
  const closed = new AbortController();
  response.on('close', () => { closed.abort(); });
  await streamLog(response, target.file, query, target.live, closed.signal).catch((error: unknown) => {
    if (!closed.signal.aborted) throw error; // the client went away mid-stream: nothing to report
  });
}

/** Closes the log endpoint, cutting off followers (they would keep it open until their container exits). */
export async function closeLogEndpoint(server: Server | undefined): Promise<void> {
  if (!server?.listening) return;
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}
