/**
 * MCP Tasks in core: which tools are called as tasks (resolved once at the run's start), the
 * durable order (the created task's handle is journaled before it is polled), and the decisions
 * after a restart: a journaled handle of the current attempt is polled again (never re-issued,
 * never Interrupted), a lost task is an interruption, a timeout and a task that asked for input
 * are error results.
 */
import { describe, expect, it } from 'vitest';
import { mcpServerSpec, type DiscoveredTool } from '../../src/api/mcp-server.ts';
import { decide } from '../../src/core/decide.ts';
import { phaseOf, planExecution } from '../../src/core/execution-plan.ts';
import { boundDiscovery } from '../../src/core/mcp-discovery.ts';
import { decideMCPTask } from '../../src/core/mcp-tasks.ts';
import type { MCPTaskEntry, MCPTaskHandle, ResolvedTool } from '../../src/api/journal-entry.ts';
import type { MCPCallObservation, MCPCallResult, MCPServerObservation, Observed } from '../../src/core/observed.ts';
import { resolveTools } from '../../src/core/tools.ts';
import {
  digestOf, effectsOf, journaled, journaledEntries, modelEntry, modelStep, observed, response, runningStatus, spec, stepOf, text,
  toolStep, toolUse,
} from '../harness/builders.ts';

const RESEARCH: DiscoveredTool = { name: 'research', inputSchema: { type: 'object' }, taskSupport: 'required',
  annotations: { readOnlyHint: true } };
const SLOW: DiscoveredTool = { name: 'slow', inputSchema: { type: 'object' }, taskSupport: 'optional',
  annotations: { readOnlyHint: true } };
const ECHO: DiscoveredTool = { name: 'echo', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } };

function server(extra: Record<string, unknown> = {}): MCPServerObservation {
  return { spec: mcpServerSpec.parse({ url: 'http://127.0.0.1:3001/mcp', ...extra }), tools: [RESEARCH, SLOW, ECHO] };
}
const entry = { name: 'ev', mcpServerRef: { name: 'ev' } };

function resolved(s: MCPServerObservation): ResolvedTool[] {
  const r = resolveTools(spec({ tools: [entry] }), new Map(), new Map([['ev', s]]));
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.tools;
}

describe('which MCP calls are tasks', () => {
  it('a tool that requires tasks always is; an optional one only when the MCPServer prefers tasks; others never', () => {
    const never = resolved(server());
    expect(never.map((t) => [t.name, t.mcp?.task])).toEqual([['research', true], ['slow', undefined], ['echo', undefined]]);
    const prefer = resolved(server({ tasks: 'Prefer' }));
    expect(prefer.map((t) => [t.name, t.mcp?.task])).toEqual([['research', true], ['slow', true], ['echo', undefined]]);
  });

  it('discovery keeps a tool\'s taskSupport only when the server advertises tasks for tools/call', () => {
    const listed = [{ name: 'research', inputSchema: { type: 'object' }, execution: { taskSupport: 'required' } },
      { name: 'echo', inputSchema: { type: 'object' }, execution: { taskSupport: 'forbidden' } }];
    expect(boundDiscovery(listed, true).tools.map((t) => t.taskSupport)).toEqual(['required', undefined]);
    expect(boundDiscovery(listed, false).tools.map((t) => t.taskSupport)).toEqual([undefined, undefined]);
  });

  it('admission: spec.tasks is Never or Prefer', () => {
    expect(mcpServerSpec.safeParse({ url: 'http://x/mcp', tasks: 'Always' }).success).toBe(false);
    expect(mcpServerSpec.parse({ url: 'http://x/mcp', tasks: 'Prefer' }).tasks).toBe('Prefer');
  });
});

// ---- decide() with a task tool ----

const TOOLS = resolved(server());
const RESEARCH_TOOL = TOOLS[0];
if (!RESEARCH_TOOL) throw new Error('research resolves');
const IDEMPOTENT: ResolvedTool = { ...RESEARCH_TOOL, idempotent: true };
const INPUT = { topic: 'tides' };
const turn1 = modelEntry(1, 1, response('tool_use', [text('researching'), toolUse('toolu_1', 'research', INPUT)]));
const HANDLE: MCPTaskHandle = { taskId: 'task-1', sessionId: 'session-1', protocolVersion: '2025-11-25',
  createdAt: '2030-01-01T00:00:00.000Z', pollIntervalMs: 1000, ttlMs: 300_000 };
const taskEntry = (attempt: number): MCPTaskEntry => ({ kind: 'MCPTask', stepId: 2, attempt, server: 'ev', tool: 'research',
  handle: HANDLE });

function taskObserved(step: ReturnType<typeof toolStep>, call?: MCPCallObservation, handleOf?: MCPTaskEntry,
  tools: ResolvedTool[] = TOOLS): Observed {
  const o = observed({ spec: { tools: [entry] }, status: runningStatus([journaled(modelStep(1, 1), turn1), step]), journal: [turn1],
    toolSnapshot: tools });
  return { ...o, mcpServers: new Map([['ev', server()]]), mcpCalls: new Map(call ? [[2, call]] : []),
    ...(handleOf ? { mcpTasks: new Map([[2, { entry: handleOf, digest: digestOf(handleOf) }]]) } : {}) };
}
const running = (patch: Parameters<typeof toolStep>[4] = {}) =>
  toolStep(2, 1, 'research', 'toolu_1', { phase: 'Running', mcpServer: 'ev', startedAt: '2030-01-01T00:00:00.000Z', ...patch });
const done = (result: MCPCallResult, attempt = 1): MCPCallObservation => ({ state: 'done', attempt, result });

describe('decide() and MCP tasks', () => {
  it('asks for the call as a task', () => {
    const d = decide(taskObserved(toolStep(2, 1, 'research', 'toolu_1')));
    expect(effectsOf(d, 'startMCPCall')).toEqual([expect.objectContaining({ stepId: 2, attempt: 1, tool: 'research', task: true })]);
  });

  it('journals the created task\'s handle (its own entry per attempt, verified like every entry) before it is polled', () => {
    const d = decide(taskObserved(running(), { state: 'task', attempt: 1, handle: HANDLE }));
    const [write] = effectsOf(d, 'writeJournal');
    expect(write).toMatchObject({ name: 'research-j2-t1', entry: taskEntry(1), digest: digestOf(taskEntry(1)) });
    expect(write?.stepId).toBeUndefined(); // not the step's result entry
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 1, mcpTask: { name: 'research-j2-t1', digest: digestOf(taskEntry(1)) } });
    expect(effectsOf(d, 'pollMCPTask')).toEqual([{ type: 'pollMCPTask', stepId: 2, attempt: 1, server: 'ev', tool: 'research',
      handle: HANDLE, timeoutMs: 60_000, maxOutputBytes: 65_536 }]);
    // The durable order: the handle is written in the journal phase, polling starts after it.
    const plan = planExecution(d.effects);
    expect(plan.journal.map((e) => e.name)).toEqual(['research-j2-t1']);
    expect(plan.start.map((e) => e.type)).toContain('pollMCPTask');
    expect(phaseOf('pollMCPTask')).toBe('start');
  });

  it('once the handle is journaled, waits while this process polls', () => {
    const d = decide(taskObserved(running(), { state: 'task', attempt: 1, handle: HANDLE }, taskEntry(1)));
    expect(d.effects.filter((e) => e.type !== 'event')).toEqual([]);
    expect(stepOf(d, 2).phase).toBe('Running');
  });

  it('after an operator restart, a journaled handle of the attempt is polled again: not re-issued, not Interrupted', () => {
    const d = decide(taskObserved(running({ mcpTask: { name: 'research-j2-t1', digest: digestOf(taskEntry(1)) } }), undefined, taskEntry(1)));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 1 });
    expect(stepOf(d, 2).outcome).toBeUndefined();
    expect(effectsOf(d, 'startMCPCall')).toEqual([]);
    expect(journaledEntries(d)).toEqual([]);
    expect(effectsOf(d, 'pollMCPTask')).toEqual([expect.objectContaining({ stepId: 2, attempt: 1, handle: HANDLE })]);
    expect(effectsOf(d, 'event').map((e) => e.reason)).toContain('MCPTaskResumed');
  });

  it('a handle journaled while the answer\'s status waited (no stored status names the step) is polled after a restart', () => {
    // Stored status: only the model step, Running. The journal: its answer, naming step 2 as called with it, and step 2's handle.
    const answer = { ...turn1, mcpCallsStarted: [2] };
    const o = observed({ spec: { tools: [entry] }, status: runningStatus([modelStep(1, 1, { phase: 'Running' })]), journal: [answer],
      toolSnapshot: TOOLS });
    const d = decide({ ...o, mcpServers: new Map([['ev', server()]]), mcpTasks: new Map([[2, { entry: taskEntry(1), digest: digestOf(taskEntry(1)) }]]) });
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Running', attempt: 1, mcpServer: 'ev' });
    expect(effectsOf(d, 'startMCPCall')).toEqual([]);
    expect(effectsOf(d, 'pollMCPTask')).toEqual([expect.objectContaining({ stepId: 2, attempt: 1, handle: HANDLE })]);
  });

  it('without a journaled handle (the crash came before it was written) a restart is an interruption, as for plain calls', () => {
    const d = decide(taskObserved(running()));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted' });
    // An older attempt's handle does not count for the current attempt.
    const later = decide(taskObserved(running({ attempt: 2 }), undefined, taskEntry(1), [IDEMPOTENT]));
    expect(effectsOf(later, 'pollMCPTask')).toEqual([]);
    expect(effectsOf(later, 'startMCPCall').map((e) => e.attempt)).toEqual([3]);
  });

  it('a lost task (the server restarted) is an interruption: reported when not idempotent, a new task when it is', () => {
    const lost = done({ kind: 'task-lost', text: 'Bad Request: No valid session ID provided', truncated: false });
    const d = decide(taskObserved(running(), lost, taskEntry(1)));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'Interrupted', attempt: 1 });
    const result = journaledEntries(d).find((e) => e.kind === 'ToolResult');
    expect(result?.kind === 'ToolResult' ? result.output : '').toContain('no longer knows the task of tool research');
    expect(result?.kind === 'ToolResult' ? result.output : '').toContain('not called again');

    const again = decide(taskObserved(running({ mcpTask: { name: 'research-j2-t1', digest: 'x' } }), lost, taskEntry(1), [IDEMPOTENT]));
    expect(stepOf(again, 2)).toMatchObject({ phase: 'Running', attempt: 2 });
    expect(stepOf(again, 2).mcpTask).toBeUndefined();
    expect(effectsOf(again, 'startMCPCall')).toEqual([expect.objectContaining({ attempt: 2, task: true })]);
  });

  it('a task past its timeout is TimedOut; one that asked for input or failed is an error result the model sees', () => {
    const timedOut = decide(taskObserved(running(), done({ kind: 'timeout', text: 'cancelled', truncated: false }), taskEntry(1)));
    expect(stepOf(timedOut, 2).outcome).toBe('TimedOut');
    const input = 'Error: the MCP task asked for input (which topic?), which the operator cannot give; the task was cancelled.';
    const asked = decide(taskObserved(running(), done({ kind: 'tool-error', text: input, truncated: false }), taskEntry(1)));
    expect(stepOf(asked, 2)).toMatchObject({ phase: 'Failed', outcome: 'ToolError' });
    expect(journaledEntries(asked)).toContainEqual(expect.objectContaining({ kind: 'ToolResult', output: input, isError: true }));
  });

  it('the pure decision: journal a new handle, resume a journaled one with no call here, else nothing', () => {
    const task: MCPCallObservation = { state: 'task', attempt: 1, handle: HANDLE };
    expect(decideMCPTask(1, task, undefined)).toEqual({ next: 'journal', handle: HANDLE });
    expect(decideMCPTask(1, task, taskEntry(1))).toEqual({ next: 'none' });
    expect(decideMCPTask(1, undefined, taskEntry(1))).toEqual({ next: 'resume', handle: HANDLE });
    expect(decideMCPTask(2, task, undefined)).toEqual({ next: 'none' }); // an older attempt's call
    expect(decideMCPTask(1, { state: 'in-flight', attempt: 1 }, undefined)).toEqual({ next: 'none' });
    expect(decideMCPTask(1, done({ kind: 'result', text: 'ok', truncated: false }), taskEntry(1))).toEqual({ next: 'none' });
  });
});
