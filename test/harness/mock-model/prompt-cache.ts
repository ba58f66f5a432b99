/**
 * Prompt caching: cache breakpoints, TTLs and the cache read/write token counts of the usage block.
 */
import { createHash } from 'node:crypto';
import { type JsonObject, type ParsedRequest, cacheControlsOf, isObject } from './request-parsing.ts';

/** The documented lookback: a breakpoint finds cache hits up to ~20 blocks before it. */
const CACHE_LOOKBACK_BLOCKS = 20;
const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;

type CacheTtl = keyof typeof TTL_MS;

/** One block of the prompt in cache order (tools, system, messages), with its running prefix. */
interface PromptSegment {
  /** Hash of everything up to and including this block: the prefix's cache identity. */
  prefixHash: string;
  /** Characters of JSON up to and including this block. */
  prefixChars: number;
  /** TTL of the cache_control breakpoint on this block, if it is one. */
  breakpointTtl: CacheTtl | undefined;
}

/** The prompt-caching token counts of a response's `usage` block. */
export interface CacheUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

/** Estimated tokens of `chars` characters of JSON: ceil(chars / 4), not real tokenization. */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** The block as the cache sees it: cache_control markers do not change a prefix's identity. */
export function withoutCacheControl(block: JsonObject): JsonObject {
  const { cache_control: _ignored, ...rest } = block;
  if (!Array.isArray(rest.content)) return rest;
  return { ...rest, content: rest.content.map((inner: unknown) => (isObject(inner) ? withoutCacheControl(inner) : inner)) };
}

function ttlOf(block: JsonObject): CacheTtl | undefined {
  const controls = cacheControlsOf(block);
  if (controls.length === 0) return undefined;
  return controls.some((c) => c.ttl === '1h') ? '1h' : '5m';
}

/** Flattens the request into blocks in the order the cache reads them, hashing prefixes as it goes. */
export function promptSegments(request: ParsedRequest, cacheScope: string): PromptSegment[] {
  const blocks: { payload: unknown; source: JsonObject }[] = [
    ...request.tools.map((tool) => ({ payload: { tool: withoutCacheControl(tool) }, source: tool })),
    ...request.system.map((block) => ({ payload: { system: withoutCacheControl(block) }, source: block })),
    ...request.messages.flatMap((message, m) =>
      message.content.map((block) => ({ payload: { m, role: message.role, block: withoutCacheControl(block) }, source: block }))),
  ];
  let hash = createHash('sha256').update(cacheScope).digest('hex');
  let chars = 0;
  const segments = blocks.map(({ payload, source }) => {
    const json = JSON.stringify(payload);
    hash = createHash('sha256').update(hash).update(json).digest('hex');
    chars += json.length;
    return { prefixHash: hash, prefixChars: chars, breakpointTtl: ttlOf(source) };
  });
  const last = segments.at(-1);
  if (request.automaticCacheControl && last) {
    last.breakpointTtl ??= request.automaticCacheControl.ttl === '1h' ? '1h' : '5m';
  }
  return segments;
}

/** Remembers written prefixes (hash → expiry) and splits a request's input tokens accordingly. */
export class PromptCache {
  private readonly entries = new Map<string, number>();
  private readonly minTokens: number;

  constructor(minTokens: number) {
    this.minTokens = minTokens;
  }

  clear(): void {
    this.entries.clear();
  }

  /** Accounts one request: reads the longest cached prefix, writes every breakpoint prefix. */
  account(segments: PromptSegment[], now: number): CacheUsage {
    const totalTokens = estimateTokens(segments.at(-1)?.prefixChars ?? 0);
    const breakpoints = segments
      .map((segment, index) => ({ segment, index }))
      .filter(({ segment }) => segment.breakpointTtl !== undefined && this.isCacheable(segment));
    const readIndex = Math.max(-1, ...breakpoints.map(({ index }) => this.longestHitAtOrBefore(segments, index, now)));
    const lastBreakpoint = breakpoints.at(-1);
    const writeIndex = Math.max(readIndex, lastBreakpoint?.index ?? -1);
    const readTokens = readIndex < 0 ? 0 : estimateTokens(segments[readIndex]?.prefixChars ?? 0);
    const writtenTokens = writeIndex < 0 ? 0 : estimateTokens(segments[writeIndex]?.prefixChars ?? 0);
    const creationTokens = writtenTokens - readTokens;
    for (const { segment } of breakpoints) this.entries.set(segment.prefixHash, now + TTL_MS[segment.breakpointTtl ?? '5m']);
    const readSegment = segments[readIndex];
    if (readSegment) this.refresh(readSegment.prefixHash, now);
    const creationTtl = lastBreakpoint?.segment.breakpointTtl ?? '5m';
    return {
      input_tokens: totalTokens - writtenTokens,
      cache_creation_input_tokens: creationTokens,
      cache_read_input_tokens: readTokens,
      cache_creation: {
        ephemeral_5m_input_tokens: creationTtl === '5m' ? creationTokens : 0,
        ephemeral_1h_input_tokens: creationTtl === '1h' ? creationTokens : 0,
      },
    };
  }

  private isCacheable(segment: PromptSegment): boolean {
    return estimateTokens(segment.prefixChars) >= this.minTokens;
  }

  private longestHitAtOrBefore(segments: PromptSegment[], breakpoint: number, now: number): number {
    for (let i = breakpoint; i > breakpoint - CACHE_LOOKBACK_BLOCKS && i >= 0; i--) {
      const expiresAt = this.entries.get(segments[i]?.prefixHash ?? '');
      if (expiresAt !== undefined && expiresAt > now) return i;
    }
    return -1;
  }

  /** A cache hit extends the entry's life, as the real cache does. */
  private refresh(hash: string, now: number): void {
    const expiresAt = this.entries.get(hash);
    if (expiresAt !== undefined) this.entries.set(hash, Math.max(expiresAt, now + TTL_MS['5m']));
  }
}
