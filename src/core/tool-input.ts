/**
 * Checks tool definitions and tool call inputs against JSON Schema, before any pod exists.
 *
 * Schemas and inputs are tenant-written (a run's creator writes the schema, the model writes the
 * input), so nothing here may take time that grows faster than the input: `pattern` and
 * `patternProperties` run on RE2 (re2js, linear time) instead of the backtracking JavaScript
 * engine, `uniqueItems` is linear, one validation may evaluate at most VALIDATION_STEP_BUDGET
 * subschemas (anyOf/oneOf nested over deep input is exponential otherwise), inputs are measured
 * in UTF-8 bytes and refused above a cap before they are validated, and the compiled-schema
 * cache is bounded.
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
      uniqueItems.errors = [{ keyword: 'uniqueItems',
        message: `must NOT have duplicate items (item ${i} repeats an earlier one)`, params: {} }];
      return false;
    }
    seen.add(key);
  }
  return true;
}
uniqueItems.errors = [] as { keyword: string; message: string; params: object }[];

/**
 * Subschema evaluations one validation may make. `anyOf: [A, B]` where both recurse into the
 * same schema doubles the work per level of input nesting: 20 levels took 12 s. Every subschema
 * of a compiled schema carries STEP_KEYWORD, which counts; past the budget validation stops.
 */
export const VALIDATION_STEP_BUDGET = 200_000;
const STEP_KEYWORD = 'x-agentrun-step';
let steps = 0;
class ValidationBudgetExceeded extends Error {}
ajv.addKeyword({
  keyword: STEP_KEYWORD,
  schemaType: 'boolean',
  errors: false,
  validate: () => {
    if (++steps > VALIDATION_STEP_BUDGET) throw new ValidationBudgetExceeded();
    return true;
  },
});

/** Keywords whose value is a subschema, a list of them, or a map of them (JSON Schema draft-07 and 2019-09). */
const ONE_SCHEMA = ['additionalItems', 'additionalProperties', 'unevaluatedItems', 'unevaluatedProperties', 'contains',
  'propertyNames', 'not', 'if', 'then', 'else', 'items'];
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies'];

/** A copy of `schema` with STEP_KEYWORD in every subschema, so that evaluating one counts. */
function instrument(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = { ...(schema as Record<string, unknown>), [STEP_KEYWORD]: true };
  for (const k of ONE_SCHEMA) if (isObject(out[k])) out[k] = instrument(out[k]);
  for (const k of SCHEMA_LISTS) if (Array.isArray(out[k])) out[k] = (out[k] as unknown[]).map(instrument);
  for (const k of SCHEMA_MAPS) {
    const map = out[k];
    if (isObject(map)) out[k] = Object.fromEntries(Object.entries(map).map(([name, s]) => [name, instrument(s)]));
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

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
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    }
    else bytes += 3; // BMP, or a lone surrogate (encoded as U+FFFD, 3 bytes)
  }
  return bytes;
}

/**
 * Undefined when `schema` can be a tool's inputSchema, otherwise what is wrong with it: the
 * Messages API takes only object schemas, and ajv (on the linear-time engine) must compile it.
 */
export function toolSchemaProblem(schema: Record<string, unknown>): string | undefined {
  if (schema.type !== 'object')
    return '"type" must be "object" (the Messages API takes only object inputs), '
      + `not ${JSON.stringify(schema.type ?? null).slice(0, 40)}`;
  const validate = compile(schema);
  return typeof validate === 'string' ? validate : undefined;
}

/** Undefined when the input is valid, otherwise a message the model can act on. */
export function toolInputProblem(schema: Record<string, unknown>, input: unknown): string | undefined {
  const size = utf8Bytes(JSON.stringify(input ?? null));
  if (size > MAX_TOOL_INPUT_BYTES)
    return `the input is ${size} bytes (UTF-8); tool inputs are limited to ${MAX_TOOL_INPUT_BYTES} bytes`;
  const validate = compile(schema);
  if (typeof validate === 'string') return `the tool's inputSchema is not a valid JSON Schema: ${validate}`;
  steps = 0;
  try {
    if (validate(input)) return undefined;
  } catch (error) {
    if (!(error instanceof ValidationBudgetExceeded)) throw error;
    return `validating it against the tool's inputSchema took more than ${VALIDATION_STEP_BUDGET} schema evaluations `
      + '(nested anyOf/oneOf over deep input); send a flatter input, '
      + "or ask the tool's owner to simplify its inputSchema";
  }
  const errors = ajv.errorsText(validate.errors?.slice(0, MAX_REPORTED_ERRORS), { dataVar: 'input', separator: '; ' });
  return errors.slice(0, 2048);
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
    const instrumented = instrument(schema) as Record<string, unknown>;
    try {
      validate = ajv.compile(instrumented);
    } catch (error) {
      validate = (error instanceof Error ? error.message : String(error)).slice(0, 512);
    }
    // ajv keeps every schema object it compiled; this cache is the only one, and it is bounded.
    ajv.removeSchema(instrumented);
  }
  compiled.set(key, validate);
  if (compiled.size > COMPILED_CACHE_SIZE) {
    const oldest = compiled.keys().next().value;
    if (oldest !== undefined) compiled.delete(oldest);
  }
  return validate;
}
