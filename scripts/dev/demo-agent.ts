/**
 * The scripted "model" of `npm run dev` without ANTHROPIC_API_KEY: a defaultScript for the mock
 * Messages API server (test/harness/mock-model-server.ts) that plays the agent of
 * deploy/examples/demo.yaml. IT IS NOT A MODEL: it follows a fixed plan and only its last answer
 * depends on what the tools printed.
 *
 *   turn 1: clock + host_info, in parallel (one assistant message, two tool_use blocks)
 *   turn 2: run_shell {"command":"uptime"}, which waits for a human approval
 *   turn 3: a two-sentence summary built from the three tool results (or the rejection)
 *
 * A conversation without those tools (any other AgentRun applied while dev mode uses the stand-in)
 * gets one end_turn answer that says so, so the run ends instead of failing mysteriously.
 */
import type { ScriptRequest, ScriptedTurn } from '../../test/harness/mock-model-server.ts';

export const DEMO_TOOLS = ['clock', 'host_info', 'run_shell'] as const;
export const DEMO_SHELL_COMMAND = 'uptime';

/** What a tool call returned, by the tool's name (the last call of each tool wins). */
export interface ToolOutcome { readonly text: string; readonly isError: boolean }

/** The defaultScript turn function of the dev-mode stand-in. */
export function demoAgent(request: ScriptRequest): ScriptedTurn {
  const tools = toolNames(request.body);
  if (!DEMO_TOOLS.every((t) => tools.includes(t))) {
    return { content: [{ type: 'text', text: 'This is the scripted stand-in model of `npm run dev`, not a real model: it only knows the demo run '
      + `(tools ${DEMO_TOOLS.join(', ')}). Set ANTHROPIC_API_KEY before \`npm run dev\` to run other AgentRuns against the real API.` }] };
  }
  switch (request.turnIndex) {
    case 0:
      return { content: [
        { type: 'text', text: 'I will check the clock and the host at the same time.' },
        { type: 'tool_use', name: 'clock', input: {} },
        { type: 'tool_use', name: 'host_info', input: {} },
      ] };
    case 1:
      return { content: [
        { type: 'text', text: 'Now the uptime; run_shell needs your approval first.' },
        { type: 'tool_use', name: 'run_shell', input: { command: DEMO_SHELL_COMMAND } },
      ] };
    default:
      return { content: [{ type: 'text', text: demoSummary(toolOutcomes(request.body)) }] };
  }
}

/** The final answer: built from the tool results, so it shows what really ran. */
export function demoSummary(outcomes: ReadonlyMap<string, ToolOutcome>): string {
  const said = (name: string): string => {
    const outcome = outcomes.get(name);
    if (!outcome) return `(no ${name} result)`;
    const text = firstLine(outcome.text);
    return outcome.isError ? `(${name} failed: ${text})` : text;
  };
  const shell = outcomes.get('run_shell');
  const uptime = !shell ? 'I have no uptime result.'
    : shell.isError ? `I did not get the uptime: ${firstLine(shell.text)}`
      : `The machine reports: ${firstLine(shell.text)}.`;
  return `It is ${said('clock')} on ${said('host_info')}. ${uptime}`;
}

function firstLine(text: string): string {
  const line = text.replace(/^Error: /, '').trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const blocks = (message: unknown): Json[] =>
  isObject(message) && Array.isArray(message.content) ? message.content.filter(isObject) : [];

function toolNames(body: Readonly<Json>): string[] {
  return Array.isArray(body.tools) ? body.tools.filter(isObject).map((t) => String(t.name)) : [];
}

/** Pairs every tool_use in the conversation with its tool_result, by tool name. */
export function toolOutcomes(body: Readonly<Json>): Map<string, ToolOutcome> {
  const messages: unknown[] = Array.isArray(body.messages) ? body.messages : [];
  const nameById = new Map<string, string>();
  const out = new Map<string, ToolOutcome>();
  for (const message of messages) {
    for (const block of blocks(message)) {
      if (block.type === 'tool_use') nameById.set(String(block.id), String(block.name));
      if (block.type !== 'tool_result') continue;
      const name = nameById.get(String(block.tool_use_id));
      if (name) out.set(name, { text: resultText(block.content), isError: block.is_error === true });
    }
  }
  return out;
}

function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter(isObject).map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n');
}
