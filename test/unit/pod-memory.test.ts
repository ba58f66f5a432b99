/**
 * PodMemory: what this process knows of each tool pod, from the informer and from its own
 * requests — so a reconcile that runs before the informer catches up sends no request twice.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { TOOL_POD_FINALIZER } from '../../src/api/conditions.ts';
import { observePod, PodMemory } from '../../src/reconciler/memory/pod-memory.ts';

const RUN_UID = 'uid-1';

function toolPod(name: string, patch: { phase?: string; exitCode?: number; finalizers?: string[]; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: {
      name, namespace: 'ns', finalizers: patch.finalizers ?? [TOOL_POD_FINALIZER],
      ownerReferences: [{ apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', name: 'run', uid: RUN_UID, controller: true }],
      ...(patch.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    status: {
      phase: patch.phase ?? 'Pending',
      ...(patch.exitCode !== undefined ? { containerStatuses: [{ name: 'tool', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: patch.exitCode } } }] } : {}),
    },
  };
}

describe('PodMemory', () => {
  it('knows a pod it created before the informer shows it, and lets the informer win after that', () => {
    const memory = new PodMemory();
    memory.recordCreated(toolPod('run-s2-a1'));
    expect(memory.ofRun(RUN_UID).get('run-s2-a1')).toMatchObject({ exists: true, phase: 'Pending', finalizerHeld: true });

    memory.record(toolPod('run-s2-a1', { phase: 'Succeeded', exitCode: 0 }));
    // A late create response must not roll the informer's newer state back.
    memory.recordCreated(toolPod('run-s2-a1'));
    expect(memory.ofRun(RUN_UID).get('run-s2-a1')).toMatchObject({ phase: 'Succeeded', terminated: { exitCode: 0 } });
  });

  it('remembers a released finalizer and a requested deletion until the informer says more', () => {
    const memory = new PodMemory();
    memory.record(toolPod('run-s2-a1', { phase: 'Succeeded', exitCode: 0 }));
    memory.settled(RUN_UID, 'run-s2-a1', { released: true });
    expect(memory.ofRun(RUN_UID).get('run-s2-a1')).toMatchObject({ finalizerHeld: false, deleting: false });

    memory.record(toolPod('run-s3-a1', { phase: 'Running' }));
    memory.settled(RUN_UID, 'run-s3-a1', { released: true, deleting: true });
    expect(memory.ofRun(RUN_UID).get('run-s3-a1')).toMatchObject({ finalizerHeld: false, deleting: true });

    memory.settled(RUN_UID, 'unknown', { released: true });
    expect(memory.ofRun(RUN_UID).size).toBe(2);
  });

  it('a swept run marks its released pods deleting, not the ones still held', () => {
    const memory = new PodMemory();
    memory.record(toolPod('run-s2-a1', { phase: 'Succeeded', exitCode: 0, finalizers: [] }));
    memory.record(toolPod('run-s3-a1', { phase: 'Running' }));
    memory.sweptRun(RUN_UID);
    expect(memory.ofRun(RUN_UID).get('run-s2-a1')?.deleting).toBe(true);
    expect(memory.ofRun(RUN_UID).get('run-s3-a1')?.deleting).toBe(false);
  });

  it('carries the container\'s waiting reason and the scheduler\'s Unschedulable message', () => {
    const pod = toolPod('run-s2-a1');
    pod.status = {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available.' }],
      containerStatuses: [{ name: 'tool', image: 'nope:1', imageID: '', ready: false, restartCount: 0,
        state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1"' } } }],
    };
    expect(observePod(pod, true)).toMatchObject({
      started: false, waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1"' }, unschedulable: '0/1 nodes are available.',
    });
    expect(observePod(toolPod('run-s2-a2'), true)).not.toHaveProperty('waiting');
  });
});
