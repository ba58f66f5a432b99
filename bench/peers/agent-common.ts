/**
 * What the peer agents share: configuration from the environment, the Anthropic client pointed at
 * the mock, and the tool: `work` (sleeps TOOL_MS, returns a deterministic string) or, with
 * AGENT_MCP_URL, the MCP server's `echo` (mcp-tool.ts). The same conversation as an AgentRun: the
 * prompt as the first user message, the tool definitions, tool results back.
 */
import Anthropic from '@anthropic-ai/sdk';
import { callMCPTool, ECHO_TOOL } from './mcp-tool.ts';

export interface AgentConfig { baseURL: string; prompt: string; toolMs: number; model: string; maxTurns: number; mcpUrl?: string }

export function config(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const baseURL = env.AGENT_BASE_URL;
  const prompt = env.AGENT_PROMPT;
  if (!baseURL || !prompt) throw new Error('AGENT_BASE_URL and AGENT_PROMPT are required');
  const mcpUrl = env.AGENT_MCP_URL || undefined;
  return { baseURL, prompt, toolMs: Number(env.AGENT_TOOL_MS ?? '0'), model: env.AGENT_MODEL ?? 'claude-bench', maxTurns: Number(env.AGENT_MAX_TURNS ?? '50'), mcpUrl };
}

/** SDK retries off, as the operator does: a failure is the caller's to handle. */
export function client(c: AgentConfig): Anthropic {
  return new Anthropic({ apiKey: 'bench-key', baseURL: c.baseURL, maxRetries: 0 });
}

export const TOOLS = [{ name: 'work', description: 'Does a unit of work', input_schema: { type: 'object' as const } }];

export type Block = Record<string, unknown> & { type: string };
export interface Message { role: 'user' | 'assistant'; content: string | Block[] }

export async function runTool(c: AgentConfig, input: unknown): Promise<string> {
  if (c.mcpUrl) return await callMCPTool(c.mcpUrl, ECHO_TOOL.name, input);
  if (c.toolMs > 0) await new Promise((r) => setTimeout(r, c.toolMs));
  return `ok ${JSON.stringify(input)}`;
}

/** The tool_result message answering every tool_use block of `content`. */
export async function toolResults(c: AgentConfig, content: readonly Block[]): Promise<Message> {
  const uses = content.filter((b) => b.type === 'tool_use');
  const results = await Promise.all(uses.map(async (u) => ({ type: 'tool_result', tool_use_id: String(u.id), content: await runTool(c, u.input) })));
  return { role: 'user', content: results };
}

export async function callModel(anthropic: Anthropic, c: AgentConfig, messages: readonly Message[]): Promise<{ content: Block[]; stop_reason: string | null }> {
  const response = await anthropic.messages.create({ model: c.model, max_tokens: 1024, tools: c.mcpUrl ? [ECHO_TOOL] : TOOLS, messages: messages as Anthropic.MessageParam[] });
  return { content: response.content as unknown as Block[], stop_reason: response.stop_reason };
}

export function finalText(content: readonly Block[]): string {
  return content.filter((b) => b.type === 'text').map((b) => String(b.text)).join('\n');
}

/** One line on stdout the harness waits for. */
export function done(result: string): void {
  process.stdout.write(`${JSON.stringify({ event: 'done', result })}\n`);
}
