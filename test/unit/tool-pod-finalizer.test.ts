/**
 * Tool pods carry a finalizer, so a pod deleted or lost — even while the operator is down — stays
 * visible until its step is settled; decide() classifies it and then releases it.
 */
import { describe, expect, it } from 'vitest';
import { TOOL_POD_FINALIZER } from '../../src/api/conditions.ts';
import { decide } from '../../src/core/decide.ts';
import { buildToolPod } from '../../src/core/tool-pod.ts';
import { T0, effectsOf, journaled, modelEntry, modelStep, observed, pod, response, resolvedTools, runningStatus, spec, stepOf, toolStep, toolUse } from '../support/builders.ts';

const turn1 = modelEntry(1, 1, response('tool_use', [toolUse('toolu_1', 'shell', { cmd: 'date' })]));
const running = (attempt = 1) => runningStatus([journaled(modelStep(1, 1), turn1), toolStep(2, 1, 'shell', 'toolu_1', { phase: 'Running', attempt, podName: `research-s2-a${String(attempt)}`, startedAt: new Date(T0).toISOString() })]);

describe('tool pod finalizer', () => {
  it('is on every tool pod', () => {
    const s = spec();
    const [tool] = resolvedTools(s);
    if (!tool) throw new Error('the base spec has tools');
    const manifest = buildToolPod({ run: { name: 'r', namespace: 'n', uid: 'u', spec: s }, stepId: 2, attempt: 1, podName: 'r-s2-a1', tool, input: {} });
    expect(manifest.metadata?.finalizers).toEqual([TOOL_POD_FINALIZER]);
  });

  it('a pod killed by a deletion (still held by the finalizer) is classified at once and released', () => {
    const killed = pod.exited('research-s2-a1', 143, T0, { deleting: true, interrupted: true, finalizerHeld: true });
    const d = decide(observed({ status: running(), journal: [turn1], pods: [killed] }));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'PodLost' });
    expect(effectsOf(d, 'deletePod').map((e) => e.name)).toEqual(['research-s2-a1']);
    expect(effectsOf(d, 'createPod')).toEqual([]);
  });

  it('a pod on a lost node (disrupted, its container never reports again) is classified without waiting', () => {
    const lost = pod.running('research-s2-a1', { deleting: true, disrupted: true, finalizerHeld: true });
    const d = decide(observed({ status: running(), journal: [turn1], pods: [lost] }));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'PodLost' });
    const message = effectsOf(d, 'writeJournal').find((e) => e.stepId === 2)?.entry;
    expect(message?.kind === 'ToolResult' ? message.output : '').toContain('was deleted because its node was lost');
  });

  it('a pod deleted while its container still runs is waited for (the kubelet is stopping it)', () => {
    const stopping = pod.running('research-s2-a1', { deleting: true, finalizerHeld: true });
    const d = decide(observed({ status: running(), journal: [turn1], pods: [stopping] }));
    expect(stepOf(d, 2).phase).toBe('Running');
    expect(d.effects.filter((e) => e.type !== 'event')).toEqual([]);
  });

  it('a settled step releases a pod that someone else already deleted, once', () => {
    const done = pod.exited('research-s2-a1', 0, T0, { deleting: true, finalizerHeld: true });
    const released = pod.exited('research-s2-a1', 0, T0, { deleting: true, finalizerHeld: false });
    const withOutput = { 2: { ok: true as const, text: 'Sun', truncated: false } };
    expect(effectsOf(decide(observed({ status: running(), journal: [turn1], pods: [done], toolOutputs: withOutput })), 'deletePod')).toHaveLength(1);
    expect(effectsOf(decide(observed({ status: running(), journal: [turn1], pods: [released], toolOutputs: withOutput })), 'deletePod')).toHaveLength(0);
  });
});
