/**
 * Tool pods carry a finalizer, so a pod deleted or lost — even while the operator is down — stays
 * visible until its step is settled; decide() classifies it and then releases it.
 */
import { describe, expect, it } from 'vitest';
import { TOOL_POD_FINALIZER } from '../../src/api/conditions.ts';
import { decide } from '../../src/core/decide.ts';
import { buildToolPod } from '../../src/core/tool-pod.ts';
import { T0, effectTypes as effectTypesOf, effectsOf, journaled, modelEntry, modelStep, observed, pod, response, resolvedTools, runningStatus, spec, stepOf, toolStep, toolUse } from '../harness/builders.ts';

const turn1 = modelEntry(1, 1, response('tool_use', [toolUse('toolu_1', 'shell', { cmd: 'date' })]));
const running = (attempt = 1) => runningStatus([journaled(modelStep(1, 1), turn1), toolStep(2, 1, 'shell', 'toolu_1', { phase: 'Running', attempt, podName: `research-s2-a${String(attempt)}`, startedAt: new Date(T0).toISOString() })]);

describe('tool pod finalizer', () => {
  it('is on every tool pod', () => {
    const s = spec();
    const [tool] = resolvedTools(s);
    if (!tool?.container) throw new Error('the base spec has pod tools');
    const manifest = buildToolPod({ run: { name: 'r', namespace: 'n', uid: 'u', spec: s }, stepId: 2, attempt: 1, podName: 'r-s2-a1',
      tool: { ...tool, container: tool.container }, input: {} });
    expect(manifest.metadata?.finalizers).toEqual([TOOL_POD_FINALIZER]);
  });

  it('a pod killed by a deletion (still held by the finalizer) is classified at once and released', () => {
    const killed = pod.exited('research-s2-a1', 143, T0, { deleting: true, interrupted: true, finalizerHeld: true });
    const d = decide(observed({ status: running(), journal: [turn1], pods: [killed] }));
    expect(stepOf(d, 2)).toMatchObject({ phase: 'Failed', outcome: 'PodLost' });
    // Already deleting: releasing the finalizer is all it takes (no second DELETE).
    expect(effectsOf(d, 'releasePod').map((e) => e.name)).toEqual(['research-s2-a1']);
    expect(effectsOf(d, 'deletePod')).toEqual([]);
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
    const first = decide(observed({ status: running(), journal: [turn1], pods: [done], toolOutputs: withOutput }));
    expect(effectsOf(first, 'releasePod')).toHaveLength(1);
    expect(effectsOf(first, 'deletePod')).toHaveLength(0);
    const again = decide(observed({ status: running(), journal: [turn1], pods: [released], toolOutputs: withOutput }));
    expect(effectsOf(again, 'releasePod')).toHaveLength(0);
    expect(effectsOf(again, 'deletePod')).toHaveLength(0);
  });

  it('an ended pod is released with one request and kept; a finished run deletes its ended pods in one request', () => {
    const ended = pod.exited('research-s2-a1', 0, T0, { finalizerHeld: true });
    const withOutput = { 2: { ok: true as const, text: 'Sun', truncated: false } };
    const settled = decide(observed({ status: running(), journal: [turn1], pods: [ended], toolOutputs: withOutput }));
    expect(settled.effects.filter((e) => e.type === 'releasePod' || e.type === 'deletePod' || e.type === 'deleteEndedPods')).toEqual([{ type: 'releasePod', name: 'research-s2-a1' }]);
    // Still running when the run is cancelled: that pod is stopped by name; ended ones are swept by label.
    const stillRunning = pod.running('research-s3-a1', { finalizerHeld: true });
    const releasedEnded = pod.exited('research-s2-a1', 0, T0, { finalizerHeld: false });
    const cancelled = decide(observed({ status: running(), journal: [turn1], pods: [releasedEnded, stillRunning], spec: { cancel: true } }));
    expect(cancelled.effects.filter((e) => e.type === 'deletePod' || e.type === 'deleteEndedPods')).toEqual([
      { type: 'deletePod', name: 'research-s3-a1' },
      { type: 'deleteEndedPods', labelSelector: 'app.kubernetes.io/component=tool,agentrun.dev/run-uid=7d0c2a4e-run-uid' },
    ]);
    expect(effectTypesOf(cancelled)).not.toContain('removeFinalizer');
  });
});
