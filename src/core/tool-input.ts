/**
 * Checks tool definitions and tool call inputs against JSON Schema, before any pod exists.
 *
 * Schemas and inputs are tenant-written (a run's creator writes the schema, the model writes the
 * input), so nothing here may take time that grows faster than the input: `pattern` and
 * `patternProperties` run on RE2 (re2js, linear time) instead of the backtracking JavaScript
 * engine, inputs are measured in UTF-8 bytes and refused above a cap before they are validated,
 * and the compiled-schema cache is bounded.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { RE2JS } from 're2js';
import { canonicalJson } from './canonical.ts';

/**
 * A linear-time regular expression engine for ajv: RE2 has no backtracking, so `^(a+)+$` takes
 * time proportional to the input. Syntax RE2 cannot run in linear time (backreferences,
 * lookaround) fails to compile, which refuses the schema instead of running it slowly.
 */
export const linearRegExp: RegExpEngine = Object.assign(
  (pattern: string): { test: (s: string) => boolean; toString: () => string } => {
    const re = RE2JS.compile(RE2JS.translateRegExp(pattern));
    // ajv keys compiled patterns by toString(): it must be the pattern, or all patterns share one.
    return { test: (s: string) => re.test(s), toString: () => pattern };
  },
  // Only used by ajv's standalone code generation, which the operator does not use.
  { code: 'linearRegExp' },
);

const ajv = new Ajv({ allErrors: true, strict: false, code: { regExp: linearRegExp } });
// ajv compares array items pairwise (quadratic: 2 s for 12,000 small arrays); canonical JSON in a
// Set finds duplicates in time proportional to the input.
ajv.removeKeyword('uniqueItems');
ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate: uniqueItems });

function uniqueItems(this: unknown, unique: boolean, data: unknown[]): boolean {
  if (!unique) return true;
  const seen = new Set<string>();
  for (const [i, item] of data.entries()) {
    const key = canonicalJson(item);
    if (seen.has(key)) {
      uniqueItems.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (item ${i} repeats an earlier one)`, params: {} }];
      return false;
    }
    seen.add(key);
  }
  return true;
}
uniqueItems.errors = [] as { keyword: string; message: string; params: object }[];

/**
 * Tool inputs above this size (UTF-8 bytes of their JSON) are refused: the input travels in a pod
 * annotation and environment variable, and the pod object is limited to what the apiserver takes.
 */
export const MAX_TOOL_INPUT_BYTES = 128 * 1024;

/** Compiled schemas kept at most; compiling is the expensive part and schemas repeat across steps. */
const COMPILED_CACHE_SIZE = 256;
/** A schema larger than this (JSON bytes) is refused rather than compiled. */
export const MAX_INPUT_SCHEMA_BYTES = 64 * 1024;
/** Validation errors reported to the model at most, so an error message stays bounded. */
const MAX_REPORTED_ERRORS = 10;

const compiled = new Map<string, ValidateFunction | string>();

/** The number of bytes `text` takes in UTF-8, which is what every size limit on the wire counts. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { bytes += 4; i++; }
    else bytes += 3; // BMP, or a lone surrogate (encoded as U+FFFD, 3 bytes)
  }
  return bytes;
}

/**
 * Undefined when `schema` can be a tool's inputSchema, otherwise what is wrong with it: the
 * Messages API takes only object schemas, and ajv (on the linear-time engine) must compile it.
 */
export function toolSchemaProblem(schema: Record<string, unknown>): string | undefined {
  if (schema.type !== 'object') return `"type" must be "object" (the Messages API takes only object inputs), not ${JSON.stringify(schema.type ?? null).slice(0, 40)}`;
  const validate = compile(schema);
  return typeof validate === 'string' ? validate : undefined;
}

/** Undefined when the input is valid, otherwise a message the model can act on. */
export function toolInputProblem(schema: Record<string, unknown>, input: unknown): string | undefined {
  const size = utf8Bytes(JSON.stringify(input ?? null));
  if (size > MAX_TOOL_INPUT_BYTES) return `the input is ${size} bytes (UTF-8); tool inputs are limited to ${MAX_TOOL_INPUT_BYTES} bytes`;
  const validate = compile(schema);
  if (typeof validate === 'string') return `the tool's inputSchema is not a valid JSON Schema: ${validate}`;
  if (validate(input)) return undefined;
  return ajv.errorsText(validate.errors?.slice(0, MAX_REPORTED_ERRORS), { dataVar: 'input', separator: '; ' }).slice(0, 2048);
}

/** The compiled validator, or why the schema does not compile; cached (LRU) by the schema's text. */
function compile(schema: Record<string, unknown>): ValidateFunction | string {
  const key = JSON.stringify(schema);
  const hit = compiled.get(key);
  if (hit !== undefined) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  let validate: ValidateFunction | string;
  if (utf8Bytes(key) > MAX_INPUT_SCHEMA_BYTES) validate = `the schema is larger than ${MAX_INPUT_SCHEMA_BYTES} bytes`;
  else {
    try { validate = ajv.compile(schema); } catch (error) { validate = (error instanceof Error ? error.message : String(error)).slice(0, 512); }
    // ajv keeps every schema object it compiled; this cache is the only one, and it is bounded.
    ajv.removeSchema(schema);
  }
  compiled.set(key, validate);
  if (compiled.size > COMPILED_CACHE_SIZE) {
    const oldest = compiled.keys().next().value;
    if (oldest !== undefined) compiled.delete(oldest);
  }
  return validate;
}
