/**
 * Small helpers for tests of how runs meet the model API: Secrets holding API keys, tool specs
 * that always succeed, and views of a run's status and of the requests the mock model received.
 */
import type { AgentRun, StepRecord } from '../../src/api/agent-run.ts';
import type { Condition } from '../../src/api/primitives.ts';
import { runEvents } from './agent-env.ts';
import { clients, eventually } from './kube.ts';
import { text, type MockModelServer, type RecordedRequest, type ScriptedBlock } from './mock-model-server.ts';

/** Creates an Opaque Secret holding an API key under `key` (default api-key, as the API defaults). */
export async function createApiKeySecret(namespace: string, name: string, apiKey: string, key = 'api-key'): Promise<void> {
  await clients().core.createNamespacedSecret({ namespace, body: { metadata: { name }, type: 'Opaque', stringData: { [key]: apiKey } } });
}

/** An inline tool that always succeeds and prints `output`. */
export function okTool(name: string, output = 'ok'): Record<string, unknown> {
  return {
    name,
    description: `Test tool ${name}`,
    inputSchema: { type: 'object' },
    container: { image: 'busybox:1.37', command: ['sh', '-c', `printf '%s' '${output}'`] },
  };
}

/** The run's Succeeded condition, if it has one. */
export function succeeded(run: AgentRun): Condition | undefined {
  return run.status?.conditions?.find((c) => c.type === 'Succeeded');
}

/** A predicate for waitForRun: the run ended in `phase` with the Succeeded condition's `reason`. */
export function endedWith(phase: 'Succeeded' | 'Failed' | 'Cancelled', reason: string): (run: AgentRun) => boolean {
  return (run) => run.status?.phase === phase && succeeded(run)?.reason === reason;
}

export function modelSteps(run: AgentRun): StepRecord[] {
  return (run.status?.steps ?? []).filter((s) => s.kind === 'Model');
}

interface WireMessage { role: string; content: Record<string, unknown>[] }

/** The messages of a recorded request body. */
export function messagesOf(request: RecordedRequest | undefined): WireMessage[] {
  const messages = request?.body?.messages;
  return Array.isArray(messages) ? messages as WireMessage[] : [];
}

/** The last content block of the last message of a recorded request. */
export function lastBlockOf(request: RecordedRequest | undefined): Record<string, unknown> | undefined {
  return messagesOf(request).at(-1)?.content.at(-1);
}

/** Milliseconds between consecutive requests, by when the mock received them. */
export function gapsMs(requests: readonly RecordedRequest[]): number[] {
  return requests.slice(1).map((r, i) => r.receivedAt - (requests[i]?.receivedAt ?? r.receivedAt));
}

/** Waits for the run's first Event with `reason` (Events are written after the status they explain). */
export async function waitForEvent(namespace: string, name: string, reason: string, timeoutMs = 10_000): Promise<{ type: string; reason: string; message: string }> {
  return await eventually(`an Event ${reason} on ${name}`, async () => (await runEvents(namespace, name)).find((e) => e.reason === reason), timeoutMs);
}

/** The answer oneToolCall()'s second turn gives. */
export const FINAL_ANSWER = 'Done: I handled the tool result.';

/** Scripts a run of one tool call (turn 1) and a final answer, FINAL_ANSWER (turn 2), on `model`. */
export function oneToolCall(key: string, model: MockModelServer, call: ScriptedBlock): void {
  model.script(key, [{ content: [text('Calling the tool.'), call] }, { content: [text(FINAL_ANSWER)] }]);
}
