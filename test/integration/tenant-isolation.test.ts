/**
 * One tenant cannot hurt the operator or the other tenants: the real operator (a child process,
 * at log level debug) and a real apiserver, against the mock model server's hostile mode and
 * hostile tool definitions and API keys. Each case ends at once with a reason that says what to
 * change (or is harmless), while an ordinary run in the same operator still succeeds.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { MOCK_ENDPOINT, createRun, endpointFor, runEvents, startAgentEnv, waitForRun, finished, type AgentEnv } from '../harness/agent-env.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { createApiKeySecret, okTool, succeeded } from '../harness/model-scenarios.ts';
import { stepOf, toolResultsSent } from '../harness/tool-scenarios.ts';

let env: AgentEnv;
beforeAll(async () => { env = await startAgentEnv('tenant'); });
afterAll(async () => { await env.close(); });

const MiB = 1024 * 1024;
const runSpec = (key: string, extra: Record<string, unknown> = {}) => ({
  model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} do the task`, ...extra,
});
const ended = (name: string, timeoutMs = 30_000): Promise<AgentRun> => waitForRun(env.namespace, name, `run ${name} to end`, finished, timeoutMs);

/** Peak RSS of the operator process so far (VmHWM), in bytes. */
async function operatorPeakRss(): Promise<number> {
  const status = await readFile(`/proc/${env.operator.pid ?? 0}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/u.exec(status)?.[1] ?? 0) * 1024;
}

/** Everything a run creator and an operator admin can read about a run, as one text. */
async function everythingVisible(name: string): Promise<string> {
  const run = await waitForRun(env.namespace, name, 'read', () => true);
  const events = await runEvents(env.namespace, name);
  return `${JSON.stringify(run.status)}\n${JSON.stringify(events)}\n${env.operator.output()}`;
}

describe.concurrent('a hostile model endpoint', () => {
  it('a 150 MB response fails the run (ModelResponseTooLarge) without the operator buffering it', async ({ expect }) => {
    const KEY = '[ti-huge]';
    env.model.hostile(KEY, { kind: 'oversized', bytes: 150 * MiB });
    await createRun(env.namespace, 'huge', runSpec(KEY));
    const run = await ended('huge');
    expect(run.status?.phase).toBe('Failed');
    expect(succeeded(run)).toMatchObject({ reason: 'ModelResponseTooLarge' });
    expect(run.status?.message).toContain('Lower spec.model.maxTokens');
    expect(await operatorPeakRss()).toBeLessThan(400 * MiB);
  });

  it('500 tool_use blocks in one response fail the run at once (ModelResponseInvalid), no pod', async ({ expect }) => {
    const KEY = '[ti-many]';
    env.model.hostile(KEY, { kind: 'many-tool-uses', count: 500, tool: 'ok' });
    await createRun(env.namespace, 'many', runSpec(KEY, { tools: [okTool('ok')] }));
    const run = await ended('many');
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'ModelResponseInvalid' });
    expect(run.status?.message).toContain('500 tool calls');
    expect(run.status?.steps).toHaveLength(1);
    expect(env.pods.names().filter((n) => n.startsWith('many-'))).toEqual([]);
  });

  it('a tool input of 200,000 control characters (1.2 MB as JSON) fails the run at once instead of a journal write retried forever', async ({ expect }) => {
    const KEY = '[ti-ctrl]';
    env.model.hostile(KEY, { kind: 'control-input', tool: 'ok', bytes: 200_000 });
    await createRun(env.namespace, 'ctrl', runSpec(KEY, { tools: [okTool('ok')] }));
    const run = await ended('ctrl');
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'ModelResponseTooLarge' });
    expect(run.status?.message).toContain('as a journal entry');
  });

  it('odd unicode and control characters in the final answer are recorded, not a failure', async ({ expect }) => {
    const KEY = '[ti-odd]';
    env.model.hostile(KEY, { kind: 'odd-unicode' });
    await createRun(env.namespace, 'odd', runSpec(KEY));
    const run = await ended('odd');
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.status?.result).toContain('emoji:🔑');
    expect(run.status?.result).toContain('rlo:\u202e');
  });

  it('an internal service\'s error body is not copied into status or Events', async ({ expect }) => {
    const KEY = '[ti-internal]';
    env.model.hostile(KEY, { kind: 'raw-error', status: 403, body: JSON.stringify({ rows: [{ email: 'carol@corp.example', salary: 123456 }] }) });
    await createRun(env.namespace, 'internal', runSpec(KEY));
    const run = await ended('internal');
    expect(succeeded(run)).toMatchObject({ reason: 'ModelPermissionDenied' });
    const visible = await everythingVisible('internal');
    expect(visible).not.toContain('carol@corp.example');
    expect(visible).not.toContain('123456');
  });
});

describe.concurrent('hostile API keys', () => {
  const keys = [
    ['newline', 'sk-ant-api03-LINEONE0123456789\nsk-ant-LINETWO0123456789'],
    ['control', 'sk-ant-api03-CTRL\u0001\u001b[31m0123456789abcdef'],
    ['unicode', 'sk-ant-api03-ÜNICODE-ключ-🔑-0123456789'],
  ] as const;
  it.for(keys)('a key with %s characters fails the run with what to fix, and appears nowhere (status, conditions, Events, debug logs)', async ([kind, key], { expect }) => {
    const name = `key-${kind}`, secret = `hostile-${kind}`;
    await createApiKeySecret(env.namespace, secret, key);
    await createRun(env.namespace, name, { model: { name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, env.model.url, { name: secret }) } }, prompt: `[ti-${name}] hi` });
    const run = await ended(name);
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'ModelAuthenticationFailed' });
    expect(run.status?.message).toContain(`Secret ${secret}`);
    expect(env.model.requests(`[ti-${name}]`)).toEqual([]);
    const visible = await everythingVisible(name);
    for (const piece of key.split(/[\u0000-\u001f]+/u).filter((p) => p.length >= 8)) expect(visible).not.toContain(piece);
  });

  it('an endpoint that echoes the key back in its error never gets it into status, Events or logs', async ({ expect }) => {
    const KEY = '[ti-echo]', apiKey = 'sk-ant-api03-ECHOEDECHOEDECHOED-0123456789';
    env.model.hostile(KEY, { kind: 'raw-error', status: 401, body: JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key ${apiKey}` } }) });
    await createApiKeySecret(env.namespace, 'echoed', apiKey);
    await createRun(env.namespace, 'echo', { model: { name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, env.model.url, { name: 'echoed' }) } }, prompt: `${KEY} hi` });
    const run = await ended('echo');
    expect(succeeded(run)).toMatchObject({ reason: 'ModelAuthenticationFailed' });
    expect(run.status?.message).toContain('invalid x-api-key');
    expect(await everythingVisible('echo')).not.toContain('ECHOEDECHOED');
  });
});

describe.concurrent('hostile tool definitions', () => {
  it('^(a+)+$ against 40 a\'s is answered InvalidInput in milliseconds; an ordinary run beside it succeeds', async ({ expect }) => {
    const KEY = '[ti-redos]', QUIET = '[ti-quiet]';
    env.model.script(KEY, [{ content: [toolUse('match', { s: `${'a'.repeat(40)}!` })] }, { content: [text('done')] }]);
    env.model.script(QUIET, [{ content: [text('quiet and fine')] }]);
    await createRun(env.namespace, 'redos', runSpec(KEY, { tools: [{
      ...okTool('match'), inputSchema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } },
    }] }));
    await createRun(env.namespace, 'quiet', runSpec(QUIET));
    const run = await ended('redos');
    expect(run.status?.phase).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ outcome: 'InvalidInput' });
    expect(toolResultsSent(env.model, KEY, 1)[0]?.content).toContain('must match pattern');
    expect((await ended('quiet')).status?.phase).toBe('Succeeded');
  });

  it('an inputSchema with a backreference fails the run with InvalidToolDefinition before any model call', async ({ expect }) => {
    const KEY = '[ti-backref]';
    await createRun(env.namespace, 'backref', runSpec(KEY, { tools: [{
      ...okTool('match'), inputSchema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a)\\1$' } } },
    }] }));
    const run = await ended('backref');
    expect(succeeded(run)).toMatchObject({ status: 'False', reason: 'InvalidToolDefinition' });
    expect(run.status?.message).toContain('tool match');
    expect(env.model.requests(KEY)).toEqual([]);
  });

  it('a pod the apiserver refuses (422) fails its step at once (PodRejected); the model is told and the run goes on', async ({ expect }) => {
    const KEY = '[ti-badpod]';
    env.model.script(KEY, [{ content: [toolUse('broken', {})] }, { content: [text('I could not use the tool.')] }]);
    await createRun(env.namespace, 'badpod', runSpec(KEY, { tools: [{ ...okTool('broken'), container: { image: ' busybox ', command: ['true'] } }] }));
    const run = await ended('badpod');
    expect(run.status?.phase).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ phase: 'Failed', outcome: 'PodRejected' });
    const [result] = toolResultsSent(env.model, KEY, 1);
    expect(result?.is_error).toBe(true);
    expect(result?.content).toContain('the cluster refused it');
  });
});
