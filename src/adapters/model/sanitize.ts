/**
 * What a model endpoint says and what a failed call throws is shown to run creators (status,
 * conditions, Events) and written to logs. Two rules hold for every byte sequence: the API key
 * never appears, in any encoding or fragment; an endpoint's error body is bounded and anything
 * that looks like data or a credential is dropped.
 */
import { REDACTED } from '../../core/redact.ts';

/** Longest endpoint text that reaches a status message. */
export const MAX_ENDPOINT_TEXT = 300;

/** Things that look like credentials or tokens, whoever's they are. */
const CREDENTIAL_LIKE = [
  /sk-ant-[\w-]*/giu, // Anthropic keys
  /\b(?:bearer|basic)\s+\S+/giu,
  /\b(?:x-api-key|api[-_]?key|authorization|password|secret|token)\b\s*["']?\s*[:=]\s*\S+/giu,
  /\beyJ[\w-]+\.[\w-]+\.[\w-]*/gu, // JWTs
  /\b[A-Za-z0-9+/_-]{32,}={0,2}/gu, // long base64/hex runs: keys, hashes, data
];

/**
 * An endpoint's text (an error message) made fit to show: control characters become spaces,
 * credential-like runs and embedded JSON/HTML (data copied from the body) are dropped, and it is
 * cut to MAX_ENDPOINT_TEXT characters.
 */
export function sanitizeEndpointText(text: string): string {
  let out = text.slice(0, 4 * MAX_ENDPOINT_TEXT).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/gu, ' ');
  // A body that carries a document (JSON, HTML, XML) is data, not a message: drop it from its start.
  const structured = out.search(/[{[<]/u);
  if (structured >= 0) out = `${out.slice(0, structured)}[structured content dropped]`;
  for (const pattern of CREDENTIAL_LIKE) out = out.replace(pattern, REDACTED);
  out = out.trim();
  return out.length <= MAX_ENDPOINT_TEXT ? out : `${out.slice(0, MAX_ENDPOINT_TEXT - 1)}…`;
}

/** True when `key` can travel in an HTTP header as it is: visible ASCII only, no whitespace inside. */
export function isHeaderSafeKey(key: string): boolean {
  return /^[\u0021-\u007e]+$/u.test(key);
}
