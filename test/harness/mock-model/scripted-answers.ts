/**
 * Scripted answers: which turn a request gets, its content, stop reason and message body.
 */
import { newId } from './errors.ts';
import { type CacheUsage, estimateTokens, withoutCacheControl } from './prompt-cache.ts';
import { type Block, type JsonObject, type ParsedRequest, isBlock, isObject } from './request-parsing.ts';
import type { ScriptRequest, ScriptedTurn, StopReason, ToolResult, TurnFunction, TurnSource } from './types.ts';

/** The turns of one script and the latency its answers get. */
export interface Script {
  turns: readonly TurnSource[];
  latencyMs: number | undefined;
}

/** A 400 caused by the test's own script, not by the client: never worth retrying. */
export class ScriptError extends Error {
  override name = 'ScriptError';
}

/** The text of the first user message of a request body: it selects the script. */
export function firstUserText(body: unknown): string {
  if (!isObject(body) || !Array.isArray(body.messages)) return '';
  const first: unknown = body.messages[0];
  if (!isObject(first)) return '';
  if (typeof first.content === 'string') return first.content;
  if (!Array.isArray(first.content)) return '';
  return first.content.filter(isBlock).map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n');
}

/** The tool results the last message of a request carries. */
export function toolResultsOf(request: ParsedRequest): ToolResult[] {
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
export function toolUseId(scriptKey: string, turnIndex: number, n: number): string {
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
export function checkScriptedToolNames(turn: ScriptedTurn, request: ParsedRequest, where: string): void {
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

/** A content list's identity regardless of the cache_control markers a client adds. */
export function contentKey(content: readonly Block[]): string {
  return JSON.stringify(content.map((block) => withoutCacheControl(block)));
}

/** Calls a script's turn function; an exception in it is a ScriptError (the test's fault). */
export function callTurnFunction(source: TurnFunction, request: ScriptRequest, where: string): ScriptedTurn {
  try {
    return source(request);
  } catch (error) {
    throw new ScriptError(`${where} threw: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The Message body of a scripted turn, with the usage the prompt cache computed. */
export function messageBody(model: string, turn: ScriptedTurn, scriptKey: string, turnIndex: number, cacheUsage: CacheUsage): JsonObject {
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
