/**
 * What a tenant writes (a tool's inputSchema) and what a model answers (tool_use blocks, inputs,
 * stop reasons) cannot stall the operator or make it attempt a write the apiserver refuses: each
 * case is decided in milliseconds, and the status it leads to is one the CRD accepts.
 */
import { describe, expect, it } from 'vitest';
import { agentRunStatus } from '../../src/api/agent-run.ts';
import { MAX_JOURNAL_ENTRY_BYTES, MAX_TOOL_USES_PER_RESPONSE } from '../../src/core/caps.ts';
import { decide } from '../../src/core/decide.ts';
import type { Decision } from '../../src/core/effects.ts';
import { serializeEntry, type ToolResultEntry } from '../../src/api/journal-entry.ts';
import { toolPodName } from '../../src/core/naming.ts';
import { MAX_TOOL_INPUT_BYTES, toolInputProblem, toolSchemaProblem, utf8Bytes } from '../../src/core/tool-input.ts';
import {
  at, effectsOf, effectTypes, iso, journaled, journaledEntries, modelEntry, modelStep, observed, pod, response, RUN_NAME, runningStatus,
  stepOf, succeededCondition, text, toolStep, toolUse, call, type ObservedInit,
} from '../harness/builders.ts';

const CATASTROPHIC = { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } }, required: ['s'] };
const shellWith = (inputSchema: Record<string, unknown>) => ({
  tools: [{ name: 'shell', description: 'Run a command.', inputSchema, container: { image: 'busybox', command: ['sh', '-c'] } }],
});

/** The first model call of a started run answered `r`. */
function answered(r: ReturnType<typeof response>, extra: ObservedInit = {}): ObservedInit {
  return { status: runningStatus([modelStep(1, 1)]), now: at(10), modelCalls: { 1: call.succeeded(r) }, ...extra };
}

/** The status the CRD would accept: everything decide() writes must pass it. */
function expectWritable(d: Decision): void {
  const parsed = agentRunStatus.safeParse(d.status);
  expect(parsed.success, parsed.error?.message).toBe(true);
  for (const e of journaledEntries(d)) expect(utf8Bytes(serializeEntry(e))).toBeLessThanOrEqual(MAX_JOURNAL_ENTRY_BYTES);
}

/**
 * The exponential cases below take hours (2^40 steps) on an unguarded engine; linear code takes
 * milliseconds. The bound sits between the two with room for a loaded CI machine: it fails on
 * the attack, never on a slow neighbour.
 */
const FAR_BELOW_THE_ATTACK_MS = 10_000;

describe('JSON Schema patterns run in linear time', () => {
  it('^(a+)+$ against 40 a\'s and a "!" is decided in milliseconds (a backtracking engine takes 2^40 steps)', () => {
    const input = { s: `${'a'.repeat(40)}!` };
    const started = performance.now();
    const d = decide(observed(answered(response('tool_use', [toolUse('toolu_1', 'shell', input)]), { spec: shellWith(CATASTROPHIC) })));
    const ms = performance.now() - started;
    expect(ms).toBeLessThan(FAR_BELOW_THE_ATTACK_MS);
    const result = journaledEntries(d).find((e): e is ToolResultEntry => e.kind === 'ToolResult');
    expect(result).toMatchObject({ outcome: 'InvalidInput', isError: true });
    expect(result?.output).toContain('must match pattern "^(a+)+$"');
    expect(effectsOf(d, 'createPod')).toEqual([]);
  });

  it('the same pattern over 100,000 characters, and as a patternProperties key, stays fast', () => {
    const started = performance.now();
    expect(toolInputProblem(CATASTROPHIC, { s: `${'a'.repeat(100_000)}!` })).toContain('must match pattern');
    const keyed = { type: 'object', patternProperties: { '^(a+)+$': { type: 'number' } } };
    expect(toolInputProblem(keyed, { ['a'.repeat(40)]: 'x' })).toContain('must be number');
    expect(toolInputProblem(keyed, { [`${'a'.repeat(40)}!`]: 'x' })).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(FAR_BELOW_THE_ATTACK_MS);
  });

  it('anyOf recursing twice over 40 levels of input (2^40 evaluations) stops at the step budget in milliseconds', () => {
    const schema = { type: 'object', properties: { a: { $ref: '#/$defs/n' } }, $defs: { n: { anyOf: [{ type: 'array', items: { $ref: '#/$defs/n' } }, { type: 'array', items: { $ref: '#/$defs/n' } }] } } };
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = [deep];
    const started = performance.now();
    expect(toolInputProblem(schema, { a: deep })).toContain('schema evaluations');
    expect(performance.now() - started).toBeLessThan(FAR_BELOW_THE_ATTACK_MS);
    expect(toolInputProblem(schema, { a: [[[]]] })).toBeUndefined();
  });

  it('patterns still mean what they say: distinct patterns are kept apart, unicode classes work', () => {
    const two = { type: 'object', properties: { a: { type: 'string', pattern: '^a+$' }, b: { type: 'string', pattern: '^\\p{L}+$' } } };
    expect(toolInputProblem(two, { a: 'aaa', b: 'héllo' })).toBeUndefined();
    expect(toolInputProblem(two, { a: 'héllo', b: 'aaa' })).toContain('input/a must match pattern');
  });

  it('uniqueItems over 16,000 distinct arrays is linear (ajv\'s pairwise comparison takes seconds)', () => {
    const schema = { type: 'object', properties: { l: { type: 'array', uniqueItems: true } } };
    const started = performance.now();
    // Near the 128 KiB input cap. Pairwise: ~4 s here (2 s at 12,000); linear: ~70 ms.
    expect(toolInputProblem(schema, { l: Array.from({ length: 16_000 }, (_, i) => [i]) })).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(toolInputProblem(schema, { l: [{ a: 1, b: 2 }, { b: 2, a: 1 }] })).toContain('must NOT have duplicate items');
  });
});

describe('invalid tool definitions fail the run before the model is called', () => {
  it.each([
    ['a backreference, which a linear-time engine cannot run', { type: 'object', properties: { s: { type: 'string', pattern: '(a)\\1' } } }, 'invalid escape sequence'],
    ['lookahead', { type: 'object', patternProperties: { '^x(?=y)': { type: 'string' } } }, 'unsupported Perl syntax'],
    ['an unknown type', { type: 'object', properties: { s: { type: 'strin' } } }, 'schema is invalid'],
    ['required that is not an array', { type: 'object', required: 'x' }, 'data/required must be array'],
  ])('%s → Failed InvalidToolDefinition naming the tool and the error', (_name, inputSchema, says) => {
    const d = decide(observed({ spec: shellWith(inputSchema) }));
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: 'InvalidToolDefinition' });
    expect(d.status.message).toContain('tool shell');
    expect(d.status.message).toContain(says);
    expect(effectTypes(d)).not.toContain('startModelCall');
    expect(journaledEntries(d)).toEqual([]);
    expectWritable(d);
  });

  it('a schema that is not an object schema is refused at admission, and again when tools resolve (objects admitted before)', () => {
    expect(() => observed({ spec: shellWith({ type: 'string' }) })).toThrow(/inputSchema[\s\S]*expected/u);
    expect(toolSchemaProblem({ type: 'string' })).toContain('"type" must be "object"');
  });

  it('a broken schema in an AgentTool names the AgentTool', () => {
    const d = decide(observed({
      spec: { tools: [{ name: 'fetch', toolRef: { name: 'web-fetch' } }] },
      agentTools: { 'web-fetch': { inputSchema: { type: 'object', properties: { u: { type: 'string', pattern: '(?<=a)b' } } }, container: { image: 'curl' } } },
    }));
    expect(succeededCondition(d).reason).toBe('InvalidToolDefinition');
    expect(d.status.message).toContain('AgentTool web-fetch (tool fetch)');
  });
});

describe('caps, checked before anything is written', () => {
  it('tool input is measured in UTF-8 bytes: 50,000 "€" (150,000 bytes) is refused, no pod', () => {
    const input = { cmd: '€'.repeat(50_000) };
    expect(JSON.stringify(input).length).toBeLessThan(MAX_TOOL_INPUT_BYTES); // what the old check counted
    const d = decide(observed(answered(response('tool_use', [toolUse('toolu_1', 'shell', input)]))));
    const result = journaledEntries(d).find((e): e is ToolResultEntry => e.kind === 'ToolResult');
    expect(result).toMatchObject({ outcome: 'InvalidInput' });
    expect(result?.output).toContain('bytes (UTF-8)');
    expect(effectsOf(d, 'createPod')).toEqual([]);
  });

  it(`more than ${MAX_TOOL_USES_PER_RESPONSE} tool_use blocks in one response → Failed ModelResponseInvalid, nothing journaled`, () => {
    const uses = Array.from({ length: 500 }, (_, i) => toolUse(`toolu_${i}`, 'shell', { cmd: 'true' }));
    const d = decide(observed(answered(response('tool_use', uses))));
    expect(succeededCondition(d).reason).toBe('ModelResponseInvalid');
    expect(d.status.message).toContain('500 tool calls');
    expect(journaledEntries(d)).toEqual([]);
    expect(d.status.steps).toHaveLength(1);
    expectWritable(d);
  });

  it.each([
    ['an id longer than status can hold', toolUse('x'.repeat(200), 'shell', { cmd: 'true' }), 'id'],
    ['a name that is not a tool name', toolUse('toolu_1', `shell\n${'x'.repeat(100)}`, { cmd: 'true' }), 'name'],
  ])('a tool_use block with %s → Failed ModelResponseInvalid', (_name, use, says) => {
    const d = decide(observed(answered(response('tool_use', [use]))));
    expect(succeededCondition(d).reason).toBe('ModelResponseInvalid');
    expect(d.status.message).toContain(says);
    expectWritable(d);
  });

  it('a response nested 10,000 levels deep → Failed ModelResponseInvalid, nothing throws', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const d = decide(observed(answered(response('tool_use', [toolUse('toolu_1', 'shell', { cmd: deep })]))));
    expect(succeededCondition(d).reason).toBe('ModelResponseInvalid');
    expect(d.status.message).toContain('deeper than');
    expectWritable(d);
  });

  it('a response whose journal entry would exceed 1,000,000 bytes after encoding → Failed ModelResponseTooLarge', () => {
    // 400,000 control characters are 400 KB raw and 2.4 MB as JSON.
    const d = decide(observed(answered(response('end_turn', [text('\u0001'.repeat(400_000))]))));
    expect(succeededCondition(d).reason).toBe('ModelResponseTooLarge');
    expect(d.status.message).toContain('Lower spec.model.maxTokens');
    expect(journaledEntries(d)).toEqual([]);
    expectWritable(d);
  });

  it('a stop_reason longer than status can hold is cut, and the run says what happened', () => {
    const d = decide(observed(answered(response(`weird_${'z'.repeat(5000)}`, [text('hi')]))));
    expect(succeededCondition(d).reason).toBe('UnexpectedStopReason');
    expect(stepOf(d, 1).stopReason?.length).toBeLessThanOrEqual(64);
    expectWritable(d);
  });

  it('tool output of control characters is cut so its journal entry fits after encoding; the model is told', () => {
    const use = toolUse('toolu_1', 'shell', { cmd: 'cat /dev/zero' });
    const entry = modelEntry(1, 1, response('tool_use', [use]));
    const podName = toolPodName(RUN_NAME, 2, 1);
    const d = decide(observed({
      spec: { limits: { maxToolOutputBytes: 786_432 } },
      status: runningStatus([journaled(modelStep(1, 1), entry), toolStep(2, 1, 'shell', 'toolu_1', { phase: 'Running', podName, startedAt: iso(at(1)) })]),
      journal: [entry],
      pods: [pod.exited(podName, 0, at(5))],
      toolOutputs: { 2: { ok: true, text: '\u0000'.repeat(786_432), truncated: false } },
      now: at(6),
    }));
    const result = journaledEntries(d).find((e): e is ToolResultEntry => e.kind === 'ToolResult');
    expect(result?.truncated).toBe(true);
    expect(result?.output).toContain('[output cut: its JSON encoding exceeded');
    expect(utf8Bytes(serializeEntry(result as ToolResultEntry))).toBeGreaterThan(MAX_JOURNAL_ENTRY_BYTES - 100);
    expectWritable(d);
  });
});

describe('a write the apiserver refused (413/422) is never retried', () => {
  it('a refused journal entry or status ends the run at once (WriteRejected), starting nothing', () => {
    const o = observed(answered(response('tool_use', [toolUse('toolu_1', 'shell', { cmd: 'true' })])));
    const d = decide({ ...o, writeRejected: { what: 'a journal entry', message: '422: ConfigMap "research-j1" is invalid: []: Too long: must have at most 1048576 bytes' } });
    expect(d.status.phase).toBe('Failed');
    expect(succeededCondition(d)).toMatchObject({ status: 'False', reason: 'WriteRejected' });
    expect(d.status.message).toContain('The apiserver refused a journal entry (422: ConfigMap');
    expect(effectTypes(d).filter((t) => t === 'writeJournal' || t === 'createPod' || t === 'startModelCall')).toEqual([]);
    expectWritable(d);
  });

  it('a refused tool pod fails its step (PodRejected) and the model is told; it is not created again', () => {
    const use = toolUse('toolu_1', 'shell', { cmd: 'true' });
    const entry = modelEntry(1, 1, response('tool_use', [use]));
    const podName = toolPodName(RUN_NAME, 2, 1);
    const o = observed({
      status: runningStatus([journaled(modelStep(1, 1), entry), toolStep(2, 1, 'shell', 'toolu_1', { phase: 'Running', podName, startedAt: iso(at(1)) })]),
      journal: [entry], now: at(2),
    });
    const d = decide({ ...o, rejectedPods: new Map([[podName, '422: Pod "x" is invalid: spec.containers[0].image: Invalid value']]) });
    const result = journaledEntries(d).find((e): e is ToolResultEntry => e.kind === 'ToolResult');
    expect(result).toMatchObject({ isError: true, outcome: 'PodRejected' });
    expect(result?.output).toContain('the cluster refused it (422: Pod');
    expect(effectsOf(d, 'createPod')).toEqual([]);
    expect(stepOf(d, 2).phase).toBe('Failed');
    expectWritable(d);
  });
});

describe('one run cannot send everything at once', () => {
  it('big tool results are recorded a few per reconcile, the rest right after (requeued at once behind the other runs)', () => {
    const uses = Array.from({ length: 6 }, (_, i) => toolUse(`toolu_${i}`, 'shell', { cmd: 'spew' }));
    const entry = modelEntry(1, 1, response('tool_use', uses));
    const steps = uses.map((_, i) => toolStep(i + 2, 1, 'shell', `toolu_${i}`, { phase: 'Running', podName: toolPodName(RUN_NAME, i + 2, 1), startedAt: iso(at(1)) }));
    const o = observed({
      spec: { limits: { maxToolOutputBytes: 786_432, maxParallelTools: 8 } },
      status: runningStatus([journaled(modelStep(1, 1), entry), ...steps]),
      journal: [entry], now: at(6),
      pods: steps.map((s) => pod.exited(s.podName ?? '', 0, at(5))),
      toolOutputs: Object.fromEntries(steps.map((s) => [s.id, { ok: true as const, text: '\u0001'.repeat(786_432), truncated: false }])),
    });
    const d = decide(o);
    const recorded = journaledEntries(d).filter((e) => e.kind === 'ToolResult');
    expect(recorded.length).toBeGreaterThanOrEqual(1);
    expect(recorded.length).toBeLessThan(6);
    expect(d.requeueAfterMs).toBe(0);
    expectWritable(d);
  });

  it('a run allowed 32 parallel tools starts 8 pods per reconcile, the rest right after', () => {
    const uses = Array.from({ length: 20 }, (_, i) => toolUse(`toolu_${i}`, 'shell', { cmd: 'true' }));
    const d = decide(observed(answered(response('tool_use', uses), { spec: { limits: { maxParallelTools: 32 } } })));
    expect(effectsOf(d, 'createPod')).toHaveLength(8);
    expect(d.requeueAfterMs).toBe(0);
    expect(d.status.steps?.filter((s) => s.kind === 'Tool' && s.phase === 'Pending')).toHaveLength(12);
  });
});
