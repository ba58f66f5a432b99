/**
 * A `fetch` for the Anthropic SDK that stops reading a response past a byte cap. The SDK reads a
 * body whole (`response.json()`), so without this a hostile or broken endpoint decides how much
 * memory the operator uses: a 150 MB answer took it from 165 MB to 1.5 GB RSS.
 */

/** The model endpoint sent more bytes than the operator reads; the rest was not read. */
export class ModelResponseTooLargeError extends Error {
  override name = 'ModelResponseTooLargeError';
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super(`the model API's response exceeded ${limitBytes} bytes; the operator stopped reading it`);
    this.limitBytes = limitBytes;
  }
}

/**
 * Wraps `inner` so that a response (success or error) larger than `limitBytes` fails with
 * ModelResponseTooLargeError: at once when Content-Length says so, else as soon as the counted
 * (decompressed) bytes pass the cap. The connection is cancelled; nothing past the cap is buffered.
 */
export function boundedFetch(limitBytes: number, inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    // Content-Length counts encoded bytes; the stream below counts what decoding yields.
    if (response.ok && Number.isFinite(declared) && declared > limitBytes &&
      !response.headers.get('content-encoding')) {
      await response.body?.cancel().catch(() => undefined);
      throw new ModelResponseTooLargeError(limitBytes);
    }
    if (!response.body) return response;
    // The SDK swallows errors while reading an error body, so an error body is read here, and only
    // its start: an API error is a few hundred bytes, anything more is not one.
    if (!response.ok)
      return new Response(await readStart(response.body, MAX_ERROR_BODY_BYTES), { status: response.status,
        statusText: response.statusText, headers: withoutLength(response.headers) });
    let seen = 0;
    const limited = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limitBytes) {
          controller.error(new ModelResponseTooLargeError(limitBytes));
          return;
        }
        controller.enqueue(chunk);
      },
    }));
    return new Response(limited, { status: response.status, statusText: response.statusText,
      headers: response.headers });
  };
}

/** Bytes of an error response that are read; the rest is dropped unread. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

async function readStart(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const out = new Uint8Array(limit);
  let filled = 0;
  try {
    while (filled < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, limit - filled);
      out.set(value.subarray(0, take), filled);
      filled += take;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return out.slice(0, filled);
}

function withoutLength(headers: Headers): Headers {
  const copy = new Headers(headers);
  copy.delete('content-length');
  copy.delete('content-encoding');
  return copy;
}

/** The ModelResponseTooLargeError behind `error` (itself or a cause), if there is one. */
export function responseTooLargeIn(error: unknown): ModelResponseTooLargeError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof ModelResponseTooLargeError) return e;
  }
  return undefined;
}
