/**
 * MCP tools in core: resolution of mcpServerRef entries (allow, prefix, clashes, waiting), the
 * approval and idempotency decisions (admin override > annotations, a run may only add
 * approval), the durable-call decisions of decide() (intent before the call, journaled result,
 * interrupted calls repeated only when idempotent, errors told apart, maxParallelTools), what
 * the model sees of non-text content, and the bounds on what discovery puts into status.
 */
import { describe, expect, it } from 'vitest';
import { agentRunSpec } from '../../src/api/agent-run.ts';
import { mcpServerSpec, type DiscoveredTool } from '../../src/api/mcp-server.ts';
import { accessRequirements } from '../../src/core/access.ts';
import { decide } from '../../src/core/decide.ts';
import { planExecution } from '../../src/core/execution-plan.ts';
import { boundDiscovery } from '../../src/core/mcp-discovery.ts';
import { cutToBytes, mcpResultText } from '../../src/core/mcp-content.ts';
import { approvalFromServer, idempotentFromServer } from '../../src/core/mcp-tools.ts';
import type { ResolvedTool } from '../../src/api/journal-entry.ts';
import type { MCPCallObservation, MCPServerObservation, Observed } from '../../src/core/observed.ts';
import { resolveTools } from '../../src/core/tools.ts';
import {
  effectTypes, effectsOf, journaledEntries, journaled, modelEntry, modelStep, observed, response, runningStatus, spec, stepOf, succeededCondition, text, toolStep, toolUse,
} from '../harness/builders.ts';

const ECHO: DiscoveredTool = { name: 'echo', description: 'Echoes back the input string', inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true } };
const DELETE: DiscoveredTool = { name: 'delete-file', inputSchema: { type: 'object' }, annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true } };
const PLAIN: DiscoveredTool = { name: 'plain', inputSchema: { type: 'object' } };

function server(tools: DiscoveredTool[] | undefined, extra: Record<string, unknown> = {}): MCPServerObservation {
  return { spec: mcpServerSpec.parse({ url: 'http://127.0.0.1:3001/mcp', ...extra }), tools };
}

const mcpEntry = (patch: Record<string, unknown> = {}) => ({ name: 'everything', mcpServerRef: { name: 'everything' }, ...patch });
const mcpSpec = (patch: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => spec({ tools: [mcpEntry(patch)], ...extra });
const servers = (s: MCPServerObservation | undefined) => new Map([['everything', s]]);

function resolved(patch: Record<string, unknown>, s: MCPServerObservation, extra: Record<string, unknown> = {}): ResolvedTool[] {
  const r = resolveTools(mcpSpec(patch, extra), new Map(), servers(s));
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.tools;
}

describe('approval and idempotency of MCP tools', () => {
  it('destructiveHint needs approval, readOnlyHint does not, no annotations count as destructive (the MCP default)', () => {
    expect(approvalFromServer(DELETE.annotations, undefined)).toBe(true);
    expect(approvalFromServer(ECHO.annotations, undefined)).toBe(false);
    expect(approvalFromServer(undefined, undefined)).toBe(true);
    expect(approvalFromServer({ readOnlyHint: false, destructiveHint: false }, undefined)).toBe(false);
  });

  it('the MCPServer\'s per-tool override wins over the hints, both ways', () => {
    expect(approvalFromServer(DELETE.annotations, { name: 'delete-file', requiresApproval: false })).toBe(false);
    expect(approvalFromServer(ECHO.annotations, { name: 'echo', requiresApproval: true })).toBe(true);
  });

  it('idempotentHint counts only when the admin trusts the server\'s hints; the override always wins', () => {
    const untrusted = mcpServerSpec.parse({ url: 'http://x/mcp' });
    const trusted = mcpServerSpec.parse({ url: 'http://x/mcp', trustHints: true });
    expect(idempotentFromServer(untrusted, ECHO.annotations, undefined)).toBe(false);
    expect(idempotentFromServer(trusted, ECHO.annotations, undefined)).toBe(true);
    expect(idempotentFromServer(trusted, ECHO.annotations, { name: 'echo', idempotent: false })).toBe(false);
    expect(idempotentFromServer(untrusted, PLAIN.annotations, { name: 'plain', idempotent: true })).toBe(true);
  });

  it('a run may add approval (requiresApproval, approvals.requiredFor) but never remove it', () => {
    const s = server([ECHO, DELETE]);
    expect(resolved({}, s).map((t) => [t.name, t.requiresApproval])).toEqual([['echo', false], ['delete-file', true]]);
    expect(resolved({ requiresApproval: true }, s).every((t) => t.requiresApproval)).toBe(true);
    expect(resolved({}, s, { approvals: { requiredFor: ['everything'] } }).every((t) => t.requiresApproval)).toBe(true);
    expect(resolved({ requiresApproval: false }, s).find((t) => t.name === 'delete-file')?.requiresApproval).toBe(true);
  });
});

describe('resolving mcpServerRef entries', () => {
  it('takes every tool, or the allowlist, named with the prefix, with the server\'s call timeout', () => {
    const s = server([ECHO, DELETE], { timeouts: { call: '90s' } });
    expect(resolved({}, s).map((t) => t.name)).toEqual(['echo', 'delete-file']);
    const [echo] = resolved({ allow: ['echo'], prefix: 'ev_' }, s);
    expect(echo).toMatchObject({ name: 'ev_echo', mcp: { server: 'everything', tool: 'echo' }, timeoutSeconds: 90, inputSchema: ECHO.inputSchema,
      description: ECHO.description, source: 'MCPServer/everything' });
    expect(echo?.container).toBeUndefined();
  });

  it('waits for a missing MCPServer and for one that has not listed its tools', () => {
    expect(resolveTools(mcpSpec(), new Map(), servers(undefined))).toEqual({ ok: false, missing: [], waiting: ['MCPServer everything'] });
    const r = resolveTools(mcpSpec(), new Map(), servers(server(undefined)));
    expect(!r.ok && r.waiting?.[0]).toContain('to list its tools');
  });

  it('refuses an allowlist naming a tool the server does not offer, a name clash, and an unusable tool', () => {
    const s = server([ECHO]);
    const missing = resolveTools(mcpSpec({ allow: ['nope'] }), new Map(), servers(s));
    expect(!missing.ok && missing.problem).toContain('allows nope, which MCPServer everything does not offer (it offers: echo)');
    const clash = spec({ tools: [mcpEntry(), { name: 'echo', container: { image: 'busybox' } }] });
    const r = resolveTools(clash, new Map(), servers(s));
    expect(!r.ok && r.problem).toContain('two tools of the run are called echo');
    const bad = resolveTools(mcpSpec(), new Map(), servers(server([{ name: 'a.b', problem: 'its name is not valid' }])));
    expect(!bad.ok && bad.problem).toContain('tool a.b: its name is not valid');
  });

  it('the run\'s creator must be allowed to use each referenced MCPServer', () => {
    const reqs = accessRequirements(mcpSpec(), []);
    expect(reqs).toContainEqual({ verb: 'use', group: 'agentrun.dev', resource: 'mcpservers', name: 'everything', why: 'tools[everything].mcpServerRef' });
  });

  it('admission: an entry uses exactly one of toolRef, container and mcpServerRef; allow and prefix only with mcpServerRef', () => {
    const base = { model: { name: 'm', endpointRef: { name: 'e' } }, prompt: 'p' };
    const parse = (tool: Record<string, unknown>) => agentRunSpec.safeParse({ ...base, tools: [tool] });
    expect(parse(mcpEntry()).success).toBe(true);
    expect(parse({ ...mcpEntry(), container: { image: 'busybox' } }).error?.issues[0]?.message).toContain('set exactly one of toolRef');
    expect(parse({ name: 'x', container: { image: 'busybox' }, prefix: 'p_' }).error?.issues[0]?.message).toContain('allow and prefix only apply');
    expect(parse({ ...mcpEntry(), description: 'x' }).error?.issues[0]?.message).toContain('takes description, inputSchema, timeout and idempotent from the MCPServer');
  });
});

// ---- decide() with MCP tool steps ----

const ECHO_INPUT = { message: 'hello' };
const TOOLS = resolved({}, server([ECHO, DELETE]));
const ECHO_TOOL = TOOLS[0];
if (!ECHO_TOOL) throw new Error('echo resolves');
const IDEMPOTENT_ECHO: ResolvedTool = { ...ECHO_TOOL, idempotent: true };
const turn1 = modelEntry(1, 1, response('tool_use', [text('calling'), toolUse('toolu_1', 'echo', ECHO_INPUT)]));

function mcpObserved(step: ReturnType<typeof toolStep>, calls: Record<number, MCPCallObservation> = {}, tools: ResolvedTool[] = TOOLS,
  extra: Partial<Observed> = {}): Observed {
  const o = observed({ spec: { tools: [mcpEntry()] }, status: runningStatus([journaled(modelStep(1, 1), turn1), step]), journal: [turn1], toolSnapshot: tools });
  return { ...o, mcpServers: servers(server([ECHO, DELETE])), mcpCalls: new Map(Object.entries(calls).map(([k, v]) => [Number(k), v])), ...extra };
}

describe('decide() and MCP calls', () => {
  it('records the intent (Running, server named) and asks for the call in the same decision; no pod', () => {
    const d = decide(mcpObserved(toolStep(2, 1, 'echo', 'toolu_1')));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', mcpServer: 'everything', attempt: 1 });
    expect(effectsOf(d, 'startMCPCall')).toEqual([{ type: 'startMCPCall', stepId: 2, attempt: 1, server: 'everything', tool: 'echo',
      input: ECHO_INPUT, timeoutMs: 60_000, maxOutputBytes: 65_536 }]);
    expect(effectsOf(d, 'createPod')).toEqual([]);
  });

  it('waits while the call is in flight, then journals its result (with the server) before status says it is done', () => {
    const running = toolStep(2, 1, 'echo', 'toolu_1', { phase: 'Running', mcpServer: 'everything', startedAt: '2030-01-01T00:00:00.000Z' });
    const waiting = decide(mcpObserved(running, { 2: { state: 'in-flight', attempt: 1 } }));
    expect(stepOf(waiting, 2).phase).toBe('Running');
    expect(waiting.effects.filter((e) => e.type === 'startMCPCall' || e.type === 'writeJournal')).toEqual([]);

    const done = decide(mcpObserved(running, { 2: { state: 'done', attempt: 1, result: { kind: 'result', text: 'Echo: hello', truncated: false } } }));
    expect(stepOf(done, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed' });
    expect(journaledEntries(done)).toContainEqual(expect.objectContaining({ kind: 'ToolResult', stepId: 2, output: 'Echo: hello', isError: false,
      mcp: { server: 'everything', tool: 'echo' } }));
  });

  it('tells a tool error (isError) from a protocol error, a vanished tool and a timeout', () => {
    const running = toolStep(2, 1, 'echo', 'toolu_1', { phase: 'Running', mcpServer: 'everything' });
    const outcome = (kind: 'tool-error' | 'protocol-error' | 'unknown-tool' | 'timeout', t = 'boom') => {
      const d = decide(mcpObserved(running, { 2: { state: 'done', attempt: 1, result: { kind, text: t, truncated: false } } }));
      const entry = journaledEntries(d).find((e) => e.kind === 'ToolResult');
      return [stepOf(d, 2).outcome, entry?.kind === 'ToolResult' ? entry.isError : undefined, entry?.kind === 'ToolResult' ? entry.output : ''];
    };
    expect(outcome('tool-error')).toEqual(['ToolError', true, 'boom']);
    expect(outcome('protocol-error')[0]).toBe('MCPProtocolError');
    expect(outcome('unknown-tool', 'Tool echo not found')).toEqual(['ToolUnavailable', true, expect.stringContaining('no longer offers the tool echo')]);
    expect(outcome('timeout')).toEqual(['TimedOut', true, expect.stringContaining('did not finish within its timeout (60s)')]);
  });

  it('after a crash mid-call (Running, no call here): a tool not idempotent is reported Interrupted, never called again', () => {
    const d = decide(mcpObserved(toolStep(2, 1, 'echo', 'toolu_1', { phase: 'Running', mcpServer: 'everything' })));
    expect(effectsOf(d, 'startMCPCall')).toEqual([]);
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted', attempt: 1 });
    const entry = journaledEntries(d).find((e) => e.kind === 'ToolResult');
    expect(entry?.kind === 'ToolResult' && entry.isError).toBe(true);
    expect(entry?.kind === 'ToolResult' ? entry.output : '').toContain('was interrupted');
  });

  it('after a crash mid-call an idempotent tool is called again as the next attempt, until its retries are used up', () => {
    const d = decide(mcpObserved(toolStep(2, 1, 'echo', 'toolu_1', { phase: 'Running', mcpServer: 'everything' }), {}, [IDEMPOTENT_ECHO]));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 2 });
    expect(effectsOf(d, 'startMCPCall').map((e) => e.attempt)).toEqual([2]);
    const last = decide(mcpObserved(toolStep(2, 1, 'echo', 'toolu_1', { phase: 'Running', attempt: 3 }), {}, [IDEMPOTENT_ECHO]));
    expect(stepOf(last, 2).outcome).toBe('Interrupted');
  });

  it('a call that never reached the server is retried later whatever the tool; a broken one only when idempotent', () => {
    const running = toolStep(2, 1, 'echo', 'toolu_1', { phase: 'Running', mcpServer: 'everything' });
    const notSent = decide(mcpObserved(running, { 2: { state: 'done', attempt: 1, result: { kind: 'not-sent', text: 'ECONNREFUSED', truncated: false } } }));
    expect(stepOf(notSent, 2)).toMatchObject({ phase: 'Running', attempt: 2, retry: { errorClass: 'MCPNotSent' } });
    expect(effectsOf(notSent, 'startMCPCall')).toEqual([]);
    const broken = decide(mcpObserved(running, { 2: { state: 'done', attempt: 1, result: { kind: 'transport-error', text: 'closed', truncated: false } } }));
    expect(stepOf(broken, 2)).toMatchObject({ phase: 'Failed', outcome: 'MCPUnreachable' });
  });

  it('honours limits.maxParallelTools', () => {
    const uses = [toolUse('t1', 'echo', ECHO_INPUT), toolUse('t2', 'echo', ECHO_INPUT), toolUse('t3', 'echo', ECHO_INPUT)];
    const entry = modelEntry(1, 1, response('tool_use', uses));
    const steps = ['t1', 't2', 't3'].map((id, i) => toolStep(i + 2, 1, 'echo', id));
    const o = observed({ spec: { tools: [mcpEntry()], limits: { maxParallelTools: 2 } }, status: runningStatus([journaled(modelStep(1, 1), entry), ...steps]),
      journal: [entry], toolSnapshot: TOOLS });
    const d = decide({ ...o, mcpCalls: new Map() });
    expect(effectsOf(d, 'startMCPCall').map((e) => e.stepId)).toEqual([2, 3]);
    expect(stepOf(d, 4).phase).toBe('Pending');
  });
});

describe('MCP calls that start with the model answer (its journal entry is their intent)', () => {
  const uses = [toolUse('t1', 'echo', ECHO_INPUT), toolUse('t2', 'echo', ECHO_INPUT)];
  const answer = response('tool_use', [text('calling'), ...uses]);
  const oneAtATime = { tools: [mcpEntry()], limits: { maxParallelTools: 1 } };
  /** The model step's call just returned `answer`: this decision journals it. */
  const fresh = () => {
    const o = observed({ spec: oneAtATime, status: runningStatus([modelStep(1, 1)]), toolSnapshot: TOOLS,
      modelCalls: { 1: { state: 'succeeded', attempt: 1, response: answer } } });
    return decide({ ...o, mcpServers: servers(server([ECHO, DELETE])), mcpCalls: new Map() });
  };
  /** The answer is journaled, naming `started`, but status never recorded it (the operator stopped). */
  const recovered = (started: number[] | undefined, calls: Record<number, MCPCallObservation> = {}, tools = TOOLS,
    extraSpec: Record<string, unknown> = {}) => {
    const entry = { ...modelEntry(1, 1, answer), ...(started ? { mcpCallsStarted: started } : {}) };
    const o = observed({ spec: { ...oneAtATime, ...extraSpec }, status: runningStatus([modelStep(1, 1)]), journal: [entry], toolSnapshot: tools });
    return decide({ ...o, mcpServers: servers(server([ECHO, DELETE])),
      mcpCalls: new Map(Object.entries(calls).map(([k, v]) => [Number(k), v])) });
  };

  it('the first call starts beside the status write, and the answer names it; a step that waits for a slot does not', () => {
    const d = fresh();
    expect(effectsOf(d, 'startMCPCall')).toEqual([expect.objectContaining({ stepId: 2, attempt: 1, withAnswer: true })]);
    const plan = planExecution(d.effects);
    expect(plan.start.map((e) => e.type)).toEqual(['startMCPCall']);
    expect(plan.journal.map((e) => e.entry)).toEqual([expect.objectContaining({ kind: 'ModelResponse', stepId: 1, mcpCallsStarted: [2] })]);
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', mcpServer: 'everything' });
    expect(stepOf(d, 3).phase).toBe('Pending');
    // The status records the digest of the entry as written (with the list).
    expect(stepOf(d, 1).journal?.digest).toBe(plan.journal[0]?.digest);
    // Everything this status says, the entry says: it may wait for the call's result to be written.
    expect(plan.statusMayWait).toBe(true);
  });

  it('a run stopped for its size in this decision starts no MCP call (nothing it meant to start may start)', () => {
    const o = observed({ spec: oneAtATime, status: runningStatus([modelStep(1, 1)]), toolSnapshot: TOOLS,
      modelCalls: { 1: { state: 'succeeded', attempt: 1, response: answer } }, statusByteBudget: 900 });
    const d = decide({ ...o, mcpServers: servers(server([ECHO, DELETE])), mcpCalls: new Map() });
    expect(succeededCondition(d).reason).toBe('StatusTooLarge');
    expect(effectTypes(d)).not.toContain('startMCPCall');
    expect(journaledEntries(d).map((e) => e.kind)).toEqual(['ModelResponse']);
  });

  it('a later start (a slot freed) keeps its intent in status first', () => {
    const entry = { ...modelEntry(1, 1, answer), mcpCallsStarted: [2] };
    const done = journaled(toolStep(2, 1, 'echo', 't1'), { kind: 'ToolResult', stepId: 2, tool: 'echo', toolUseId: 't1', attempt: 1, output: 'Echo: hello',
      isError: false, outcome: 'Completed', truncated: false });
    const o = observed({ spec: oneAtATime, status: runningStatus([journaled(modelStep(1, 1), entry), done, toolStep(3, 1, 'echo', 't2')]),
      journal: [entry], toolSnapshot: TOOLS });
    const d = decide({ ...o, mcpServers: servers(server([ECHO, DELETE])), mcpCalls: new Map() });
    const [call] = effectsOf(d, 'startMCPCall');
    expect(call).toMatchObject({ stepId: 3 });
    expect(call?.withAnswer).toBeUndefined();
    expect(planExecution(d.effects).settle.map((e) => e.type)).toContain('startMCPCall');
  });

  it('read back after a crash: a named call not idempotent is reported Interrupted, never made again; an unnamed one starts', () => {
    const d = recovered([2]);
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted' });
    expect(journaledEntries(d).find((e) => e.kind === 'ToolResult' && e.stepId === 2)).toMatchObject({ isError: true,
      output: expect.stringContaining('was interrupted') as string });
    // Step 3 was waiting for the slot, not called: it starts now, with its intent in status first.
    expect(effectsOf(d, 'startMCPCall')).toEqual([expect.objectContaining({ stepId: 3, attempt: 1 })]);
    expect(effectsOf(d, 'startMCPCall')[0]?.withAnswer).toBeUndefined();
    // Even a suspended run does not leave a call that may have been made looking unstarted.
    expect(stepOf(recovered([2], {}, TOOLS, { suspend: true }), 2).outcome).toBe('Interrupted');
  });

  it('read back after a crash: a named call whose result was journaled (its answer\'s status waited) is that result, not called again', () => {
    const entry = { ...modelEntry(1, 1, answer), mcpCallsStarted: [2] };
    const result = { kind: 'ToolResult', stepId: 2, tool: 'echo', toolUseId: 't1', attempt: 1, output: 'Echo: hello', isError: false,
      outcome: 'Completed', truncated: false, mcp: { server: 'everything', tool: 'echo' } } as const;
    const o = observed({ spec: oneAtATime, status: runningStatus([modelStep(1, 1)]), journal: [entry, result], toolSnapshot: TOOLS });
    const d = decide({ ...o, mcpServers: servers(server([ECHO, DELETE])), mcpCalls: new Map() });
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Succeeded', outcome: 'Completed', attempt: 1, mcpServer: 'everything',
      message: 'MCP everything/echo: Completed' });
    expect(journaledEntries(d).filter((e) => e.kind === 'ToolResult')).toEqual([]);
    // Step 3 waited for the slot step 2 held: it starts now.
    expect(effectsOf(d, 'startMCPCall').map((e) => e.stepId)).toEqual([3]);
  });

  it('read back after a crash with status several decisions behind: each journaled answer and result, then one new call', () => {
    // Stored status: only model step 1, Running. Journaled: its answer (call 2), call 2's result, the next answer (call 4), its result.
    const first = { ...modelEntry(1, 1, response('tool_use', [toolUse('t1', 'echo', ECHO_INPUT)])), mcpCallsStarted: [2] };
    const second = { ...modelEntry(3, 2, response('tool_use', [toolUse('t2', 'echo', ECHO_INPUT)])), mcpCallsStarted: [4] };
    const result = (stepId: number, toolUseId: string) => ({ kind: 'ToolResult', stepId, tool: 'echo', toolUseId, attempt: 1,
      output: `Echo ${toolUseId}`, isError: false, outcome: 'Completed', truncated: false, mcp: { server: 'everything', tool: 'echo' } }) as const;
    const o = observed({ spec: oneAtATime, status: runningStatus([modelStep(1, 1)]), journal: [first, result(2, 't1'), second, result(4, 't2')],
      toolSnapshot: TOOLS });
    const d = decide({ ...o, mcpServers: servers(server([ECHO, DELETE])), mcpCalls: new Map() });
    expect(d.status.steps?.map((st) => [st.id, st.kind, st.phase])).toEqual([[1, 'Model', 'Succeeded'], [2, 'Tool', 'Succeeded'],
      [3, 'Model', 'Succeeded'], [4, 'Tool', 'Succeeded'], [5, 'Model', 'Running']]);
    // Nothing journaled is written or asked for again: one model call, for step 5, with both results.
    expect(journaledEntries(d)).toEqual([]);
    expect(effectsOf(d, 'startMCPCall')).toEqual([]);
    const calls = effectsOf(d, 'startModelCall');
    expect(calls.map((c) => c.stepId)).toEqual([5]);
    expect(JSON.stringify(calls[0]?.request.messages)).toContain('Echo t2');
    expect(d.status.usage?.totalTokens).toBe(240);
  });

  it('read back after a crash: a named idempotent call is made again as the next attempt', () => {
    const d = recovered([2], {}, [IDEMPOTENT_ECHO]);
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 2 });
    expect(effectsOf(d, 'startMCPCall').map((e) => [e.stepId, e.attempt])).toEqual([[2, 2]]);
  });

  it('read back by the process that made the call (its status write was refused): the call in flight is adopted', () => {
    const d = recovered([2], { 2: { state: 'in-flight', attempt: 1 } });
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 1 });
    expect(effectsOf(d, 'startMCPCall')).toEqual([]);
    expect(journaledEntries(d).filter((e) => e.kind === 'ToolResult')).toEqual([]);
  });

  it('an answer journaled by an operator that named no calls (before this rule) starts them as before', () => {
    const d = recovered(undefined);
    expect(effectsOf(d, 'startMCPCall').map((e) => e.stepId)).toEqual([2]);
  });
});

describe('what the model sees of a call\'s result', () => {
  it('passes text, summarises images and binary resources with a note, keeps resource text and links', () => {
    const r = mcpResultText({ content: [
      { type: 'text', text: 'Here:' },
      { type: 'image', mimeType: 'image/png', data: 'AAAA' },
      { type: 'resource', resource: { uri: 'file:///a.txt', text: 'hello' } },
      { type: 'resource', resource: { uri: 'file:///b.gz', mimeType: 'application/gzip', blob: 'AAAAAAAA' } },
      { type: 'resource_link', uri: 'file:///c', name: 'c' },
    ] }, 10_000);
    expect(r.text).toBe('Here:\n[image content (image/png, 3 bytes) was returned by the tool; this operator passes only text to the model, so it was left out]\n'
      + '[resource file:///a.txt]\nhello\n[resource file:///b.gz (application/gzip, 6 bytes) was returned by the tool; binary content is not passed to the model, so it was left out]\n'
      + '[resource link: file:///c (c)]');
  });

  it('uses structuredContent when there is no content, and cuts at maxToolOutputBytes in UTF-8 bytes, saying so', () => {
    expect(mcpResultText({ content: [], structuredContent: { t: 1 } }, 100).text).toBe('{"t":1}');
    const cut = cutToBytes('ééééé', 5);
    expect(cut).toEqual({ text: 'éé\n[output truncated to the first 5 bytes]', truncated: true });
  });
});

describe('discovered tools in MCPServer status', () => {
  it('bounds descriptions, keeps unusable tools with a problem, and caps the count', () => {
    const listed = Array.from({ length: 130 }, (_, i) => ({ name: `t${i}`, inputSchema: { type: 'object' } }));
    const d = boundDiscovery([{ name: 'bad name', inputSchema: { type: 'object' } }, { name: 'long', description: 'x'.repeat(5000), inputSchema: { type: 'object' } },
      { name: 'noschema', inputSchema: { type: 'string' } }, ...listed]);
    expect(d.total).toBe(133);
    expect(d.tools).toHaveLength(128);
    expect(d.tools[0]?.problem).toContain('its name is not 1-64 letters');
    expect(d.tools[1]?.description).toMatch(/ \[description truncated\]$/);
    expect(d.tools[1]?.description?.length).toBeLessThan(2100);
    expect(d.tools[2]?.problem).toContain('not a JSON object schema');
    expect(d.notes.join('; ')).toContain('the server lists 133 tools; only the first 128 are kept');
  });
});
