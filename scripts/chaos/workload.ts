/**
 * The fleet's workload: the scripted agent variants, their tools and how tools record executions.
 */
import { createHash } from 'node:crypto';
import { text, toolUse, type MockModelServer, type ScriptRequest, type ScriptedTurn } from '../../test/harness/mock-model-server.ts';
import { appendLineSnippet } from '../../test/harness/tool-signals.ts';
import { endpointNameFor } from '../../test/harness/fleet.ts';

const TOOL_SLEEP = { fetch: '1.5', compute: '0.5', deploy: '0.3' } as const;
type ToolName = keyof typeof TOOL_SLEEP;
type Call = [ToolName, Record<string, unknown>];

/** Three variants of a 6-turn agent: parallel calls, one approval-gated `deploy`, then an answer. */
export const VARIANTS: readonly (readonly (readonly Call[])[])[] = [
  [[['fetch', { url: 'a' }], ['fetch', { url: 'b' }]], [['compute', { x: 1 }], ['compute', { x: 2 }]], [['deploy', { target: 'staging' }]],
    [['fetch', { url: 'c' }], ['compute', { x: 3 }], ['fetch', { url: 'd' }]], [['compute', { x: 4 }]]],
  [[['fetch', { url: 'e' }], ['fetch', { url: 'f' }], ['fetch', { url: 'g' }]], [['deploy', { target: 'canary' }], ['compute', { x: 5 }]],
    [['compute', { x: 6 }]], [['fetch', { url: 'h' }], ['fetch', { url: 'i' }]], [['compute', { x: 7 }], ['compute', { x: 8 }]]],
  [[['compute', { x: 9 }], ['fetch', { url: 'j' }]], [['fetch', { url: 'k' }]], [['compute', { x: 10 }], ['compute', { x: 11 }], ['compute', { x: 12 }]],
    [['deploy', { target: 'prod' }]], [['fetch', { url: 'l' }], ['compute', { x: 13 }]]],
];

/** The final answer digests every tool result of the conversation: a changed or lost result changes it. */
function finalAnswer(request: ScriptRequest): ScriptedTurn {
  const messages = (request.body.messages ?? []) as { role: string; content: unknown }[];
  const results: string[] = [];
  for (const m of messages) {
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const b of m.content as { type: string; content?: unknown; is_error?: boolean }[]) {
      if (b.type === 'tool_result') results.push(`${b.is_error ? 'ERR ' : ''}${typeof b.content === 'string' ? b.content : JSON.stringify(b.content)}`);
    }
  }
  const digest = createHash('sha256').update(results.join('\n')).digest('hex').slice(0, 16);
  return { content: [text(`All done: ${results.length} tool results, digest ${digest}.`)] };
}

/** Scripts the model for one run of a variant (its tool calls, turn by turn, then the final answer). */
export function scriptFor(model: MockModelServer, key: string, variant: number): void {
  const turns = (VARIANTS[variant] ?? []).map((calls, turn): ScriptedTurn => ({
    content: [...(turn === 0 ? [text('Starting the work.')] : []), ...calls.map(([name, input]) => toolUse(name, input))],
  }));
  model.script(key, [...turns, finalAnswer]);
}

/** How a tool records "<key> <attempt> start|done <ms>": a file append, or an HTTP append from a container. */
export type Recorder = (what: string) => string;

/** Tool commands that record by appending to the execution log directly (node emulator). */
export function fileRecorder(execLog: string): Recorder {
  return (what) => `echo "$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT ${what} \`date +%s%3N\`" >> ${execLog}`;
}

/** Tool commands that record through the HTTP recorder on the node IP (real containers). */
export function httpRecorder(url: string, execLog: string): Recorder {
  return (what) => appendLineSnippet(url, execLog, `"$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT ${what}"`, true);
}

function toolSpec(name: ToolName, record: Recorder): Record<string, unknown> {
  return {
    name,
    description: `The ${name} tool`,
    inputSchema: { type: 'object' },
    idempotent: true,
    retries: 3,
    ...(name === 'deploy' ? { requiresApproval: true } : {}),
    container: { image: 'busybox:1.37', command: ['sh', '-c', `${record('start')}; sleep ${TOOL_SLEEP[name]}; printf '%s(%s)' ${name} "$AGENTRUN_INPUT"; ${record('done')}`] },
  };
}

/** The AgentRun spec of one fleet run: the model endpoint, the tools and their recording. */
export function runSpec(key: string, modelUrl: string, record: Recorder): Record<string, unknown> {
  return {
    model: { name: 'claude-chaos', endpointRef: { name: endpointNameFor(modelUrl) } },
    prompt: `${key} Do the fleet work.`,
    tools: (['fetch', 'compute', 'deploy'] as const).map((t) => toolSpec(t, record)),
    limits: { maxTurns: 20, timeout: '30m', maxParallelTools: 4 },
    modelRetry: { initialBackoff: '500ms', backoffFactor: 2, maxBackoff: '4s' },
  };
}
