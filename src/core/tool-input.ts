/** Checks a tool call's input against the tool's JSON Schema before any pod exists. */
import { Ajv, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: false });
// Compiling is the expensive part; schemas are few and immutable per run, so keep them.
const compiled = new Map<string, ValidateFunction | string>();

/** Tool inputs above this size cannot be passed to a pod (annotations are limited to 256 KiB). */
export const MAX_TOOL_INPUT_BYTES = 128 * 1024;

/** Undefined when the input is valid, otherwise a message the model can act on. */
export function toolInputProblem(schema: Record<string, unknown>, input: unknown): string | undefined {
  const size = JSON.stringify(input ?? null).length;
  if (size > MAX_TOOL_INPUT_BYTES) return `the input is ${size} bytes; tool inputs are limited to ${MAX_TOOL_INPUT_BYTES} bytes`;
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (validate === undefined) {
    try { validate = ajv.compile(schema); } catch (error) { validate = `the tool's inputSchema is not a valid JSON Schema: ${String(error)}`; }
    compiled.set(key, validate);
  }
  if (typeof validate === 'string') return validate;
  if (validate(input)) return undefined;
  return ajv.errorsText(validate.errors, { dataVar: 'input', separator: '; ' });
}
