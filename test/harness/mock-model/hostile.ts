/**
 * Hostile answers: raw replies meant to hurt the client (oversized, malformed, odd Unicode, ...).
 */
import type { ServerResponse } from 'node:http';
import { newId } from './errors.ts';
import { type HostileAnswer, ODD_UNICODE_JSON } from './types.ts';

/** Sends a hostile answer; a long one in chunks, stopping as soon as the client leaves. */
export async function sendHostile(res: ServerResponse, answer: HostileAnswer, requestId: string, hasLeft: () => boolean): Promise<void> {
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
