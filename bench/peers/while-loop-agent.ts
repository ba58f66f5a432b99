/**
 * The plain agent: a while loop that calls the model, runs the tools, and repeats. Nothing is
 * saved: a crash restarts it from the prompt (bench/crash-tokens.ts restarts it after each kill).
 */
import { closeMCPSessions, openMCPSession } from './mcp-tool.ts';
import { callModel, client, config, done, finalText, toolResults, type Message } from './agent-common.ts';

const c = config();
const anthropic = client(c);
if (c.mcpUrl) await openMCPSession(c.mcpUrl);
const messages: Message[] = [{ role: 'user', content: c.prompt }];
for (let turn = 0; turn < c.maxTurns; turn++) {
  const response = await callModel(anthropic, c, messages);
  messages.push({ role: 'assistant', content: response.content });
  if (response.stop_reason !== 'tool_use') { done(finalText(response.content)); break; }
  messages.push(await toolResults(c, response.content));
}
await closeMCPSessions();
