/**
 * What an MCP server's tools/list may put into MCPServer status: every size is bounded (count,
 * description, schema, total), and a tool the Messages API could not take is kept with a
 * `problem` instead of being dropped, so `kubectl get mcpserver -o yaml` shows why.
 */
import { TOOL_NAME_PATTERN } from '../api/agent-tool.ts';
import { MCP_LIMITS, toolAnnotations, type DiscoveredTool } from '../api/mcp-server.ts';

/** A tool as tools/list returns it (only the fields kept). */
export interface ListedTool {
  readonly name: string;
  readonly description?: string | undefined;
  readonly inputSchema?: unknown;
  readonly annotations?: unknown;
  readonly execution?: { readonly taskSupport?: string | undefined } | undefined;
}

/** A server's tools/list bounded for status: the kept tools, how many were listed, and what was dropped. */
export interface Discovery {
  readonly tools: DiscoveredTool[];
  /** How many tools the server listed. */
  readonly total: number;
  /** What was left out or cut, for the Ready condition's message. */
  readonly notes: string[];
}

const bytes = (v: unknown): number => new TextEncoder().encode(JSON.stringify(v)).length;

/**
 * Bounds what a server listed (count, names, descriptions, schemas) before it reaches status;
 * `toolTasks`: the server advertises capabilities.tasks.requests.tools.call.
 */
export function boundDiscovery(listed: readonly ListedTool[], toolTasks = false): Discovery {
  const notes: string[] = [];
  const tools: DiscoveredTool[] = [];
  let total = 0;
  for (const t of listed.slice(0, MCP_LIMITS.maxTools)) {
    const tool = boundTool(t, toolTasks);
    const size = bytes(tool);
    if (total + size > MCP_LIMITS.maxDiscoveredBytes) {
      notes.push(
        `tools after ${tools.length} were left out: the list would exceed ${MCP_LIMITS.maxDiscoveredBytes} bytes`,
      );
      break;
    }
    total += size;
    tools.push(tool);
  }
  if (listed.length > MCP_LIMITS.maxTools)
    notes.push(`the server lists ${listed.length} tools; only the first ${MCP_LIMITS.maxTools} are kept`);
  const problems = tools.filter((t) => t.problem !== undefined).length;
  if (problems > 0) notes.push(`${problems} tools cannot be used (see discoveredTools[].problem)`);
  return { tools, total: listed.length, notes };
}

function boundTool(t: ListedTool, toolTasks: boolean): DiscoveredTool {
  const name = t.name.slice(0, 128);
  const out: DiscoveredTool = { name };
  if (t.description) {
    out.description = t.description.length > MCP_LIMITS.maxDescriptionChars
      ? `${t.description.slice(0, MCP_LIMITS.maxDescriptionChars)} [description truncated]` :
      t.description;
  }
  const annotations = toolAnnotations.safeParse(t.annotations ?? {});
  if (annotations.success && Object.keys(annotations.data).length > 0) out.annotations = annotations.data;
  // A tool's taskSupport counts only when the server advertises tasks for tools/call.
  const support = t.execution?.taskSupport;
  if (toolTasks && (support === 'optional' || support === 'required')) out.taskSupport = support;
  const schema = t.inputSchema;
  if (typeof schema !== 'object' || schema === null || (schema as { type?: unknown }).type !== 'object') {
    out.problem = 'its inputSchema is not a JSON object schema ("type": "object")';
  } else if (bytes(schema) > MCP_LIMITS.maxInputSchemaBytes) {
    out.problem = `its inputSchema is over ${MCP_LIMITS.maxInputSchemaBytes} bytes`;
  } else {
    out.inputSchema = schema as Record<string, unknown>;
  }
  if (!new RegExp(TOOL_NAME_PATTERN).test(t.name)) {
    out.problem =
      'its name is not 1-64 letters, digits, "_" or "-" (what the Messages API accepts); a prefix cannot fix that';
  }
  return out;
}
