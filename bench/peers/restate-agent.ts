/**
 * The same agent as a Restate service handler (@restatedev/restate-sdk): one `ctx.run` per model
 * call and one per tool turn (with `mcpUrl`, the MCP call inside it), so each is journaled by
 * restate-server and replayed, not re-run, after a failure. Serves HTTP/2 on 127.0.0.1:AGENT_PORT;
 * restate-server invokes it.
 */
import * as http2 from 'node:http2';
import * as restate from '@restatedev/restate-sdk';
import { openMCPSession } from './mcp-tool.ts';
import { callModel, client, finalText, toolResults, type AgentConfig, type Message } from './agent-common.ts';

interface Request { baseURL: string; prompt: string; toolMs: number; maxTurns: number; mcpUrl?: string }

const agent = restate.service({
  name: 'agent',
  handlers: {
    run: async (ctx: restate.Context, req: Request): Promise<string> => {
      const c: AgentConfig = { ...req, model: 'claude-bench' };
      const anthropic = client(c);
      const messages: Message[] = [{ role: 'user', content: c.prompt }];
      for (let turn = 0; turn < c.maxTurns; turn++) {
        const response = await ctx.run('model', () => callModel(anthropic, c, messages));
        messages.push({ role: 'assistant', content: response.content });
        if (response.stop_reason !== 'tool_use') return finalText(response.content);
        messages.push(await ctx.run('tools', () => toolResults(c, response.content)));
      }
      return 'max turns';
    },
  },
});

const port = Number(process.env.AGENT_PORT ?? '9080');
// The session the handler's MCP calls use (same URL in the request), open before the first one.
if (process.env.AGENT_MCP_URL) await openMCPSession(process.env.AGENT_MCP_URL);
http2.createServer(restate.createEndpointHandler({ services: [agent] })).listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`);
});
