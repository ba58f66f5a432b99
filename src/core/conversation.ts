/**
 * Rebuilds the Messages API conversation from the journal, so a resumed run sends exactly what
 * an uninterrupted one would have sent. Also places the prompt-cache breakpoints: the growing
 * conversation prefix is re-read from the cache on every turn instead of being paid again.
 */
import type { AgentRunSpec } from '../api/agent-run.ts';
import type { JournalEntry, ResolvedTool, WireBlock } from '../api/journal-entry.ts';

/** One message of the conversation, as the Messages API takes it. */
export interface WireMessage {
  role: 'user' | 'assistant';
  content: WireBlock[];
}
/** One tool definition, as the Messages API takes it; the last one carries the cache breakpoint. */
export interface WireTool {
  name: string;
  description?: string;
  input_schema: Record<string, unknown>;
  cache_control?: { type: 'ephemeral' };
}

/** A Messages API request body (non-streaming), as sent on the wire. */
export interface ModelRequest {
  model: string;
  max_tokens: number;
  system?: WireBlock[];
  messages: WireMessage[];
  tools?: WireTool[];
}

const EPHEMERAL = { type: 'ephemeral' } as const;

/** The request for the next model call of a run, given its journal entries in step order. */
export function buildModelRequest(spec: AgentRunSpec, tools: readonly ResolvedTool[],
  entries: readonly JournalEntry[]): ModelRequest {
  const messages: WireMessage[] = [{ role: 'user', content: [{ type: 'text', text: spec.prompt }] }];
  const results = new Map<string, Extract<JournalEntry, { kind: 'ToolResult' }>>();
  for (const e of entries) if (e.kind === 'ToolResult') results.set(e.toolUseId, e);

  for (const entry of entries) {
    if (entry.kind !== 'ModelResponse') continue;
    const previous = messages.at(-1);
    // A paused turn continues in the next response: one assistant turn, as the API itself would
    // merge consecutive assistant messages (several pauses in a row stay one message).
    if (previous?.role === 'assistant')
      messages[messages.length - 1] = { role: 'assistant', content: [...previous.content, ...entry.response.content] };
    else messages.push({ role: 'assistant', content: entry.response.content });
    const toolUses = entry.response.content.filter((b) => b.type === 'tool_use');
    if (entry.response.stop_reason !== 'tool_use' || toolUses.length === 0) continue;
    messages.push({
      role: 'user',
      content: toolUses.map((use) => {
        const id = String(use.id);
        const result = results.get(id);
        return {
          type: 'tool_result',
          tool_use_id: id,
          content: result?.output ?? 'Error: no result was recorded for this tool call.',
          ...(result === undefined || result.isError ? { is_error: true } : {}),
        };
      }),
    });
  }

  const request: ModelRequest = { model: spec.model.name, max_tokens: spec.model.maxTokens,
    messages: withCacheBreakpoint(messages) };
  if (spec.systemPrompt) request.system = [{ type: 'text', text: spec.systemPrompt, cache_control: EPHEMERAL }];
  if (tools.length > 0) {
    request.tools = tools.map((t, i) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      input_schema: t.inputSchema,
      // Without a system prompt the tools are the stable prefix worth caching.
      ...(i === tools.length - 1 && !spec.systemPrompt ? { cache_control: EPHEMERAL } : {}),
    }));
  }
  return request;
}

/** Marks the last block of the conversation, so the next turn reads all of it from the cache. */
function withCacheBreakpoint(messages: WireMessage[]): WireMessage[] {
  const last = messages.at(-1);
  const lastBlock = last?.content.at(-1);
  if (!last || !lastBlock) return messages;
  const content = [...last.content.slice(0, -1), { ...lastBlock, cache_control: EPHEMERAL }];
  return [...messages.slice(0, -1), { ...last, content }];
}

/** The text of a final answer: its text blocks joined. */
export function finalText(content: readonly WireBlock[]): string {
  return content.filter((b) => b.type === 'text').map((b) => String(b.text)).join('\n').trim();
}
