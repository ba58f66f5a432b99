/**
 * The `MCPServer` kind: a Model Context Protocol server admins configure for a namespace (remote
 * shape: a Streamable HTTP URL, headers from a Secret). The operator connects to it, lists its
 * tools into status, and runs use them by `mcpServerRef`. Like a ModelEndpoint, using one needs
 * the verb `use` on it (`mcpservers`, by name): the run's creator is checked, and the Secret's
 * headers are only ever sent for runs whose creator may use the server.
 */
import { z } from 'zod';
import { API_VERSION } from './group.ts';
import { RFC3339, condition, duration, freeFormObject, objectName } from './primitives.ts';
import { withRules } from './rules.ts';
import { mcpManagedSpec } from './mcp-managed.ts';

/** The kind of MCP servers' objects. */
export const MCP_SERVER_KIND = 'MCPServer';
/** The resource (plural) of MCPServer objects. */
export const MCP_SERVER_PLURAL = 'mcpservers';

/** Bounds on what a server's tools/list may put in status (a server is not trusted to be small). */
export const MCP_LIMITS = {
  maxTools: 128,
  maxDescriptionChars: 2048,
  maxInputSchemaBytes: 16_384,
  maxTitleChars: 256,
  /** The whole discoveredTools list, serialised. */
  maxDiscoveredBytes: 512 * 1024,
} as const;

/** HTTP header names (RFC 9110 token), minus the ones the transport sets itself. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const RESERVED_HEADERS = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'content-length', 'host'];

const header = withRules(z.object({
  name: z.string().regex(HEADER_NAME, { error: 'must be an HTTP header name' }).describe(
    'Header name, e.g. Authorization.',
  ),
  secretKeyRef: z.object({
    name: objectName("Secret in the MCPServer's namespace."),
    key: z.string().min(1).max(253).describe('Key in the Secret; its value is the header value.'),
  }),
}), [{
  cel: `!(self.name.lowerAscii() in ${JSON.stringify(RESERVED_HEADERS)})`,
  message: `headers ${RESERVED_HEADERS.join(', ')} are set by the MCP transport; choose another header`,
  check: (h) => !RESERVED_HEADERS.includes(h.name.toLowerCase()),
}]);

const toolOverride = z.object({
  name: z.string().min(1).max(128).describe("The tool's name on the server."),
  idempotent: z.boolean().optional()
    .describe("A call interrupted by an operator crash is safe to make again. Overrides the server's idempotentHint."),
  requiresApproval: z.boolean().optional()
    .describe('Calls wait for a human decision (true) or not (false). Overrides destructiveHint/readOnlyHint.'),
});
export type MCPToolOverride = z.infer<typeof toolOverride>;

/** An MCPServer's spec: a remote URL or a managed server, headers, timeouts and per-tool overrides. */
export const mcpServerSpec = withRules(z.object({
  url: z.string().max(2048).regex(/^https?:\/\/[^\s]+$/, { error: 'must be an http(s) URL' })
    .describe(
      "A remote server's Streamable HTTP endpoint, e.g. http://tools.team-a.svc:3001/mcp. Exclusive with managed.",
    )
    .optional(),
  managed: mcpManagedSpec.optional().describe('The operator runs the server from an image. Exclusive with url.'),
  headers: z.array(header).max(16).optional()
    .describe(
      'Headers sent with every request (tokens), each from a Secret. Never copied into status, Events or logs.',
    ),
  timeouts: z.object({
    connect: duration('Connecting and initialize. Default 10s.').default('10s'),
    call: duration('One tool call; the model gets a TimedOut error result after it. Default 60s.').default('60s'),
  }).default({ connect: '10s', call: '60s' }),
  refreshInterval: duration(
    'How often tools/list is read again (also on notifications/tools/list_changed). Default 5m.',
  )
    .default('5m'),
  trustHints: z.boolean().default(false)
    .describe("Trust the server's idempotentHint: an interrupted call of such a tool is made again. Default false."),
  tools: z.array(toolOverride).max(128).optional().describe(
    'Per-tool decisions of the admin; they win over annotations.',
  ),
  tasks: z.enum(['Never', 'Prefer']).optional().describe(
    'MCP Tasks (protocol 2025-11-25): Prefer calls tools whose taskSupport is optional as tasks too '
      + '(their handle is journaled, so a call survives an operator restart). Tools that require tasks '
      + 'are always called as tasks. Default Never.',
  ),
}).describe('MCPServerSpec is an MCP server (Streamable HTTP), remote or managed, runs may call tools of.'), [{
  cel: 'has(self.url) != has(self.managed)',
  message: 'set exactly one of url (a remote server) or managed (the operator runs it)',
  check: (s) => (s.url !== undefined) !== (s.managed !== undefined),
}, {
  cel: '!has(self.tools) || self.tools.all(t, self.tools.exists_one(u, u.name == t.name))',
  message: 'tools[].name must be unique: one override per tool',
  check: (s) => new Set((s.tools ?? []).map((t) => t.name)).size === (s.tools ?? []).length,
  fieldPath: '.tools',
}]);
export type MCPServerSpec = z.infer<typeof mcpServerSpec>;

/** MCP ToolAnnotations: hints from the server, untrusted unless the admin says otherwise. */
export const toolAnnotations = z.object({
  title: z.string().max(MCP_LIMITS.maxTitleChars).optional(),
  readOnlyHint: z.boolean().optional(),
  destructiveHint: z.boolean().optional(),
  idempotentHint: z.boolean().optional(),
  openWorldHint: z.boolean().optional(),
});
export type ToolAnnotations = z.infer<typeof toolAnnotations>;

/** A tool as the server listed it, bounded, kept in status. */
export const discoveredTool = z.object({
  name: z.string().max(128),
  description: z.string().max(MCP_LIMITS.maxDescriptionChars + 64).optional(),
  inputSchema: freeFormObject('JSON Schema of the tool input, as the server lists it.').optional(),
  annotations: toolAnnotations.optional(),
  taskSupport: z.enum(['optional', 'required']).optional().describe(
    'The tool can (optional) or must (required) be called as an MCP task; absent: never, or the server '
      + 'does not advertise tasks for tools/call.',
  ),
  problem: z.string().max(512).optional().describe(
    'Why runs cannot use this tool (name or schema the Messages API rejects).',
  ),
});
export type DiscoveredTool = z.infer<typeof discoveredTool>;

/** What the operator observed of an MCPServer: Ready, the server's identity and its tools. */
export const mcpServerStatus = z.object({
  conditions: z.array(condition).max(8).optional().meta({ 'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'] }),
  observedGeneration: z.int().min(0).optional(),
  serverInfo: z.object({
    name: z.string().max(256).optional(),
    version: z.string().max(128).optional(),
    protocolVersion: z.string().max(64).optional(),
  }).optional(),
  toolCount: z.int().min(0).optional().describe(
    'How many tools the server listed (also those left out of discoveredTools).',
  ),
  discoveredTools: z.array(discoveredTool).max(MCP_LIMITS.maxTools).optional(),
  lastRefreshTime: RFC3339.optional(),
  url: z.string().max(2048).optional()
    .describe(
      'Where the operator reaches the server: spec.url, or for a managed one its Service or a ready pod address.',
    ),
});
export type MCPServerStatus = z.infer<typeof mcpServerStatus>;

/** An MCPServer object as the apiserver stores it. */
export const mcpServer = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(MCP_SERVER_KIND),
  metadata: z.object({ name: z.string(), namespace: z.string().optional(), generation: z.int().optional() }).loose(),
  spec: mcpServerSpec,
  status: mcpServerStatus.optional(),
});
export type MCPServer = z.infer<typeof mcpServer>;

/** Reasons of the MCPServer's Ready condition. */
export const MCPReason = {
  Connected: 'Connected',
  Connecting: 'Connecting',
  SecretUnavailable: 'SecretUnavailable',
  ConnectFailed: 'ConnectFailed',
  ListToolsFailed: 'ListToolsFailed',
} as const;
