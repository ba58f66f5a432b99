/**
 * Hard caps on what a model (or a tool) can make the operator write. Each is a pure check run
 * where the thing is built, before anything is written: a write the apiserver would refuse (413,
 * 422) must never be attempted, because it can never succeed and a large one disturbs the HTTP/2
 * connection every other run shares.
 */
import { TOOL_NAME_PATTERN } from '../api/agent-tool.ts';
import { Reason } from '../api/conditions.ts';
import { serializeEntry, type JournalEntry, type ModelResponse } from '../api/journal-entry.ts';
import { utf8Bytes } from './tool-input.ts';

/** A journal entry is one ConfigMap, whose data may hold 1 MiB: this leaves room for the rest. */
export const MAX_JOURNAL_ENTRY_BYTES = 1_000_000;
/** How many steps status.steps may hold (the CRD's maxItems). */
export const MAX_STATUS_STEPS = 2000;
/** tool_use blocks one response may carry: each becomes a step, and may become a pending approval (64 at most). */
export const MAX_TOOL_USES_PER_RESPONSE = 64;
/** Nesting depth of any JSON value from the model: deeper values would overflow the stack of every encoder. */
export const MAX_JSON_DEPTH = 64;
/** status.steps[].toolUseId's maxLength in the CRD. */
const MAX_TOOL_USE_ID_LENGTH = 128;

const toolName = new RegExp(TOOL_NAME_PATTERN);

/** Why a response cannot be recorded, with what to change. */
export interface CapExceeded {
  readonly reason: Reason;
  readonly message: string;
}

/**
 * Undefined when the response fits every cap, else why not: the nesting depth, the tool_use
 * blocks (count, and ids and names status can hold), and the journal entry's encoded size.
 * `stepsUsed` is how many steps the run has recorded so far.
 */
export function modelResponseProblem(response: ModelResponse, stepsUsed: number, entry: JournalEntry): CapExceeded
  | undefined {
  const invalid = (what: string): CapExceeded => ({ reason: Reason.ModelResponseInvalid,
    message: `The model's response ${what}` });
  if (depthExceeds(response.content, MAX_JSON_DEPTH))
    return invalid(`nests JSON deeper than ${MAX_JSON_DEPTH} levels; the operator does not record it.`);
  const uses = response.content.filter((b) => b.type === 'tool_use');
  if (uses.length > MAX_TOOL_USES_PER_RESPONSE) {
    return invalid(`asks for ${uses.length} tool calls at once; a response may ask for at most `
      + `${MAX_TOOL_USES_PER_RESPONSE}. Tell the model (spec.prompt or spec.systemPrompt) `
      + 'to call fewer tools per turn.');
  }
  if (stepsUsed + uses.length > MAX_STATUS_STEPS) {
    return invalid(`asks for ${uses.length} tool calls, but the run has ${stepsUsed} of the ${MAX_STATUS_STEPS} `
      + 'steps status can hold. Lower limits.maxTurns or split the task into several runs.');
  }
  for (const use of uses) {
    if (typeof use.id !== 'string' || use.id.length === 0 || use.id.length > MAX_TOOL_USE_ID_LENGTH)
      return invalid(`has a tool_use block whose id is not a string of 1 to ${MAX_TOOL_USE_ID_LENGTH} characters.`);
    if (typeof use.name !== 'string' || !toolName.test(use.name))
      return invalid(`has a tool_use block whose name is not a tool name (${TOOL_NAME_PATTERN}).`);
  }
  const bytes = journalEntryBytes(entry);
  if (bytes > MAX_JOURNAL_ENTRY_BYTES) {
    return { reason: Reason.ModelResponseTooLarge,
      message: `The model's response is ${bytes} bytes as a journal entry, over the ${MAX_JOURNAL_ENTRY_BYTES} `
        + 'bytes one entry may hold. Lower spec.model.maxTokens.' };
  }
  return undefined;
}

/** The size of an entry as it is stored: UTF-8 bytes of its JSON (control characters expand up to 6×). */
export function journalEntryBytes(entry: JournalEntry): number {
  return utf8Bytes(serializeEntry(entry));
}

/**
 * Cuts a tool's output so its journal entry fits MAX_JOURNAL_ENTRY_BYTES after encoding, and says
 * so at its end. `build` makes the entry from a candidate output. Returns the output unchanged
 * when it fits. One linear pass: the cut is found by summing each character's encoded size.
 */
export function fitToolOutput(output: string,
  build: (output: string) => JournalEntry): { output: string; cut: boolean } {
  // The output is one JSON string in the entry: its encoding is the sum of its characters', so
  // the (large) entry is never serialized here.
  if (journalEntryBytes(build('')) + encodedStringBytes(output) <= MAX_JOURNAL_ENTRY_BYTES)
    return { output, cut: false };
  const note =
    `\n[output cut: its JSON encoding exceeded the ${MAX_JOURNAL_ENTRY_BYTES} bytes a journal entry may hold]`;
  const budget = MAX_JOURNAL_ENTRY_BYTES - journalEntryBytes(build(note));
  let used = 0;
  let end = 0;
  while (end < output.length) {
    const { units, bytes } = encodedSizeAt(output, end);
    if (used + bytes > budget) break;
    used += bytes;
    end += units;
  }
  return { output: output.slice(0, end) + note, cut: true };
}

/** UTF-8 bytes of `text` inside a JSON string, as JSON.stringify writes it (quotes not counted). */
function encodedStringBytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length;) {
    const { units, bytes: b } = encodedSizeAt(text, i);
    bytes += b;
    i += units;
  }
  return bytes;
}

/** UTF-8 bytes JSON.stringify writes for the character at `i` of a string, and its UTF-16 length. */
function encodedSizeAt(text: string, i: number): { units: number; bytes: number } {
  const c = text.charCodeAt(i);
  if (c === 0x22 || c === 0x5c) return { units: 1, bytes: 2 }; // \" and \\
  // \b \t \n \f \r
  if (c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) return { units: 1, bytes: 2 };
  if (c < 0x20) return { units: 1, bytes: 6 }; // \u00XX
  if (c < 0x80) return { units: 1, bytes: 1 };
  if (c < 0x800) return { units: 1, bytes: 2 };
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = text.charCodeAt(i + 1);
    // a pair, or a lone surrogate as \udXXX
    return next >= 0xdc00 && next <= 0xdfff ? { units: 2, bytes: 4 } : { units: 1, bytes: 6 };
  }
  if (c >= 0xdc00 && c <= 0xdfff) return { units: 1, bytes: 6 };
  return { units: 1, bytes: 3 };
}

/** True when `value` nests arrays/objects deeper than `max`; iterative, so it cannot overflow itself. */
export function depthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
