/**
 * What this process has seen of each tool pod, including pods that are gone. The informer cache
 * forgets a deleted pod; we must not: "it ran and vanished" (maybe re-run only if idempotent)
 * and "it was never created" (create it) look the same in the cache.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { TOOL_POD_FINALIZER } from '../../api/conditions.ts';
import type { PodObservation } from '../../core/observed.ts';
import { RunMemory } from './run-memory.ts';

/** Container termination reasons that mean the process never started. */
const NEVER_STARTED = new Set(['StartError', 'ContainerCannotRun', 'CreateContainerError']);

/** Tool pods as this process saw them, kept in the memory of the run that owns each. */
export class PodMemory {
  private readonly memory: RunMemory;
  constructor(memory = new RunMemory()) {
    this.memory = memory;
  }

  /** Records a pod from an informer add/update event. */
  record(pod: V1Pod): void {
    const ownerUid = ownerUidOf(pod);
    const name = pod.metadata?.name;
    if (!ownerUid || !name) return;
    this.memory.of(ownerUid).pods.set(name, { owner: ownerKeyOf(pod), observation: observePod(pod, true) });
  }

  /** Records a pod this process just created, unless the informer already told us more. */
  recordCreated(pod: V1Pod): void {
    const ownerUid = ownerUidOf(pod);
    if (ownerUid && this.memory.peek(ownerUid)?.pods.has(pod.metadata?.name ?? '')) return;
    this.record(pod);
  }

  /**
   * Records what this process just did to a pod of a run (finalizer released, deletion requested),
   * so a reconcile before the informer shows it does not send the same request again.
   */
  settled(runUid: string, name: string, change: { released?: boolean; deleting?: boolean }): void {
    const r = this.memory.peek(runUid)?.pods.get(name);
    if (!r) return;
    r.observation = {
      ...r.observation,
      ...(change.released ? { finalizerHeld: false } : {}),
      ...(change.deleting ? { deleting: true } : {}),
    };
  }

  /** Records that every released pod of a run is being deleted (one collection delete). */
  sweptRun(runUid: string): void {
    for (const r of this.memory.peek(runUid)?.pods.values() ?? []) {
      if (r.observation.finalizerHeld !== true) r.observation = { ...r.observation, deleting: true };
    }
  }

  /** Records that a pod is gone (informer delete event), keeping its last known state. */
  vanish(pod: V1Pod): void {
    const ownerUid = ownerUidOf(pod);
    const name = pod.metadata?.name;
    if (!ownerUid || !name) return;
    const pods = this.memory.of(ownerUid).pods;
    const last = pods.get(name)?.observation;
    const now = observePod(pod, false);
    // The final object may be older than what we saw; "started" and "interrupted" never go back to false.
    const interrupted = Boolean(now.interrupted) || Boolean(last?.interrupted);
    const started = now.started || Boolean(last?.started);
    const observation = { ...now, started, ...(interrupted ? { interrupted } : {}) };
    pods.set(name, { owner: ownerKeyOf(pod), observation });
  }

  /** The run's pods by name. */
  ofRun(runUid: string): Map<string, PodObservation> {
    const pods = [...(this.memory.peek(runUid)?.pods.values() ?? [])];
    return new Map(pods.map((r) => [r.observation.name, r.observation]));
  }

  /** Pods of a run that no longer exists which still carry the operator's finalizer. */
  heldOrphans(runKey: string): PodObservation[] {
    const held: PodObservation[] = [];
    for (const run of this.memory.all()) {
      for (const r of run.pods.values()) {
        if (r.owner === runKey && r.observation.exists && r.observation.finalizerHeld) held.push(r.observation);
      }
    }
    return held;
  }

  /** Forgets a finished run's pods (they are released and deleted; the rest of its memory stays). */
  forgetRun(runUid: string): void {
    this.memory.peek(runUid)?.pods.clear();
  }
}

/** Reduces a Pod to what decide() needs. */
export function observePod(pod: V1Pod, exists: boolean): PodObservation {
  const status = pod.status;
  const container = status?.containerStatuses?.find((c) => c.name === 'tool') ?? status?.containerStatuses?.[0];
  const terminated = container?.state?.terminated;
  const ranThenEnded = terminated !== undefined && !NEVER_STARTED.has(terminated.reason ?? '');
  const started = Boolean(container?.state?.running) || ranThenEnded || (container?.restartCount ?? 0) > 0;
  const disrupted = (status?.conditions ?? []).some((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  const phase = (['Pending', 'Running', 'Succeeded', 'Failed'] as const).find((p) => p === status?.phase) ?? 'Unknown';
  const neverStartedReason = terminated && !ranThenEnded ? terminated.reason : undefined;
  const waiting = container?.state?.waiting;
  const unschedulable = (status?.conditions ?? [])
    .find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
  // Killed by a deletion or a disruption (the kubelet reports exit 137/143), not ended by itself.
  // Timestamps cannot tell: the final grace-0 delete moves deletionTimestamp past the kill.
  const interrupted = ranThenEnded && terminated.exitCode !== 0 && status?.reason !== 'DeadlineExceeded'
    && (Boolean(pod.metadata?.deletionTimestamp) || disrupted);
  return {
    name: pod.metadata?.name ?? '',
    exists,
    phase,
    started,
    ...(ranThenEnded ?
      {
        terminated: {
          exitCode: terminated.exitCode,
          ...(terminated.reason ? { reason: terminated.reason } : {}),
          ...(terminated.message ? { message: terminated.message } : {}),
          ...(terminated.finishedAt ? { finishedAt: new Date(terminated.finishedAt).toISOString() } : {}),
        },
      } :
      {}),
    ...(waiting?.reason
      ? { waiting: { reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) } } :
      {}),
    ...(unschedulable ? { unschedulable: unschedulable.message ?? 'no node fits the pod' } : {}),
    ...(status?.reason ?? neverStartedReason ? { reason: status?.reason ?? neverStartedReason } : {}),
    ...(status?.message ?? terminated?.message ? { message: status?.message ?? terminated?.message } : {}),
    deleting: Boolean(pod.metadata?.deletionTimestamp) || disrupted,
    ...(disrupted ? { disrupted } : {}),
    finalizerHeld: (pod.metadata?.finalizers ?? []).includes(TOOL_POD_FINALIZER),
    ...(interrupted ? { interrupted } : {}),
  };
}

function ownerKeyOf(pod: V1Pod): string {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.kind === 'AgentRun' && o.controller)?.name ?? '';
  return `${pod.metadata?.namespace ?? ''}/${owner}`;
}

function ownerUidOf(pod: V1Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((o) => o.kind === 'AgentRun' && o.controller)?.uid;
}
