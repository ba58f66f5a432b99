/**
 * Validates a Messages API request as the real API does and reduces it to what the mock needs.
 */

/** A parsed JSON object. */
export type JsonObject = Record<string, unknown>;

/** A content block of a request (text, tool_use, tool_result, …), checked only as far as the mock needs. */
export interface Block {
  readonly type: string;
  readonly [field: string]: unknown;
}

interface ConversationMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

/** A request body that passed validation, normalized (string content → text blocks). */
export interface ParsedRequest {
  model: string;
  tools: JsonObject[];
  system: Block[];
  messages: ConversationMessage[];
  /** Top-level `cache_control`: a breakpoint on the last block of the request. */
  automaticCacheControl: JsonObject | undefined;
}

/** A 400 the real API would also give; thrown while parsing, turned into a response. */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
}

/** Throws the 400 invalid_request_error the real API would give. */
export function invalid(message: string): never {
  throw new InvalidRequestError(message);
}

function notEmulated(feature: string): never {
  invalid(`mock-model-server: ${feature} is not emulated by this test stand-in`);
}

/** Whether a value is a JSON object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether a value is a content block (an object with a string `type`). */
export function isBlock(value: unknown): value is Block {
  return isObject(value) && typeof value.type === 'string';
}

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_CACHE_BREAKPOINTS = 4;

/** `continues`: whether a final assistant message is the content of a paused turn being continued. */
export function parseRequest(body: unknown, continues: (content: Block[]) => boolean = () => false): ParsedRequest {
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
export function cacheControlsOf(block: JsonObject): JsonObject[] {
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
