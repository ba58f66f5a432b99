/**
 * Turns an MCP CallToolResult into the text the model gets as its tool_result. Text blocks pass
 * as they are; every other block (image, audio, resource, resource link) is summarised with a
 * note saying what it was and that it was not passed on — never dropped silently. The result is
 * cut at the run's maxToolOutputBytes (UTF-8 bytes) and says so.
 */

/** A content block as an MCP server sends it (only the fields read here). */
export interface MCPContentBlock {
  readonly type: string;
  readonly text?: unknown;
  readonly mimeType?: unknown;
  readonly data?: unknown;
  readonly uri?: unknown;
  readonly name?: unknown;
  readonly resource?: { readonly uri?: unknown; readonly mimeType?: unknown; readonly text?: unknown;
    readonly blob?: unknown };
}

/** An MCP result as text for the model, cut to a byte cap, and whether it was cut. */
export interface MCPText {
  readonly text: string;
  readonly truncated: boolean;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
/** Decoded size of base64 data, for the note. */
const base64Bytes = (v: unknown): number => Math.floor((str(v).replace(/=+$/, '').length * 3) / 4);

function blockText(block: MCPContentBlock): string {
  switch (block.type) {
    case 'text':
      return str(block.text);
    case 'image':
    case 'audio':
      return `[${block.type} content (${str(block.mimeType) || 'unknown type'}, ${
        base64Bytes(block.data)
      } bytes) was returned by the tool; `
        + 'this operator passes only text to the model, so it was left out]';
    case 'resource_link':
      return `[resource link: ${str(block.uri)}${block.name ? ` (${str(block.name)})` : ''}]`;
    case 'resource': {
      const r = block.resource ?? {};
      if (typeof r.text === 'string') return `[resource ${str(r.uri)}]\n${r.text}`;
      return `[resource ${str(r.uri)} (${str(r.mimeType) || 'binary'}, ${
        base64Bytes(r.blob)
      } bytes) was returned by the tool; `
        + 'binary content is not passed to the model, so it was left out]';
    }
    default:
      return `[content of type "${
        block.type.slice(0, 64)
      }" was returned by the tool; this operator does not pass it on]`;
  }
}

/**
 * The model's view of a call's result: its content blocks as text, or its structuredContent as
 * JSON when it has no content, cut at `limitBytes`.
 */
export function mcpResultText(result: { content?: readonly MCPContentBlock[]; structuredContent?: unknown },
  limitBytes: number): MCPText {
  const blocks = result.content ?? [];
  let text = blocks.map(blockText).join('\n');
  if (blocks.length === 0 && result.structuredContent !== undefined) text = JSON.stringify(result.structuredContent);
  return cutToBytes(text, limitBytes);
}

/** At most `limitBytes` UTF-8 bytes of `text` (never half a character), with a note when cut. */
export function cutToBytes(text: string, limitBytes: number): MCPText {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= limitBytes) return { text, truncated: false };
  // TextDecoder drops a trailing partial character instead of inventing one.
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, limitBytes)).replace(/\uFFFD$/, '');
  return { text: `${head}\n[output truncated to the first ${limitBytes} bytes]`, truncated: true };
}
