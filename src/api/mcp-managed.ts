/**
 * The *managed* shape of an MCPServer: the operator runs the server itself (a Deployment of one
 * replica, a Service and a NetworkPolicy, owned by the MCPServer) from an image that serves
 * Streamable HTTP on `port` at `path`. Its pods get the hardened defaults of tool pods.
 */
import { z } from 'zod';
import { envVar } from './agent-tool.ts';
import { objectName, resourceRequirements } from './primitives.ts';

/** The Streamable HTTP path when none is given (what the reference servers use). */
export const DEFAULT_MCP_PATH = '/mcp';
/** The container port when none is given. */
export const DEFAULT_MCP_PORT = 8080;

/** A managed MCP server: the container the operator runs as a Deployment behind a Service. */
export const mcpManagedSpec = z.object({
  image: z.string().min(1).max(512).describe('Container image of the server, e.g. agentrun.dev/mcp-servers:2026.8.31.'),
  command: z.array(z.string().max(4096)).max(64).optional().describe("Entrypoint (the image's when unset)."),
  args: z.array(z.string().max(4096)).max(64).optional(),
  env: z.array(envVar).max(64).optional()
    .describe("Environment of the server: values, or keys of Secrets/ConfigMaps in the MCPServer's namespace."),
  port: z.int().min(1).max(65535).default(DEFAULT_MCP_PORT).describe('Port the server listens on. Default 8080.'),
  path: z.string().max(256).regex(/^\/[^\s?#]*$/, { error: 'must be a URL path starting with "/"' })
    .default(DEFAULT_MCP_PATH).describe('Path of the Streamable HTTP endpoint. Default /mcp.'),
  resources: resourceRequirements.optional().describe('Default 500m CPU, 256Mi memory (limits).'),
  serviceAccountName: objectName('ServiceAccount the server runs as. Unset: none, and no token is mounted.').optional(),
}).describe('The operator runs the server: a Deployment (1 replica), a Service and a NetworkPolicy it owns.');
export type MCPManagedSpec = z.infer<typeof mcpManagedSpec>;

/** Reasons of the Ready condition that only a managed server has. */
export const MCPManagedReason = {
  /** The Deployment has no available replica yet (pod scheduling, starting). */
  Deploying: 'Deploying',
  /** The image cannot be pulled (ErrImagePull, ImagePullBackOff, InvalidImageName). */
  ImagePullFailed: 'ImagePullFailed',
  /** The container starts and exits (CrashLoopBackOff) or cannot be created. */
  ServerCrashing: 'ServerCrashing',
  /** Creating or updating an owned object failed (RBAC, quota, admission). */
  ApplyFailed: 'ApplyFailed',
} as const;
