/**
 * The fields of a run's `tools[]` entry that use an MCPServer's tools (`mcpServerRef`), and the
 * rules that keep such an entry from also defining a pod tool.
 */
import { z } from 'zod';
import { objectName } from './primitives.ts';
import type { Rule } from './rules.ts';

/** A prefix keeps MCP tool names apart from other tools' (the Messages API's name alphabet). */
export const MCP_PREFIX_PATTERN = '^[a-zA-Z0-9_-]{1,32}$';

/** The fields of a run's tools[] entry that name an MCPServer's tools. */
export const mcpToolFields = {
  mcpServerRef: z.object({ name: objectName("An MCPServer in the run's namespace.") }).optional()
    .describe("Use the tools of an MCPServer (all, or those in allow); the run's creator needs the verb use on it."),
  allow: z.array(z.string().min(1).max(128)).min(1).max(128).optional()
    .describe('With mcpServerRef: only these tools of the server (names as the server lists them).'),
  prefix: z.string().regex(new RegExp(MCP_PREFIX_PATTERN), { error: 'must be 1-32 letters, digits, "_" or "-"' })
    .optional()
    .describe('With mcpServerRef: the model sees each tool as prefix + its name, to avoid clashes.'),
};

interface MCPEntry {
  mcpServerRef?: unknown;
  allow?: unknown;
  prefix?: unknown;
  description?: unknown;
  inputSchema?: unknown;
  timeout?: unknown;
  idempotent?: unknown;
  retries?: unknown;
}

/** The rules of such an entry, as CEL for the apiserver and as checks for zod (one declaration). */
export const mcpToolRules: readonly Rule<MCPEntry>[] = [
  {
    cel: 'has(self.mcpServerRef) || !(has(self.allow) || has(self.prefix))',
    message: 'allow and prefix only apply to a tool with mcpServerRef: remove them',
    check: (t) => t.mcpServerRef !== undefined || (t.allow === undefined && t.prefix === undefined),
  },
  {
    cel: '!has(self.mcpServerRef) || !(has(self.description) || has(self.inputSchema) || has(self.timeout) '
      + '|| has(self.idempotent) || has(self.retries))',
    message: 'a tool with mcpServerRef takes description, inputSchema, timeout and idempotent from the MCPServer: '
      + 'remove them here (only requiresApproval may be added)',
    check: (t) =>
      t.mcpServerRef === undefined
      || [t.description, t.inputSchema, t.timeout, t.idempotent, t.retries].every((v) => v === undefined),
  },
];
