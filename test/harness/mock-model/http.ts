/**
 * HTTP plumbing of the mock: request bodies, headers, API keys, clients that leave early.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Notices a client that closes the connection before getting its answer (e.g. the operator was killed). */
export function watchClient(res: ServerResponse): { gone: Promise<void>; hasLeft: () => boolean } {
  let left = false;
  const gone = new Promise<void>((resolve) => {
    res.on('close', () => {
      if (res.writableFinished) return;
      left = true;
      resolve();
    });
  });
  return { gone, hasLeft: () => left || res.destroyed };
}

/** Parses a request body; undefined when it is not JSON. */
export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

/** A request's whole body as text. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A request header's value (the first one if repeated). */
export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** SDK 1.x sends `Authorization: Bearer <key>`; older clients and curl users send `x-api-key`. */
export function apiKeyOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headerValue(req, 'authorization') ?? '')?.[1];
  return bearer ?? headerValue(req, 'x-api-key');
}
