/**
 * Trace and span ids of a run, derived from what is durable (the run's UID, step ids, attempts)
 * so that any operator process computes the same ids without writing them down, plus the W3C
 * `traceparent` format (https://www.w3.org/TR/trace-context/#traceparent-header).
 */
import { createHash } from 'node:crypto';

/** The trace context a run records in status.trace when it starts. */
export interface RunTraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** The root (`invoke_agent`) span's id: 16 lowercase hex digits. */
  readonly spanId: string;
  /** The caller's span, from the run's traceparent annotation. */
  readonly parentSpanId?: string;
  /** Whether the run's spans are exported (the sampler's decision, or the caller's flag). */
  readonly sampled: boolean;
}

/** A span context parsed from a `traceparent` value. */
export interface ParsedTraceparent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

/** Annotation a run's creator may set so the run joins the creator's trace. */
export const TRACEPARENT_ANNOTATION = 'agentrun.dev/traceparent';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * Parses a W3C traceparent; returns an error message for anything else. Versions other than 00
 * are accepted as the spec asks (the first four fields are read), except the invalid ff.
 */
export function parseTraceparent(value: string): ParsedTraceparent | { error: string } {
  if (value.length > 512) return { error: 'is longer than 512 characters' };
  const m = TRACEPARENT.exec(value);
  if (!m) return { error: 'is not version-traceid-spanid-flags in lowercase hex (e.g. 00-<32 hex>-<16 hex>-01)' };
  const [, version = '', traceId = '', spanId = '', flags = '', rest] = m;
  if (version === 'ff') return { error: 'has the invalid version ff' };
  if (version === '00' && rest !== undefined)
    return { error: 'has extra fields after the flags (version 00 has four)' };
  if (traceId === ZERO_TRACE) return { error: 'has an all-zero trace id' };
  if (spanId === ZERO_SPAN) return { error: 'has an all-zero parent id' };
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

/** `00-<trace>-<span>-<flags>`. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

function digest(parts: readonly (string | number)[], hexChars: number, zero: string): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, hexChars);
  // An all-zero id is invalid; a sha256 prefix of zeros is astronomically unlikely but cheap to rule out.
  return hex === zero ? `${hex.slice(0, -1)}1` : hex;
}

/** The trace id of a run that joins no caller's trace. */
export function runTraceId(runUid: string): string {
  return digest(['trace', runUid], 32, ZERO_TRACE);
}

/** A span id of the run: the root ('root'), a step attempt ('step', id, attempt), an approval wait... */
export function runSpanId(runUid: string, ...parts: readonly (string | number)[]): string {
  return digest(['span', runUid, ...parts], 16, ZERO_SPAN);
}

/** The span id of one attempt of a step: what a tool pod's TRACEPARENT names as its parent. */
export function stepSpanId(runUid: string, stepId: number, attempt: number): string {
  return runSpanId(runUid, 'step', stepId, attempt);
}
