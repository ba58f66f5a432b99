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
