/**
 * ┌──────────────────────────────────────────────────────────────────────────────────────────┐
 * │  STAND-IN FOR THE ANTHROPIC MESSAGES API — FOR TESTS AND LOCAL DEV ONLY. NOT A MODEL.   │
 * │  Never point production at it; nothing it says is evidence of how a real model behaves. │
 * └──────────────────────────────────────────────────────────────────────────────────────────┘
 *
 * A local HTTP server (node:http on 127.0.0.1) that speaks the wire format of
 * `POST /v1/messages` (non-streaming) closely enough that the real `@anthropic-ai/sdk` can be
 * pointed at it: `new Anthropic({ apiKey, baseURL: server.url, maxRetries: 0 })`.
 *
 * What it emulates, modelled on the SDK 1.14 client code and the API's documented behaviour:
 * - Auth: `Authorization: Bearer <key>` (what SDK 1.x sends) or `x-api-key`; 401
 *   `authentication_error` "invalid x-api-key" for keys outside `apiKeys`. `anthropic-version`
 *   is required, as by the real API.
 * - Responses: the `Message` shape (`msg_…` id, `content`, `stop_reason`, `usage`, …), the
 *   `request-id` header (the SDK exposes it as `_request_id` / `APIError.requestID`).
 * - Errors: the real body `{type:'error', error:{type, message}, request_id}` with the status the
 *   SDK maps to its error classes (400 BadRequestError … 529 OverloadedError), plus `retry-after`,
 *   `retry-after-ms` and `x-should-retry`, the headers the SDK's retry loop reads.
 * - Validation that the real API does and an agent loop can get wrong: role order, tool_use /
 *   tool_result pairing, tool names, at most 4 cache_control breakpoints (400
 *   `invalid_request_error`, messages worded like the real ones where known).
 * - Prompt caching, observably: prefixes up to `cache_control` breakpoints are remembered per API
 *   key and model (with their 5m/1h TTL and a 20-block lookback for hits, as documented), and
 *   `usage` splits input into `cache_read_input_tokens`, `cache_creation_input_tokens` and
 *   `input_tokens`. Tokens are ESTIMATED as ceil(chars / 4) of the JSON, not real tokenization.
 *
 * What it does NOT emulate (it answers 400 "… is not emulated" where a request relies on it):
 * streaming (`stream: true`), prefill (a final assistant message, unless it is the content of a
 * `pause_turn` answer of this server sent back to continue the turn), `role: 'system'` messages,
 * `max_tokens: 0` cache pre-warming, other endpoints (count_tokens, batches, models, files…).
 * It silently ignores: tool_choice, thinking, stop_sequences, temperature, metadata, images and
 * documents (beyond counting their JSON), truncation at max_tokens, rate-limit headers, model
 * names (any non-empty string is accepted and echoed), minimum cacheable prompt lengths (unless
 * `minCacheableTokens` is set), server tools (accepted in `tools`, never executed).
 * It is STRICTER than the real API in one place: consecutive messages with the same role are
 * rejected, whereas the real API merges them into one turn; an agent that relies on that merge is
 * flagged here on purpose.
 *
 * HOSTILE MODE ({@link MockModelServer.hostile}): for conversations whose first user message
 * contains a key, the server stops being a well-behaved API and sends raw bytes instead: an
 * oversized body streamed without Content-Length, malformed JSON, hundreds of tool_use blocks,
 * absurdly nested input, odd unicode and control characters, or an error body full of someone
 * else's data. It is how the operator is tested against an endpoint that wants to hurt it.
 *
 * The model's side is scripted. A request belongs to the script whose key occurs in the text of
 * its first user message; the turn it gets is the number of assistant messages already in the
 * conversation, so the answer depends only on the conversation: a call re-issued after a crash
 * gets the same content and the same tool_use ids.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

// ───────────────────────────────────────── public types ─────────────────────────────────────────

/** Options for {@link startMockModelServer}. */
export interface MockModelServerOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Address to listen on (default 127.0.0.1), e.g. a real node's IP for an operator running in a pod. */
  host?: string;
  /** If set, only these API keys are accepted; any other key gets 401 `authentication_error`. */
  apiKeys?: string[];
  /** Delay before every response, unless a script or turn sets its own. */
  latencyMs?: number;
  /**
   * Prompts shorter than this (estimated tokens) are never cached. The real API has a
   * model-dependent minimum (1024–4096 tokens); the default 0 caches everything so that small
   * test prompts still show cache reads.
   */
  minCacheableTokens?: number;
  /** Called after each request to `/v1/messages` is answered (or abandoned by its client). */
  onResponse?: (request: RecordedRequest) => void;
}

/** A content block the scripted "model" produces. */
export type ScriptedBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

/** Every stop reason of the Messages API. */
export type StopReason =
  | 'end_turn'
  | 'max_tokens'
  | 'stop_sequence'
  | 'tool_use'
  | 'pause_turn'
  | 'refusal'
  | 'model_context_window_exceeded';

/** Token counts a turn may pin instead of the estimate. */
export interface UsageOverride {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** One scripted assistant answer. */
export interface ScriptedTurn {
  content: ScriptedBlock[];
  /** Defaults to 'tool_use' when `content` has tool_use blocks, else 'end_turn'. */
  stopReason?: StopReason;
  /** Reported as `stop_sequence` (meaningful with stopReason 'stop_sequence'). */
  stopSequence?: string;
  usage?: UsageOverride;
  /** Delay before this answer; overrides the script's and the server's latency. */
  latencyMs?: number;
}

/** What a function turn sees of the request it answers. */
export interface ScriptRequest {
  scriptKey: string;
  /** Number of assistant messages in the conversation = index of the turn being answered. */
  turnIndex: number;
  /** The request body as sent (already validated). */
  body: Readonly<Record<string, unknown>>;
  /** The tool_result blocks of the last user message, in order. */
  toolResults: ToolResult[];
}

/** A tool_result block from the request, its content flattened to text. */
export interface ToolResult {
  toolUseId: string;
  isError: boolean;
  /** String content as is; text blocks joined with newlines; other blocks as JSON. */
  text: string;
}

/** A turn computed from the request (e.g. echoing tool results). */
export type TurnFunction = (request: ScriptRequest) => ScriptedTurn;

/** A scripted turn, fixed or computed. */
export type TurnSource = ScriptedTurn | TurnFunction;

/** Per-script options. */
export interface ScriptOptions {
  /** Delay before every answer of this script, unless the turn sets its own. */
  latencyMs?: number;
}

/** A hostile answer (see HOSTILE MODE above). */
export type HostileAnswer =
  /** 200 with a message whose text block is `bytes` long, streamed in 64 KiB chunks, no Content-Length. */
  | { kind: 'oversized'; bytes: number }
  /** 200 with a body that is not JSON (cut off in the middle of a message). */
  | { kind: 'malformed' }
  /** 200 with a valid message holding `count` tool_use blocks for `tool`. */
  | { kind: 'many-tool-uses'; count: number; tool: string }
  /** 200 with a final text full of control characters, lone surrogates, bidi overrides and a fake key. */
  | { kind: 'odd-unicode' }
  /** 200 with a tool_use for `tool` whose input nests `depth` arrays deep. */
  | { kind: 'deep-input'; tool: string; depth: number }
  /** 200 with a tool_use whose input is `bytes` of control characters (6× that as JSON). */
  | { kind: 'control-input'; tool: string; bytes: number }
  /** `status` with `body` sent verbatim (e.g. an internal service's JSON with data in it). */
  | { kind: 'raw-error'; status: number; body: string };

/** The odd text {@link HostileAnswer} 'odd-unicode' sends, as the JSON string escapes that go on the wire. */
export const ODD_UNICODE_JSON = String.raw`nul:\u0000 bell:\u0007 esc:\u001b[31m crlf:\r\n ls:\u2028 rlo:\u202e lone:\ud800 bom:\ufeff emoji:\ud83d\udd11 zalgo:e\u0301\u0302 key:sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;

/** `error.type` values of the API's error bodies. */
export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'api_error'
  | 'overloaded_error';

/** An injected failure. */
export interface FailureSpec {
  /** HTTP status, e.g. 429, 500, 529, 401, 400. */
  status: number;
  /** Defaults to the type the real API uses for `status` (429 → rate_limit_error, 529 → overloaded_error…). */
  type?: ApiErrorType;
  message?: string;
  /** Sent as `retry-after` (seconds), which the real API sends on 429 and the SDK honours. */
  retryAfterSeconds?: number;
  /** Sent as `retry-after-ms`: the SDK honours it first, the real API does not send it. Handy to keep SDK retries fast. */
  retryAfterMs?: number;
  /** Sent as `x-should-retry`, which overrides the SDK's retry decision. */
  shouldRetry?: boolean;
}

/** A server-wide outage: every request fails until it ends. */
export interface OutageSpec extends Partial<FailureSpec> {
  /** Epoch ms at which the outage ends by itself. */
  untilMs?: number;
  /** Alternative to `untilMs`: ends this long from now. Neither: lasts until {@link MockModelServer.endOutage}. */
  durationMs?: number;
}

/** A request received on `/v1/messages`, as observed by the server (a snapshot). */
export interface RecordedRequest {
  /** The `request-id` header sent back. */
  readonly requestId: string;
  /** The script it was attributed to ({@link DEFAULT_SCRIPT_KEY} for the default script); undefined when none matched. */
  readonly scriptKey: string | undefined;
  /** Number of assistant messages in the request, when it had a message list. */
  readonly turnIndex: number | undefined;
  /** The parsed JSON body; undefined if it was not a JSON object. */
  readonly body: Readonly<Record<string, unknown>> | undefined;
  /** The key from `Authorization: Bearer` or `x-api-key`. */
  readonly apiKey: string | undefined;
  /** The `anthropic-version` header. */
  readonly anthropicVersion: string | undefined;
  readonly receivedAt: number;
  /** HTTP status sent; undefined while in flight; 499 when the client left before the answer. */
  readonly status: number | undefined;
  /** The JSON body sent (or that would have been sent, if the client left). */
  readonly response: unknown;
}

/** A running mock server. */
export interface MockModelServer {
  /** Base URL for the SDK's `baseURL`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** Registers (or replaces) the turns answered to conversations whose first user message contains `key`. */
  script(key: string, turns: readonly TurnSource[], options?: ScriptOptions): void;
  /** Answers requests that match no script (recorded under {@link DEFAULT_SCRIPT_KEY}); undefined removes it. */
  defaultScript(respond: TurnFunction | undefined): void;
  /** Fails the next `count` requests (for `scriptKey`, or any) with `failure`. */
  failNext(count: number, failure: FailureSpec, scriptKey?: string): void;
  /** Fails every request until the outage ends; status defaults to 529 overloaded_error. */
  outage(spec?: OutageSpec): void;
  endOutage(): void;
  /** Holds every response for `scriptKey` until the returned function is called. */
  hold(scriptKey: string): () => void;
  /** Answers conversations whose first user message contains `key` with `answer` (raw bytes, no validation). */
  hostile(key: string, answer: HostileAnswer): void;
  /** Resolves with the script's requests once at least `count` have arrived (answered or not). */
  waitForRequest(scriptKey: string, count?: number, options?: { timeoutMs?: number }): Promise<RecordedRequest[]>;
  /** Resolves when no request is in flight (held, delayed or being answered). */
  idle(): Promise<void>;
  /** Requests answered 200 for `scriptKey` (all scripts if omitted). */
  calls(scriptKey?: string): number;
  /** Every request received for `scriptKey` (all if omitted), failed ones included, oldest first. */
  requests(scriptKey?: string): RecordedRequest[];
  /** Requests answered 200, all scripts together. */
  totalCalls(): number;
  /** Forgets scripts, failures, outage, holds (released), recorded requests and the prompt cache. */
  reset(): void;
  close(): Promise<void>;
}

/** Script key under which requests answered by {@link MockModelServer.defaultScript} are recorded. */
export const DEFAULT_SCRIPT_KEY = '(default)';

// ──────────────────────────────────────────── helpers ───────────────────────────────────────────

/** A text block for a {@link ScriptedTurn}. */
export function text(value: string): ScriptedBlock {
  return { type: 'text', text: value };
}

/**
 * A tool_use block for a {@link ScriptedTurn}. Without `id`, the server assigns
 * `toolu_<script>_<turn>_<n>` (script key reduced to [a-zA-Z0-9_-], n counts tool_use blocks in the
 * turn), so a re-issued call gets the same ids.
 */
export function toolUse(name: string, input: Record<string, unknown>, id?: string): ScriptedBlock {
  return id === undefined ? { type: 'tool_use', name, input } : { type: 'tool_use', name, input, id };
}

/** Starts a server on 127.0.0.1, or `options.host` (port 0 by default). */
export async function startMockModelServer(options: MockModelServerOptions = {}): Promise<MockModelServer> {
  const mock = new MockModelServerImpl(options);
  await mock.listen(options.port ?? 0);
  return mock;
}

// ─────────────────────────────────────── request parsing ────────────────────────────────────────

type JsonObject = Record<string, unknown>;

interface Block {
  readonly type: string;
  readonly [field: string]: unknown;
}

interface ConversationMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

/** A request body that passed validation, normalized (string content → text blocks). */
interface ParsedRequest {
  model: string;
  tools: JsonObject[];
  system: Block[];
  messages: ConversationMessage[];
  /** Top-level `cache_control`: a breakpoint on the last block of the request. */
  automaticCacheControl: JsonObject | undefined;
}

/** A 400 the real API would also give; thrown while parsing, turned into a response. */
class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
}

function invalid(message: string): never {
  throw new InvalidRequestError(message);
}

function notEmulated(feature: string): never {
  invalid(`mock-model-server: ${feature} is not emulated by this test stand-in`);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBlock(value: unknown): value is Block {
  return isObject(value) && typeof value.type === 'string';
}

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_CACHE_BREAKPOINTS = 4;

/** `continues`: whether a final assistant message is the content of a paused turn being continued. */
function parseRequest(body: unknown, continues: (content: Block[]) => boolean = () => false): ParsedRequest {
  if (!isObject(body)) invalid('request body must be a JSON object (it is missing, not valid JSON, or not an object)');
  if (body.stream === true) notEmulated('streaming (`stream: true`)');
  const model = parseModel(body.model);
  parseMaxTokens(body.max_tokens);
  const tools = parseTools(body.tools);
  const system = parseSystem(body.system);
  const messages = parseMessages(body.messages);
  checkToolPairing(messages);
  const last = messages.at(-1);
  if (last?.role === 'assistant' && !continues(last.content)) notEmulated('prefill (a final assistant message that does not continue a pause_turn answer)');
  const automaticCacheControl = body.cache_control == null ? undefined : parseCacheControl(body.cache_control, 'cache_control');
  checkBreakpointCount(countBreakpoints(tools, system, messages) + (automaticCacheControl ? 1 : 0));
  return { model, tools, system, messages, automaticCacheControl };
}

function parseModel(model: unknown): string {
  if (model === undefined) invalid('model: Field required');
  if (typeof model !== 'string' || model.trim() === '') invalid('model: Input should be a non-empty string');
  return model;
}

function parseMaxTokens(maxTokens: unknown): void {
  if (maxTokens === undefined) invalid('max_tokens: Field required');
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens)) invalid('max_tokens: Input should be a valid integer');
  if (maxTokens === 0) notEmulated('`max_tokens: 0` (cache pre-warming)');
  if (maxTokens < 0) invalid('max_tokens: Input should be greater than or equal to 1');
}

function parseTools(tools: unknown): JsonObject[] {
  if (tools === undefined) return [];
  if (!Array.isArray(tools)) invalid('tools: Input should be a valid list');
  const names = new Set<string>();
  return tools.map((tool: unknown, i) => {
    if (!isObject(tool)) invalid(`tools.${i}: Input should be an object`);
    if (typeof tool.name !== 'string' || !TOOL_NAME.test(tool.name)) {
      invalid(`tools.${i}.name: String should match pattern '${TOOL_NAME.source}' (got ${JSON.stringify(tool.name)})`);
    }
    const isCustom = tool.type === undefined || tool.type === null || tool.type === 'custom';
    if (isCustom && !isObject(tool.input_schema)) invalid(`tools.${i}.custom.input_schema: Field required`);
    if (names.has(tool.name)) invalid(`tools: Tool names must be unique (duplicate: ${tool.name})`);
    names.add(tool.name);
    if (tool.cache_control != null) parseCacheControl(tool.cache_control, `tools.${i}.cache_control`);
    return tool;
  });
}

function parseSystem(system: unknown): Block[] {
  if (system === undefined) return [];
  if (typeof system === 'string') return system === '' ? [] : [{ type: 'text', text: system }];
  if (!Array.isArray(system)) invalid('system: Input should be a valid string or list of text blocks');
  return system.map((block: unknown, i) => {
    if (!isBlock(block) || block.type !== 'text' || typeof block.text !== 'string') {
      invalid(`system.${i}: Input should be a text block`);
    }
    checkBlockCacheControl(block, `system.${i}`);
    return block;
  });
}

function parseMessages(messages: unknown): ConversationMessage[] {
  if (messages === undefined) invalid('messages: Field required');
  if (!Array.isArray(messages)) invalid('messages: Input should be a valid list');
  if (messages.length === 0) invalid('messages: at least one message is required');
  const parsed = messages.map((message: unknown, i) => parseMessage(message, i));
  checkRoleOrder(parsed);
  return parsed;
}

function parseMessage(message: unknown, index: number): ConversationMessage {
  const where = `messages.${index}`;
  if (!isObject(message)) invalid(`${where}: Input should be an object`);
  const { role } = message;
  if (role === 'system') notEmulated(`${where}: a message with role "system" (use the top-level \`system\` parameter)`);
  if (role !== 'user' && role !== 'assistant') invalid(`${where}.role: Input should be 'user' or 'assistant'`);
  const content = normalizeContent(message.content, where);
  content.forEach((block, j) => { checkContentBlock(block, role, `${where}.content.${j}`); });
  return { role, content };
}

function normalizeContent(content: unknown, where: string): Block[] {
  const emptyMessage = `${where}: all messages must have non-empty content except for the optional final assistant message`;
  if (typeof content === 'string') {
    if (content.trim() === '') invalid(emptyMessage);
    return [{ type: 'text', text: content }];
  }
  if (!Array.isArray(content)) invalid(`${where}.content: Input should be a valid string or list of content blocks`);
  if (content.length === 0) invalid(emptyMessage);
  return content.map((block: unknown, j) => {
    if (!isBlock(block)) invalid(`${where}.content.${j}: Input should be a content block with a string \`type\``);
    return block;
  });
}

function checkContentBlock(block: Block, role: 'user' | 'assistant', where: string): void {
  checkBlockCacheControl(block, where);
  switch (block.type) {
    case 'text':
      if (typeof block.text !== 'string') invalid(`${where}.text: Field required`);
      if (block.text.trim() === '') invalid(`${where}: text content blocks must contain non-whitespace text`);
      return;
    case 'tool_use':
      if (role !== 'assistant') invalid(`${where}: tool_use blocks can only appear in assistant messages`);
      if (typeof block.id !== 'string' || typeof block.name !== 'string') invalid(`${where}: tool_use blocks need a string \`id\` and \`name\``);
      if (!isObject(block.input)) invalid(`${where}.input: Input should be an object`);
      return;
    case 'tool_result':
      if (role !== 'user') invalid(`${where}: tool_result blocks can only appear in user messages`);
      if (typeof block.tool_use_id !== 'string') invalid(`${where}.tool_use_id: Field required`);
      return;
    default:
      return; // images, documents, thinking…: accepted as they are, only counted for tokens
  }
}

function checkRoleOrder(messages: ConversationMessage[]): void {
  const first = messages[0];
  if (first?.role !== 'user') invalid('messages: first message must use the "user" role');
  for (let i = 1; i < messages.length; i++) {
    const role = messages[i]?.role;
    if (role === messages[i - 1]?.role) {
      invalid(`messages: roles must alternate between "user" and "assistant", but found multiple "${String(role)}" roles in a row (messages.${i - 1} and messages.${i}; the real API would merge them, this stand-in refuses on purpose)`);
    }
  }
}

function toolUseIds(message: ConversationMessage, index: number): string[] {
  const ids = message.content.filter((b) => b.type === 'tool_use').map((b) => String(b.id));
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) invalid(`messages.${index}: tool_use ids must be unique (duplicate: ${duplicate})`);
  return ids;
}

/** The real API requires every tool_use to be answered by a tool_result in the very next message, and nothing else. */
function checkToolPairing(messages: ConversationMessage[]): void {
  let pendingIds: string[] = [];
  messages.forEach((message, i) => {
    if (message.role === 'assistant') {
      pendingIds = toolUseIds(message, i);
      return;
    }
    checkToolResults(message, i, pendingIds);
    pendingIds = [];
  });
  if (pendingIds.length > 0) unansweredToolUses(messages.length - 1, pendingIds);
}

function unansweredToolUses(assistantIndex: number, ids: string[]): never {
  invalid(`messages.${assistantIndex}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${ids.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
}

function checkToolResults(message: ConversationMessage, index: number, expectedIds: string[]): void {
  const answered = new Set<string>();
  let sawOtherContent = false;
  message.content.forEach((block, j) => {
    if (block.type !== 'tool_result') {
      sawOtherContent = true;
      return;
    }
    const id = String(block.tool_use_id);
    const where = `messages.${index}.content.${j}`;
    if (!expectedIds.includes(id)) {
      invalid(`${where}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
    }
    if (answered.has(id)) invalid(`${where}: each tool_use must have a single result. Found multiple \`tool_result\` blocks with id: ${id}`);
    if (sawOtherContent) invalid(`${where}: tool_result blocks must come before any other content in the message`);
    answered.add(id);
  });
  const unanswered = expectedIds.filter((id) => !answered.has(id));
  if (unanswered.length > 0) unansweredToolUses(index - 1, unanswered);
}

function parseCacheControl(value: unknown, where: string): JsonObject {
  if (!isObject(value) || value.type !== 'ephemeral') invalid(`${where}.type: Input should be 'ephemeral'`);
  if (value.ttl !== undefined && value.ttl !== '5m' && value.ttl !== '1h') invalid(`${where}.ttl: Input should be '5m' or '1h'`);
  return value;
}

/** Checks the block's own cache_control and those nested in a tool_result's content. */
function checkBlockCacheControl(block: Block, where: string): void {
  if (block.cache_control != null) parseCacheControl(block.cache_control, `${where}.cache_control`);
  nestedBlocks(block).forEach((inner, k) => {
    if (inner.cache_control != null) parseCacheControl(inner.cache_control, `${where}.content.${k}.cache_control`);
  });
}

function nestedBlocks(block: Block): Block[] {
  return block.type === 'tool_result' && Array.isArray(block.content) ? block.content.filter(isBlock) : [];
}

/** The cache_control markers on a block (its own first, then nested ones). */
function cacheControlsOf(block: JsonObject): JsonObject[] {
  const own = isObject(block.cache_control) ? [block.cache_control] : [];
  const nested = isBlock(block) ? nestedBlocks(block).flatMap((inner) => (isObject(inner.cache_control) ? [inner.cache_control] : [])) : [];
  return [...own, ...nested];
}

function countBreakpoints(tools: JsonObject[], system: Block[], messages: ConversationMessage[]): number {
  const blocks = [...tools, ...system, ...messages.flatMap((m) => m.content)];
  return blocks.reduce((sum, block) => sum + cacheControlsOf(block).length, 0);
}

function checkBreakpointCount(found: number): void {
  if (found > MAX_CACHE_BREAKPOINTS) invalid(`A maximum of ${MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found ${found}.`);
}

// ─────────────────────────────────────── prompt caching ─────────────────────────────────────────

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

interface CacheUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** The block as the cache sees it: cache_control markers do not change a prefix's identity. */
function withoutCacheControl(block: JsonObject): JsonObject {
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
function promptSegments(request: ParsedRequest, cacheScope: string): PromptSegment[] {
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
class PromptCache {
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

// ────────────────────────────────────── scripted answers ────────────────────────────────────────

interface Script {
  turns: readonly TurnSource[];
  latencyMs: number | undefined;
}

/** A 400 caused by the test's own script, not by the client: never worth retrying. */
class ScriptError extends Error {
  override name = 'ScriptError';
}

function firstUserText(body: unknown): string {
  if (!isObject(body) || !Array.isArray(body.messages)) return '';
  const first: unknown = body.messages[0];
  if (!isObject(first)) return '';
  if (typeof first.content === 'string') return first.content;
  if (!Array.isArray(first.content)) return '';
  return first.content.filter(isBlock).map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n');
}

function toolResultsOf(request: ParsedRequest): ToolResult[] {
  const last = request.messages.at(-1);
  return (last?.content ?? []).filter((b) => b.type === 'tool_result').map((b) => ({
    toolUseId: String(b.tool_use_id),
    isError: b.is_error === true,
    text: toolResultText(b.content),
  }));
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b: unknown) => (isBlock(b) && typeof b.text === 'string' ? b.text : JSON.stringify(b))).join('\n');
}

/** Ids must match the API's ^[a-zA-Z0-9_-]+$ whatever the script key contains (`[task-1]` → `toolu_task-1_0_0`). */
function toolUseId(scriptKey: string, turnIndex: number, n: number): string {
  const safeKey = scriptKey.replace(/[^a-zA-Z0-9_-]+/g, '_').replace(/^_+|_+$/g, '');
  return `toolu_${safeKey}_${turnIndex}_${n}`;
}

/** Renders scripted blocks as the API returns them (text with `citations`, tool_use with `caller`). */
function renderContent(turn: ScriptedTurn, scriptKey: string, turnIndex: number): JsonObject[] {
  let toolUses = 0;
  return turn.content.map((block) => {
    if (block.type === 'text') return { type: 'text', text: block.text, citations: null };
    const id = block.id ?? toolUseId(scriptKey, turnIndex, toolUses);
    toolUses++;
    return { type: 'tool_use', id, name: block.name, input: block.input, caller: { type: 'direct' } };
  });
}

/** The real model can only call tools the request defines; a script that does otherwise is a test bug. */
function checkScriptedToolNames(turn: ScriptedTurn, request: ParsedRequest, where: string): void {
  const defined = new Set(request.tools.map((t) => String(t.name)));
  for (const block of turn.content) {
    if (block.type === 'tool_use' && !defined.has(block.name)) {
      throw new ScriptError(`${where} calls tool "${block.name}", which the request does not define (tools: ${[...defined].join(', ') || 'none'})`);
    }
  }
}

function defaultStopReason(turn: ScriptedTurn): StopReason {
  return turn.content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
}

// ─────────────────────────────────────────── errors ─────────────────────────────────────────────

const ERROR_TYPE_BY_STATUS: ReadonlyMap<number, ApiErrorType> = new Map([
  [400, 'invalid_request_error'],
  [401, 'authentication_error'],
  [402, 'billing_error'],
  [403, 'permission_error'],
  [404, 'not_found_error'],
  [413, 'request_too_large'],
  [429, 'rate_limit_error'],
  [504, 'timeout_error'],
  [529, 'overloaded_error'],
]);

const DEFAULT_ERROR_MESSAGES: Readonly<Partial<Record<ApiErrorType, string>>> = {
  rate_limit_error: 'mock-model-server: rate limit exceeded',
  overloaded_error: 'Overloaded',
  api_error: 'Internal server error',
  authentication_error: 'invalid x-api-key',
};

function errorTypeFor(status: number): ApiErrorType {
  return ERROR_TYPE_BY_STATUS.get(status) ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** What the server decided to answer, before any hold or latency. */
interface Outcome {
  status: number;
  body: JsonObject;
  headers: Record<string, string>;
  latencyMs: number | undefined;
}

function errorOutcome(requestId: string, failure: FailureSpec, latencyMs?: number): Outcome {
  const type = failure.type ?? errorTypeFor(failure.status);
  const headers: Record<string, string> = {};
  if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
  if (failure.retryAfterMs !== undefined) headers['retry-after-ms'] = String(failure.retryAfterMs);
  if (failure.shouldRetry !== undefined) headers['x-should-retry'] = String(failure.shouldRetry);
  const message = failure.message ?? DEFAULT_ERROR_MESSAGES[type] ?? `mock-model-server: injected ${failure.status}`;
  return { status: failure.status, body: { type: 'error', error: { type, message }, request_id: requestId }, headers, latencyMs };
}

function newId(prefix: string): string {
  return `${prefix}_mock_${randomBytes(12).toString('hex')}`;
}

// ──────────────────────────────────────────── server ────────────────────────────────────────────

/** The server's own, updatable copy of a {@link RecordedRequest}. */
type MutableRecord = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };

interface PendingFailure {
  remaining: number;
  failure: FailureSpec;
  scriptKey: string | undefined;
}

interface Outage {
  failure: FailureSpec;
  untilMs: number | undefined;
}

interface Gate {
  opened: Promise<void>;
  open: () => void;
}

interface RequestWaiter {
  scriptKey: string;
  count: number;
  resolve: (requests: RecordedRequest[]) => void;
  reject: (error: Error) => void;
}

class MockModelServerImpl implements MockModelServer {
  private readonly options: MockModelServerOptions;
  private readonly server: Server;
  private readonly cache: PromptCache;
  private readonly shutdown = new AbortController();
  private scripts = new Map<string, Script>();
  private fallback: TurnFunction | undefined;
  private failures: PendingFailure[] = [];
  private currentOutage: Outage | undefined;
  private gates = new Map<string, Gate>();
  private records: MutableRecord[] = [];
  /** Contents of the pause_turn answers sent, as {@link contentKey}: a request ending with one continues that turn. */
  private paused = new Set<string>();
  private waiters: RequestWaiter[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private address: AddressInfo | undefined;
  private hostileAnswers = new Map<string, HostileAnswer>();

  constructor(options: MockModelServerOptions) {
    this.options = options;
    this.cache = new PromptCache(options.minCacheableTokens ?? 0);
    this.server = createServer((req, res) => { void this.handle(req, res); });
  }

  get port(): number {
    if (!this.address) throw new Error('mock-model-server is not listening');
    return this.address.port;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.address = this.server.address() as AddressInfo;
  }

  script(key: string, turns: readonly TurnSource[], options: ScriptOptions = {}): void {
    if (key === '') throw new Error('mock-model-server: a script key must be non-empty (it is searched for in the first user message)');
    this.scripts.set(key, { turns: [...turns], latencyMs: options.latencyMs });
  }

  defaultScript(respond: TurnFunction | undefined): void {
    this.fallback = respond;
  }

  failNext(count: number, failure: FailureSpec, scriptKey?: string): void {
    if (!Number.isInteger(count) || count < 1) throw new Error(`mock-model-server: failNext count must be a positive integer, got ${count}`);
    this.failures.push({ remaining: count, failure, scriptKey });
  }

  outage(spec: OutageSpec = {}): void {
    const { untilMs, durationMs, ...failure } = spec;
    const end = untilMs ?? (durationMs === undefined ? undefined : Date.now() + durationMs);
    this.currentOutage = { failure: { ...failure, status: failure.status ?? 529 }, untilMs: end };
  }

  endOutage(): void {
    this.currentOutage = undefined;
  }

  hostile(key: string, answer: HostileAnswer): void {
    this.hostileAnswers.set(key, answer);
  }

  hold(scriptKey: string): () => void {
    if (this.gates.has(scriptKey)) throw new Error(`mock-model-server: script ${scriptKey} is already held`);
    let open = (): void => undefined;
    const opened = new Promise<void>((resolve) => { open = resolve; });
    this.gates.set(scriptKey, { opened, open });
    return () => {
      open();
      if (this.gates.get(scriptKey)?.opened === opened) this.gates.delete(scriptKey);
    };
  }

  waitForRequest(scriptKey: string, count = 1, options: { timeoutMs?: number } = {}): Promise<RecordedRequest[]> {
    const arrived = this.requests(scriptKey);
    if (arrived.length >= count) return Promise.resolve(arrived);
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const waiter: RequestWaiter = {
        scriptKey,
        count,
        resolve: (requests) => { clearTimeout(timer); resolve(requests); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
      // A clear message beats a bare test timeout when the operator never calls the model.
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`mock-model-server: waited ${timeoutMs}ms for ${count} request(s) for script ${scriptKey}; ${this.requests(scriptKey).length} arrived (all requests by script: ${this.describeArrivals()})`));
      }, timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => { this.idleWaiters.push(resolve); });
  }

  calls(scriptKey?: string): number {
    return this.requests(scriptKey).filter((r) => r.status === 200).length;
  }

  requests(scriptKey?: string): RecordedRequest[] {
    return this.records.filter((r) => scriptKey === undefined || r.scriptKey === scriptKey).map((r) => ({ ...r }));
  }

  totalCalls(): number {
    return this.calls();
  }

  reset(): void {
    for (const gate of this.gates.values()) gate.open();
    this.gates = new Map();
    this.scripts = new Map();
    this.fallback = undefined;
    this.failures = [];
    this.currentOutage = undefined;
    this.records = [];
    this.hostileAnswers = new Map();
    this.cache.clear();
    this.paused.clear();
  }

  async close(): Promise<void> {
    this.shutdown.abort();
    for (const gate of this.gates.values()) gate.open();
    for (const waiter of this.waiters) waiter.reject(new Error('mock-model-server closed'));
    this.waiters = [];
    const closed = new Promise<void>((resolve) => this.server.close(() => { resolve(); }));
    this.server.closeAllConnections();
    await closed;
  }

  // ─── request handling ───

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    try {
      await this.answer(req, res);
    } catch (error) {
      if (!res.headersSent) {
        const message = `mock-model-server internal error: ${error instanceof Error ? error.message : String(error)}`;
        const requestId = newId('req');
        this.send(res, errorOutcome(requestId, { status: 500, message, shouldRetry: false }), requestId);
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.notifyIdle();
    }
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newId('req');
    const rawBody = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'POST' || path !== '/v1/messages') {
      const message = `mock-model-server: ${req.method ?? '?'} ${path} is not emulated; only POST /v1/messages (non-streaming) is`;
      this.send(res, errorOutcome(requestId, { status: 404, message }), requestId);
      return;
    }
    const client = watchClient(res);
    const body = parseJson(rawBody);
    const hostileKey = [...this.hostileAnswers.keys()].find((key) => firstUserText(body).includes(key));
    if (hostileKey !== undefined) {
      const record = this.recordArrival(req, requestId, body);
      record.scriptKey = hostileKey;
      const hostile = this.hostileAnswers.get(hostileKey) as HostileAnswer;
      record.status = hostile.kind === 'raw-error' ? hostile.status : 200;
      await sendHostile(res, hostile, requestId, client.hasLeft);
      this.options.onResponse?.({ ...record });
      return;
    }
    const record = this.recordArrival(req, requestId, body);
    const outcome = this.decide(record, body);
    // A client that leaves (killed operator, aborted call) ends the wait: nothing is left to hold.
    await Promise.race([this.waitBeforeAnswering(record.scriptKey, outcome.latencyMs ?? this.options.latencyMs), client.gone]);
    record.response = outcome.body;
    if (client.hasLeft()) {
      record.status = 499;
    } else {
      this.send(res, outcome, requestId);
      record.status = outcome.status;
    }
    this.options.onResponse?.({ ...record });
  }

  private recordArrival(req: IncomingMessage, requestId: string, body: unknown): MutableRecord {
    const record: MutableRecord = {
      requestId,
      scriptKey: this.attribute(body),
      turnIndex: isObject(body) && Array.isArray(body.messages) ? this.answersIn(body.messages as { role?: unknown; content?: unknown }[]) : undefined,
      body: isObject(body) ? body : undefined,
      apiKey: apiKeyOf(req),
      anthropicVersion: headerValue(req, 'anthropic-version'),
      receivedAt: Date.now(),
      status: undefined,
      response: undefined,
    };
    this.records.push(record);
    this.notifyWaiters();
    return record;
  }

  private matchingScripts(body: unknown): string[] {
    const firstText = firstUserText(body);
    return [...this.scripts.keys()].filter((key) => firstText.includes(key));
  }

  /** The script whose key is in the first user message; else the default script's key; undefined if neither (or ambiguous). */
  private attribute(body: unknown): string | undefined {
    const matches = this.matchingScripts(body);
    if (matches.length > 1) return undefined;
    return matches[0] ?? (this.fallback ? DEFAULT_SCRIPT_KEY : undefined);
  }

  /** Everything the answer depends on, decided at arrival so that the order of arrival decides who gets injected failures. */
  private decide(record: RecordedRequest, body: unknown): Outcome {
    const { requestId } = record;
    const authFailure = this.checkAuth(record.apiKey);
    if (authFailure) return errorOutcome(requestId, authFailure);
    if (!record.anthropicVersion) return errorOutcome(requestId, { status: 400, message: 'anthropic-version: header is required' });
    let request: ParsedRequest;
    try {
      // A turn paused more than once arrives as one assistant message: its last answer is a suffix.
      request = parseRequest(body, (content) => content.some((_, i) => this.paused.has(contentKey(content.slice(i)))));
    } catch (error) {
      if (error instanceof InvalidRequestError) return errorOutcome(requestId, { status: 400, message: error.message });
      throw error;
    }
    try {
      return this.scriptedAnswer(record, request);
    } catch (error) {
      if (error instanceof ScriptError) return errorOutcome(requestId, { status: 400, message: `mock script error: ${error.message}`, shouldRetry: false });
      throw error;
    }
  }

  private checkAuth(apiKey: string | undefined): FailureSpec | undefined {
    if (apiKey === undefined || apiKey === '') return { status: 401, message: 'x-api-key header is required' };
    if (this.options.apiKeys && !this.options.apiKeys.includes(apiKey)) return { status: 401, message: 'invalid x-api-key' };
    return undefined;
  }

  private scriptedAnswer(record: RecordedRequest, request: ParsedRequest): Outcome {
    const { scriptKey } = record;
    const turnIndex = this.answersIn(request.messages);
    const turn = this.resolveTurn(scriptKey, turnIndex, request, record.body ?? {});
    const latencyMs = turn.latencyMs ?? this.scripts.get(scriptKey ?? '')?.latencyMs ?? this.options.latencyMs;
    const injected = this.takeInjectedFailure(scriptKey);
    if (injected) return errorOutcome(record.requestId, injected, latencyMs);
    const cacheScope = `${record.apiKey ?? ''}\0${request.model}`;
    const usage = this.cache.account(promptSegments(request, cacheScope), Date.now());
    const answer = messageBody(request.model, turn, scriptKey ?? DEFAULT_SCRIPT_KEY, turnIndex, usage);
    if (answer.stop_reason === 'pause_turn') this.paused.add(contentKey(answer.content as Block[]));
    return { status: 200, body: answer, headers: {}, latencyMs };
  }

  /**
   * How many of this server's answers the conversation holds: one per assistant message, except
   * that a paused turn continued more than once arrives as one message holding several answers.
   */
  private answersIn(messages: readonly { role?: unknown; content?: unknown }[]): number {
    let answers = 0;
    for (const m of messages) {
      if (m.role !== 'assistant') continue;
      const blocks = Array.isArray(m.content) ? m.content as Block[] : [];
      let start = 0;
      for (let end = 1; end <= blocks.length; end++) {
        if (this.paused.has(contentKey(blocks.slice(start, end)))) { answers++; start = end; }
      }
      if (start < blocks.length || blocks.length === 0) answers++;
    }
    return answers;
  }

  private resolveTurn(scriptKey: string | undefined, turnIndex: number, request: ParsedRequest, body: Readonly<JsonObject>): ScriptedTurn {
    if (scriptKey === undefined) {
      const matches = this.matchingScripts(body);
      if (matches.length > 1) throw new ScriptError(`the first user message matches several mock scripts (${matches.join(', ')}); use unique markers`);
      throw new ScriptError(`no mock script matches this conversation: none of the keys [${[...this.scripts.keys()].join(', ')}] occurs in the first user message, and no defaultScript is set`);
    }
    const source = scriptKey === DEFAULT_SCRIPT_KEY ? this.fallback : this.scripts.get(scriptKey)?.turns[turnIndex];
    if (source === undefined) {
      const length = this.scripts.get(scriptKey)?.turns.length ?? 0;
      throw new ScriptError(`mock script ${scriptKey} has no turn ${turnIndex} (it has ${length}; the conversation already holds ${turnIndex} of its answers)`);
    }
    const where = `mock script ${scriptKey} turn ${turnIndex}`;
    const turn = typeof source === 'function' ? callTurnFunction(source, { scriptKey, turnIndex, body, toolResults: toolResultsOf(request) }, where) : source;
    checkScriptedToolNames(turn, request, where);
    return turn;
  }

  private takeInjectedFailure(scriptKey: string | undefined): FailureSpec | undefined {
    const outage = this.currentOutage;
    if (outage && (outage.untilMs === undefined || Date.now() < outage.untilMs)) return outage.failure;
    const pending = this.failures.find((f) => f.scriptKey === undefined || f.scriptKey === scriptKey);
    if (!pending) return undefined;
    pending.remaining--;
    if (pending.remaining === 0) this.failures = this.failures.filter((f) => f !== pending);
    return pending.failure;
  }

  private async waitBeforeAnswering(scriptKey: string | undefined, latencyMs: number | undefined): Promise<void> {
    const gate = scriptKey === undefined ? undefined : this.gates.get(scriptKey);
    if (gate) await gate.opened;
    if (latencyMs !== undefined && latencyMs > 0 && !this.shutdown.signal.aborted) {
      await sleep(latencyMs, undefined, { signal: this.shutdown.signal }).catch(() => undefined);
    }
  }

  private send(res: ServerResponse, outcome: Outcome, requestId: string): void {
    res.writeHead(outcome.status, { 'content-type': 'application/json', 'request-id': requestId, ...outcome.headers });
    res.end(JSON.stringify(outcome.body));
  }

  private notifyWaiters(): void {
    this.waiters = this.waiters.filter((waiter) => {
      const arrived = this.requests(waiter.scriptKey);
      if (arrived.length < waiter.count) return true;
      waiter.resolve(arrived);
      return false;
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private describeArrivals(): string {
    const counts = new Map<string, number>();
    for (const r of this.records) counts.set(r.scriptKey ?? '(unmatched)', (counts.get(r.scriptKey ?? '(unmatched)') ?? 0) + 1);
    return [...counts].map(([key, n]) => `${key}: ${n}`).join(', ') || 'none';
  }
}

/** Sends a hostile answer; a long one in chunks, stopping as soon as the client leaves. */
async function sendHostile(res: ServerResponse, answer: HostileAnswer, requestId: string, hasLeft: () => boolean): Promise<void> {
  const message = (content: unknown[], stopReason: string): string => JSON.stringify({
    id: newId('msg'), type: 'message', role: 'assistant', model: 'hostile', content, stop_reason: stopReason,
    stop_sequence: null, usage: { input_tokens: 10, output_tokens: 10 },
  });
  const headers = { 'content-type': 'application/json', 'request-id': requestId };
  switch (answer.kind) {
    case 'oversized': {
      res.writeHead(200, headers); // no Content-Length: the client must count
      const chunk = 'x'.repeat(64 * 1024);
      // content last, so the body is valid JSON once it ends: {…,"content":[{"type":"text","text":"xxxx…"}]}
      const head = JSON.stringify({ id: newId('msg'), type: 'message', role: 'assistant', model: 'hostile', stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 10, output_tokens: 10 }, content: [] });
      res.write(head.replace('"content":[]}', '"content":[{"type":"text","text":"'));
      for (let sent = 0; sent < answer.bytes && !hasLeft(); sent += chunk.length) {
        if (!res.write(chunk)) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
      }
      if (!hasLeft()) res.end('"}]}');
      return;
    }
    case 'malformed':
      res.writeHead(200, headers);
      res.end(message([{ type: 'text', text: 'cut off' }], 'end_turn').slice(0, 60));
      return;
    case 'many-tool-uses':
      res.writeHead(200, headers);
      res.end(message(Array.from({ length: answer.count }, (_, i) => ({ type: 'tool_use', id: `toolu_hostile_${i}`, name: answer.tool, input: {} })), 'tool_use'));
      return;
    case 'odd-unicode':
      res.writeHead(200, headers);
      // Built by hand: JSON.stringify would normalise the escapes this answer is about.
      res.end(message([{ type: 'text', text: '@ODD@' }], 'end_turn').replace('@ODD@', ODD_UNICODE_JSON));
      return;
    case 'deep-input': {
      res.writeHead(200, headers);
      const input = `{"v":${'['.repeat(answer.depth)}${']'.repeat(answer.depth)}}`;
      res.end(message([{ type: 'tool_use', id: 'toolu_deep', name: answer.tool, input: '@IN@' }], 'tool_use').replace('"@IN@"', input));
      return;
    }
    case 'control-input':
      res.writeHead(200, headers);
      res.end(message([{ type: 'tool_use', id: 'toolu_ctrl', name: answer.tool, input: { v: '\u0001'.repeat(answer.bytes) } }], 'tool_use'));
      return;
    case 'raw-error':
      res.writeHead(answer.status, headers);
      res.end(answer.body);
      return;
  }
}

/** A content list's identity regardless of the cache_control markers a client adds. */
function contentKey(content: readonly Block[]): string {
  return JSON.stringify(content.map((block) => withoutCacheControl(block)));
}

function callTurnFunction(source: TurnFunction, request: ScriptRequest, where: string): ScriptedTurn {
  try {
    return source(request);
  } catch (error) {
    throw new ScriptError(`${where} threw: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function messageBody(model: string, turn: ScriptedTurn, scriptKey: string, turnIndex: number, cacheUsage: CacheUsage): JsonObject {
  const content = renderContent(turn, scriptKey, turnIndex);
  return {
    id: newId('msg'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: turn.stopReason ?? defaultStopReason(turn),
    stop_sequence: turn.stopSequence ?? null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: {
      ...cacheUsage,
      output_tokens: Math.max(1, estimateTokens(JSON.stringify(content).length)),
      ...turn.usage,
      server_tool_use: null,
      service_tier: 'standard',
      inference_geo: null,
      output_tokens_details: null,
      speed: null,
    },
  };
}

/** Notices a client that closes the connection before getting its answer (e.g. the operator was killed). */
function watchClient(res: ServerResponse): { gone: Promise<void>; hasLeft: () => boolean } {
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

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** SDK 1.x sends `Authorization: Bearer <key>`; older clients and curl users send `x-api-key`. */
function apiKeyOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headerValue(req, 'authorization') ?? '')?.[1];
  return bearer ?? headerValue(req, 'x-api-key');
}
