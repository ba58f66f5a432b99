/**
 * A 4-turn run with parallel tool calls, end to end: real apiserver, the operator as a child
 * process, tool pods run by the node emulator, the model stand-in driven through the real SDK.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { kubectl, readJournal } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { createRun, executions, getRun, livePods, recordingTool, runEvents, startAgentEnv, type AgentEnv, MOCK_ENDPOINT } from '../harness/agent-env.ts';
import { eventually } from '../harness/kube.ts';

let env: AgentEnv;
beforeAll(async () => { env = await startAgentEnv('happy'); });
afterAll(async () => { await env.close(); });

const KEY = '[happy-4-turns]';

describe('a 4-turn run with parallel tool calls', () => {
  it('completes with the right status, journal, events and result', async () => {
    env.model.script(KEY, [
      { content: [text('Looking things up.'), toolUse('lookup', { q: 'alpha' }), toolUse('lookup', { q: 'beta' })] },
      { content: [toolUse('shout', { word: 'gamma' })] },
      { content: [toolUse('lookup', { q: 'delta' }), toolUse('shout', { word: 'epsilon' }), toolUse('lookup', { q: 'zeta' })] },
      { content: [text('All six lookups done: the answer is 42.')] },
    ]);
    await createRun(env.namespace, 'four-turns', {
      model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
      systemPrompt: 'You are a test agent.',
      prompt: `${KEY} find the answer`,
      tools: [
        { name: 'lookup', description: 'Look something up', inputSchema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
          container: recordingTool(env.execLog, 'printf "found %s" "$(printf "%s" "$AGENTRUN_INPUT" | sed -n "s/.*\\"q\\":\\"\\([^\\"]*\\)\\".*/\\1/p")"') },
        { name: 'shout', description: 'Upper-case a word', container: recordingTool(env.execLog, 'printf "%s" "$AGENTRUN_INPUT" | tr a-z A-Z') },
      ],
    });

    // The human way to wait for a run: kubectl wait on the batch condition.
    await kubectl(['wait', '-n', env.namespace, '--for=condition=Succeeded', 'agentrun/four-turns', '--timeout=60s']);
    const run = await getRun(env.namespace, 'four-turns');
    const status = run.status ?? {};

    expect(status.phase).toBe('Succeeded');
    expect(status.result).toBe('All six lookups done: the answer is 42.');
    expect(status.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'True', reason: 'Completed' });
    expect(status.currentTurn).toBe(4);
    const steps = status.steps ?? [];
    expect(steps.map((s) => `${s.kind}${s.tool ? `:${s.tool}` : ''}`)).toEqual([
      'Model', 'Tool:lookup', 'Tool:lookup', 'Model', 'Tool:shout', 'Model', 'Tool:lookup', 'Tool:shout', 'Tool:lookup', 'Model',
    ]);
    expect(steps.map((s) => s.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(steps.every((s) => s.phase === 'Succeeded' && s.attempt === 1)).toBe(true);

    // Every step is journaled in an owned AgentRunJournal whose content matches the digest in status.
    for (const step of steps) {
      expect(step.journal, `step ${step.id}`).toBeDefined();
      const stored = await readJournal(env.namespace, step.journal?.name ?? '');
      expect(`sha256:${createHash('sha256').update(stored.spec.entry).digest('hex')}`).toBe(step.journal?.digest);
      expect(stored.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'AgentRun', name: 'four-turns', uid: run.metadata.uid, controller: true });
      expect(stored.spec).toMatchObject({ run: { name: 'four-turns', uid: run.metadata.uid }, step: step.id });
    }

    // Tokens are accounted, and the conversation prefix is read from the prompt cache.
    expect(status.usage?.totalTokens).toBeGreaterThan(0);
    expect(status.usage?.cacheReadInputTokens).toBeGreaterThan(0);

    // The model saw each tool's output as a tool_result for the matching tool_use.
    const second = env.model.requests(KEY)[1]?.body as { messages: { role: string; content: { type: string; tool_use_id?: string; content?: string }[] }[] };
    const results = second.messages[2]?.content ?? [];
    expect(results.map((b) => b.content)).toEqual(['found alpha', 'found beta']);
    const fourth = env.model.requests(KEY)[3]?.body as { messages: { content: { content?: string }[] }[] };
    expect(fourth.messages[6]?.content.map((b) => b.content)).toEqual(['found delta', '{"WORD":"EPSILON"}', 'found zeta']);

    // Exactly four model calls, one pod per tool call, each tool run once, no pod left behind.
    expect(env.model.calls(KEY)).toBe(4);
    expect(env.pods.names()).toEqual(['four-turns-s2-a1', 'four-turns-s3-a1', 'four-turns-s5-a1', 'four-turns-s7-a1', 'four-turns-s8-a1', 'four-turns-s9-a1']);
    expect(await executions(env.execLog)).toHaveLength(6);
    await eventually('tool pods to be deleted', async () => ((await livePods(env.namespace)).length === 0 ? true : undefined));

    // Events are sent off the reconcile path: wait for the last one. Routine step successes are
    // in status only (an Event each only with --step-events).
    const reasons = await eventually('the Succeeded Event', async () => {
      const seen = (await runEvents(env.namespace, 'four-turns')).map((e) => e.reason);
      return seen.includes('Succeeded') ? seen : undefined;
    });
    expect(reasons).toContain('Started');
    expect(reasons.filter((r) => r === 'ModelResponded' || r === 'ToolSucceeded')).toEqual([]);

    // The finalizer is gone once the run is finished, so it stays deletable without the operator.
    await eventually('the finalizer to be removed', async () => ((await getRun(env.namespace, 'four-turns')).metadata.finalizers?.length ? undefined : true));
    const { stdout } = await kubectl(['get', 'agentrun', 'four-turns', '-n', env.namespace, '--no-headers']);
    expect(stdout).toMatch(/^four-turns\s+Succeeded\s+4\s+\d+/);
  });
});
