/**
 * The pure parts of `npm run dev`: the one change it (and the examples test) makes to an example,
 * and the scripted demo agent. The whole stack is exercised by test/integration/quickstart.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseURLOnlyDiff, parseManifest, withModelBaseURL } from '../../scripts/dev/manifests.ts';
import { demoAgent, toolOutcomes } from '../../scripts/dev/demo-agent.ts';

const root = join(import.meta.dirname, '..', '..');
const URL = 'http://127.0.0.1:4242';

describe('withModelBaseURL', () => {
  it('sets spec.baseURL on every ModelEndpoint and changes nothing else', async () => {
    const original = await readFile(join(root, 'deploy', 'examples', 'model-endpoint.yaml'), 'utf8');
    const patched = withModelBaseURL(original, URL);
    const docs = parseManifest(patched) as { kind: string; spec?: { baseURL?: string } }[];
    expect(docs.map((d) => [d.kind, d.spec?.baseURL])).toEqual([['ModelEndpoint', URL], ['Role', undefined]]);
    expect(baseURLOnlyDiff(original, patched)).toEqual([]);
    const runs = await readFile(join(root, 'deploy', 'examples', 'tool-library.yaml'), 'utf8');
    expect(baseURLOnlyDiff(runs, withModelBaseURL(runs, URL))).toEqual([]);
  });

  it('baseURLOnlyDiff reports any other difference', async () => {
    const original = await readFile(join(root, 'deploy', 'examples', 'model-endpoint.yaml'), 'utf8');
    const tampered = withModelBaseURL(original, URL).replace('maxTokens: 8192', 'maxTokens: 9000');
    expect(baseURLOnlyDiff(original, tampered)).toEqual(['object 0 (ModelEndpoint) changed beyond ModelEndpoint spec.baseURL']);
  });
});

const tools = [{ name: 'clock' }, { name: 'host_info' }, { name: 'run_shell' }];
const req = (turnIndex: number, messages: unknown[] = []) => ({ scriptKey: '(default)', turnIndex, body: { tools, messages }, toolResults: [] });

describe('the demo agent (the scripted stand-in of npm run dev)', () => {
  it('calls clock and host_info together, then run_shell uptime, then summarises what they printed', () => {
    expect(demoAgent(req(0)).content.filter((b) => b.type === 'tool_use').map((b) => b.name)).toEqual(['clock', 'host_info']);
    expect(demoAgent(req(1)).content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'run_shell', input: { command: 'uptime' } });
    const messages = [
      { role: 'user', content: 'What time is it?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'clock', input: {} }, { type: 'tool_use', id: 'b', name: 'host_info', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'a', content: '2030-01-01T00:00:00Z\n' }, { type: 'tool_result', tool_use_id: 'b', content: 'Linux 6.1 x86_64, 2 CPUs' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'run_shell', input: { command: 'uptime' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c', is_error: true, content: 'Error: The user bob rejected this tool call: not now. It was not run.' }] },
    ];
    expect(toolOutcomes({ messages }).get('run_shell')?.isError).toBe(true);
    expect(demoAgent(req(2, messages)).content).toEqual([{ type: 'text',
      text: 'It is 2030-01-01T00:00:00Z on Linux 6.1 x86_64, 2 CPUs. I did not get the uptime: The user bob rejected this tool call: not now. It was not run.' }]);
  });

  it('answers any other run once, saying it is not a model', () => {
    const turn = demoAgent({ scriptKey: '(default)', turnIndex: 0, body: { tools: [{ name: 'web_fetch' }], messages: [] }, toolResults: [] });
    expect(turn.content).toHaveLength(1);
    expect(turn.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('not a real model') as unknown });
  });
});
