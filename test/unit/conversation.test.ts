/**
 * buildModelRequest() rebuilds the exact Messages API conversation from journal entries, so a
 * resumed run sends what an uninterrupted one would have sent, with prompt-cache breakpoints.
 */
import { describe, expect, it } from 'vitest';
import { buildModelRequest, finalText, type WireMessage } from '../../src/core/conversation.ts';
import type { JournalEntry } from '../../src/api/journal-entry.ts';
import { modelEntry, resolvedTools, response, spec, text, toolResultEntry, toolUse } from '../harness/builders.ts';

const EPHEMERAL = { type: 'ephemeral' };
const s = spec();
const tools = resolvedTools(s);

/** Every block of the conversation that carries a cache_control, as [message index, block index]. */
function breakpoints(messages: readonly WireMessage[]): [number, number][] {
  return messages.flatMap((m, i) => m.content.flatMap((b, j): [number, number][] => ('cache_control' in b ? [[i, j]] : [])));
}

describe('buildModelRequest', () => {
  it('the first request: the prompt as the only user message, model and max_tokens from the spec', () => {
    const request = buildModelRequest(s, tools, []);
    expect(request.model).toBe('claude-test');
    expect(request.max_tokens).toBe(1024);
    expect(request.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'When was Kubernetes 1.0 released?', cache_control: EPHEMERAL }] }]);
  });

  it('rebuilds a two-turn conversation: assistant content verbatim, tool_results in tool_use order whatever the journal order', () => {
    const turn1 = modelEntry(1, 1, response('tool_use', [
      text('Checking two sources.'),
      { type: 'thinking', thinking: 'compare them', signature: 'sig==' },
      toolUse('toolu_a', 'web_fetch', { url: 'https://a' }),
      toolUse('toolu_b', 'shell', { cmd: 'date' }),
      toolUse('toolu_c', 'web_fetch', { url: 'https://c' }),
    ]));
    // Results journaled in completion order (c, a, b), not call order.
    const rc = toolResultEntry(4, 'web_fetch', 'toolu_c', 'page c');
    const ra = toolResultEntry(2, 'web_fetch', 'toolu_a', 'Error: the tool exited with code 22.\n404', { isError: true, outcome: 'ToolError', exitCode: 22 });
    const rb = toolResultEntry(3, 'shell', 'toolu_b', 'Thu Jul 21');
    const turn2 = modelEntry(5, 2, response('tool_use', [toolUse('toolu_d', 'shell', { cmd: 'uname' })]));
    const rd = toolResultEntry(6, 'shell', 'toolu_d', 'Linux');
    const entries: JournalEntry[] = [turn1, rc, ra, rb, turn2, rd];

    const { messages } = buildModelRequest(s, tools, entries);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(messages[1]?.content).toEqual(turn1.response.content);
    expect(messages[2]?.content).toEqual([
      { type: 'tool_result', tool_use_id: 'toolu_a', content: 'Error: the tool exited with code 22.\n404', is_error: true },
      { type: 'tool_result', tool_use_id: 'toolu_b', content: 'Thu Jul 21' },
      { type: 'tool_result', tool_use_id: 'toolu_c', content: 'page c' },
    ]);
    expect(messages[3]?.content).toEqual(turn2.response.content);
    expect(messages[4]?.content).toEqual([{ type: 'tool_result', tool_use_id: 'toolu_d', content: 'Linux', cache_control: EPHEMERAL }]);
  });

  it('a tool_use without a recorded result gets an error tool_result (the API needs one per tool_use)', () => {
    const turn1 = modelEntry(1, 1, response('tool_use', [toolUse('toolu_a', 'web_fetch', { url: 'https://a' }), toolUse('toolu_b', 'shell', { cmd: 'x' })]));
    const { messages } = buildModelRequest(s, tools, [turn1, toolResultEntry(2, 'web_fetch', 'toolu_a', 'ok')]);
    expect(messages[2]?.content.map((b) => [b.tool_use_id, b.is_error ?? false])).toEqual([['toolu_a', false], ['toolu_b', true]]);
    expect(messages[2]?.content[1]?.content).toBe('Error: no result was recorded for this tool call.');
  });

  it('pause_turn: the paused assistant content is sent back as the last message, to be continued', () => {
    const paused = modelEntry(1, 1, response('pause_turn', [text('Searching…'), { type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'k8s' } }]));
    const { messages } = buildModelRequest(s, tools, [paused]);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[1]?.content.map((b) => b.type)).toEqual(['text', 'server_tool_use']);
    expect(breakpoints(messages)).toEqual([[1, 1]]);

    // The continuation joins the paused answer in one assistant turn (as the API would merge them).
    const continued = modelEntry(2, 2, response('tool_use', [text('Found it.'), toolUse('toolu_x', 'web_fetch', { url: 'https://k8s.io' })]));
    const after = buildModelRequest(s, tools, [paused, continued, toolResultEntry(3, 'web_fetch', 'toolu_x', 'page')]).messages;
    expect(after.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(after[1]?.content.map((b) => b.type)).toEqual(['text', 'server_tool_use', 'text', 'tool_use']);
    expect(after[1]?.content.some((b) => 'cache_control' in b)).toBe(false);
  });

  it('pause_turn twice in a row: still one assistant turn, ending with the latest paused answer', () => {
    const first = modelEntry(1, 1, response('pause_turn', [text('Searching…')]));
    const second = modelEntry(2, 2, response('pause_turn', [text('Still searching…')]));
    const { messages } = buildModelRequest(s, tools, [first, second]);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[1]?.content.map((b) => (b.type === 'text' ? b.text : b.type))).toEqual(['Searching…', 'Still searching…']);
  });

  it('an end_turn response is not followed by tool results', () => {
    const done = modelEntry(1, 1, response('end_turn', [text('Done.'), toolUse('toolu_ignored', 'shell', {})]));
    expect(buildModelRequest(s, tools, [done]).messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('puts exactly one cache breakpoint in the conversation, on its last block, without touching the journal', () => {
    const turn1 = modelEntry(1, 1, response('tool_use', [text('a'), toolUse('toolu_a', 'shell', { cmd: 'x' })]));
    const result = toolResultEntry(2, 'shell', 'toolu_a', 'out');
    const before = structuredClone([turn1, result]);
    const { messages } = buildModelRequest(s, tools, [turn1, result]);
    expect(breakpoints(messages)).toEqual([[2, 0]]);
    expect([turn1, result]).toEqual(before);
    // Building again yields the same request: nothing accumulated.
    expect(buildModelRequest(s, tools, [turn1, result])).toEqual(buildModelRequest(s, tools, [turn1, result]));
  });

  it('with a system prompt: it carries the breakpoint and the tools do not', () => {
    const request = buildModelRequest(s, tools, []);
    expect(request.system).toEqual([{ type: 'text', text: 'You are a careful research agent.', cache_control: EPHEMERAL }]);
    expect(request.tools?.map((t) => 'cache_control' in t)).toEqual([false, false]);
  });

  it('without a system prompt: the last tool carries the breakpoint', () => {
    const noSystem = spec({ systemPrompt: undefined });
    const request = buildModelRequest(noSystem, resolvedTools(noSystem), []);
    expect(request.system).toBeUndefined();
    expect(request.tools?.map((t) => t.cache_control)).toEqual([undefined, EPHEMERAL]);
    expect(request.tools?.[0]).toEqual({ name: 'web_fetch', description: 'Fetch a web page.', input_schema: tools[0]?.inputSchema });
  });

  it('without tools: no tools field at all', () => {
    const bare = spec({ tools: undefined });
    expect('tools' in buildModelRequest(bare, resolvedTools(bare), [])).toBe(false);
  });
});

describe('finalText', () => {
  it('joins the text blocks and ignores the rest', () => {
    expect(finalText([text(' Kubernetes 1.0'), toolUse('x', 'y', {}), { type: 'thinking', thinking: 'no' }, text('shipped in 2015. ')])).toBe('Kubernetes 1.0\nshipped in 2015.');
    expect(finalText([])).toBe('');
  });
});
