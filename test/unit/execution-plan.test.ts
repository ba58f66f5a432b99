import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/core/effects.ts';
import { phaseOf, planExecution } from '../../src/core/execution-plan.ts';

const pod = { metadata: { name: 'run-s2-a1' } };
const entry = { kind: 'ToolResult', stepId: 2, tool: 'shell', toolUseId: 't', attempt: 1, output: 'ok', isError: false, outcome: 'Completed', truncated: false } as const;

describe('the durable order (what the reconciler and the replay simulation both run)', () => {
  it('puts the journal alone on the critical path, starts pods and calls with the status write, and settles after it', () => {
    const effects: Effect[] = [
      { type: 'event', eventType: 'Normal', reason: 'Started', message: 'm' },
      { type: 'releasePod', name: 'run-s2-a1' },
      { type: 'createPod', stepId: 3, pod },
      { type: 'writeJournal', name: 'run-j2', stepId: 2, entry, digest: 'sha256:x' },
      { type: 'startModelCall', stepId: 4, attempt: 1, request: { model: 'm', max_tokens: 1, messages: [] } },
      { type: 'addFinalizer' },
    ];
    const plan = planExecution(effects);
    expect(plan.addFinalizer).toBe(true);
    expect(plan.journal.map((e) => e.name)).toEqual(['run-j2']);
    expect(plan.start.map((e) => e.type)).toEqual(['createPod', 'startModelCall']);
    expect(plan.settle.map((e) => e.type)).toEqual(['event', 'releasePod']);
  });

  it('never lets what destroys evidence, announces state or must have its intent recorded (MCP calls) run before status', () => {
    for (const type of ['deletePod', 'releasePod', 'deleteEndedPods', 'cancelModelCall', 'startMCPCall', 'event', 'removeFinalizer', 'deleteRun'] as const) {
      expect(phaseOf(type), type).toBe('settle');
    }
    expect(phaseOf('writeJournal')).toBe('journal');
    expect(phaseOf('addFinalizer')).toBe('finalizer');
  });
});

describe('a status that may wait for the next decision', () => {
  const answer = { kind: 'ModelResponse', stepId: 1, turn: 1, attempt: 1, response: { id: 'm', model: 'm', role: 'assistant', content: [], stop_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 1 } }, mcpCallsStarted: [2] } as const;
  const journalAnswer: Effect = { type: 'writeJournal', name: 'run-j1', stepId: 1, entry: answer as never, digest: 'sha256:a' };
  const callWithAnswer: Effect = { type: 'startMCPCall', stepId: 2, attempt: 1, server: 's', tool: 't', input: {}, timeoutMs: 1000, maxOutputBytes: 100, withAnswer: true };

  it('is only the status of an answer whose journal entry names the MCP calls it starts', () => {
    expect(planExecution([journalAnswer, callWithAnswer]).statusMayWait).toBe(true);
    // Without the answer journaled in this decision, nothing a first look reads names the call.
    expect(planExecution([callWithAnswer]).statusMayWait).toBe(false);
    // A later MCP call keeps its intent in status first.
    const { withAnswer: _, ...later } = callWithAnswer;
    expect(planExecution([journalAnswer, later as Effect]).statusMayWait).toBe(false);
    // Pods and model calls with an answer gain nothing from waiting: they run for seconds.
    expect(planExecution([journalAnswer, { type: 'createPod', stepId: 2, pod }]).statusMayWait).toBe(false);
  });

  it('never waits when something must settle after status or the finalizer is added first', () => {
    const event: Effect = { type: 'event', eventType: 'Normal', reason: 'ModelResponded', message: 'm' };
    expect(planExecution([journalAnswer, callWithAnswer, event]).statusMayWait).toBe(false);
    expect(planExecution([journalAnswer, callWithAnswer, { type: 'releasePod', name: 'run-s1-a1' }]).statusMayWait).toBe(false);
    expect(planExecution([{ type: 'addFinalizer' }, journalAnswer, callWithAnswer]).statusMayWait).toBe(false);
  });
});

describe('a status written behind its decision', () => {
  const startCall: Effect = { type: 'startModelCall', stepId: 3, attempt: 1, request: { model: 'm', max_tokens: 1, messages: [] } };
  const journalResult: Effect = { type: 'writeJournal', name: 'run-j2', stepId: 2, entry, digest: 'sha256:x' };

  it('is the status of a decision that starts a model call and settles nothing after it', () => {
    expect(planExecution([journalResult, startCall]).statusInBackground).toBe(true);
    expect(planExecution([journalResult]).statusInBackground).toBe(false);
    expect(planExecution([journalResult, { type: 'createPod', stepId: 3, pod }]).statusInBackground).toBe(false);
  });

  it('is never one with Events, a pod to release or the finalizer to add first', () => {
    expect(planExecution([journalResult, startCall, { type: 'event', eventType: 'Warning', reason: 'ToolFailed', message: 'm' }]).statusInBackground).toBe(false);
    expect(planExecution([journalResult, startCall, { type: 'releasePod', name: 'run-s2-a1' }]).statusInBackground).toBe(false);
    expect(planExecution([{ type: 'addFinalizer' }, startCall]).statusInBackground).toBe(false);
  });
});
