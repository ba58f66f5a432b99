/**
 * What this process has seen of each tool pod, including pods that are gone. The informer cache
 * forgets a deleted pod; we must not: "it ran and vanished" (maybe re-run only if idempotent)
 * and "it was never created" (create it) look the same in the cache.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { PodObservation } from '../core/observed.ts';

/** Container termination reasons that mean the process never started. */
const NEVER_STARTED = new Set(['StartError', 'ContainerCannotRun', 'CreateContainerError', 'EmulatorNeedsCommand']);

interface Remembered { readonly ownerUid: string; observation: PodObservation }

export class PodMemory {
  private readonly pods = new Map<string, Remembered>();

  /** Records a pod from an informer add/update event. */
  record(pod: V1Pod): void {
    const ownerUid = ownerUidOf(pod);
    if (!ownerUid || !pod.metadata?.name) return;
    this.pods.set(key(pod), { ownerUid, observation: observePod(pod, true) });
  }

  /** Records that a pod is gone (informer delete event), keeping its last known state. */
  vanish(pod: V1Pod): void {
    const ownerUid = ownerUidOf(pod);
    if (!ownerUid || !pod.metadata?.name) return;
    const last = this.pods.get(key(pod))?.observation;
    const now = observePod(pod, false);
    // The final object may be older than what we saw; "started" never goes back to false.
    this.pods.set(key(pod), { ownerUid, observation: { ...now, started: now.started || Boolean(last?.started) } });
  }

  /** The run's pods by name. */
  ofRun(runUid: string): Map<string, PodObservation> {
    const out = new Map<string, PodObservation>();
    for (const r of this.pods.values()) if (r.ownerUid === runUid) out.set(r.observation.name, r.observation);
    return out;
  }

  forgetRun(runUid: string): void {
    for (const [k, r] of this.pods) if (r.ownerUid === runUid) this.pods.delete(k);
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
  return {
    name: pod.metadata?.name ?? '',
    exists,
    phase,
    started,
    ...(ranThenEnded ? {
      terminated: {
        exitCode: terminated.exitCode,
        ...(terminated.reason ? { reason: terminated.reason } : {}),
        ...(terminated.message ? { message: terminated.message } : {}),
        ...(terminated.finishedAt ? { finishedAt: new Date(terminated.finishedAt).toISOString() } : {}),
      },
    } : {}),
    ...(status?.reason ?? neverStartedReason ? { reason: status?.reason ?? neverStartedReason } : {}),
    ...(status?.message ?? terminated?.message ? { message: status?.message ?? terminated?.message } : {}),
    deleting: Boolean(pod.metadata?.deletionTimestamp) || disrupted,
  };
}

function ownerUidOf(pod: V1Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((o) => o.kind === 'AgentRun' && o.controller)?.uid;
}

function key(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}
