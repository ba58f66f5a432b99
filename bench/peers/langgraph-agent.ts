/**
 * The same agent as a LangGraph JS graph (model node ⇄ tools node) with the durable SQLite
 * checkpointer (@langchain/langgraph-checkpoint-sqlite) and `durability: "sync"`: each super-step
 * is saved before the next starts. Started again after a kill, it resumes the thread from its last
 * checkpoint (AGENT_DB, AGENT_THREAD).
 */
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import { closeMCPSessions, openMCPSession } from './mcp-tool.ts';
import { callModel, client, config, done, finalText, toolResults, type Block, type Message } from './agent-common.ts';

const c = config();
const anthropic = client(c);
if (c.mcpUrl) await openMCPSession(c.mcpUrl);
const db = process.env.AGENT_DB ?? ':memory:';
const thread = process.env.AGENT_THREAD ?? 'bench';

const State = Annotation.Root({
  messages: Annotation<Message[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
});
type S = typeof State.State;

const lastContent = (s: S): Block[] => {
  const last = s.messages.at(-1);
  return Array.isArray(last?.content) ? last.content : [];
};

const graph = new StateGraph(State)
  .addNode('model', async (s: S) => {
    const r = await callModel(anthropic, c, s.messages);
    const message: Message = { role: 'assistant', content: r.content };
    return { messages: [message] };
  })
  .addNode('tools', async (s: S) => ({ messages: [await toolResults(c, lastContent(s))] }))
  .addEdge(START, 'model')
  .addConditionalEdges('model', (s: S) => (lastContent(s).some((b) => b.type === 'tool_use') ? 'tools' : END), ['tools', END])
  .addEdge('tools', 'model')
  .compile({ checkpointer: SqliteSaver.fromConnString(db) });

const cfg = { configurable: { thread_id: thread }, durability: 'sync' as const, recursionLimit: 2 * c.maxTurns + 5 };
const state = await graph.getState(cfg);
const input = state.next.length > 0 ? null : { messages: [{ role: 'user', content: c.prompt } as Message] };
const saved = state.values as Partial<S>;
if (state.next.length === 0 && (saved.messages ?? []).length > 0) {
  done(finalText(lastContent(saved as S)));
} else {
  const out: S = await graph.invoke(input, cfg);
  done(finalText(lastContent(out)));
}
await closeMCPSessions();
