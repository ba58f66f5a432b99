/**
 * The pod conditions a kubelet owns (PodScheduled, PodReadyToStartContainers, Initialized,
 * ContainersReady, Ready), computed from a pod's container runs.
 */
import type * as k8s from '@kubernetes/client-node';
import { KUBELET_POD_CONDITIONS } from './constants.ts';
import { succeeded } from './container-status.ts';
import type { ContainerRun } from './types.ts';

/** The kubelet-owned conditions of one pod; a condition's lastTransitionTime moves only when its status does. */
export class PodConditions {
  private readonly times = new Map<string, { status: string; time: Date }>();

  /**
   * The conditions to report for `phase` over the `current` ones: the kubelet's own are computed
   * from the container runs, any other (DisruptionTarget, readiness gates) is kept as found.
   */
  build(
    phase: string, current: readonly k8s.V1PodCondition[], initRuns: readonly ContainerRun[],
    mainRuns: readonly ContainerRun[], sandboxReady: boolean,
  ): k8s.V1PodCondition[] {
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const notInitialized = initRuns.filter((run) => !succeeded(run)).map((run) => run.spec.name);
    const unready = mainRuns.filter((run) => run.state.kind !== 'running').map((run) => run.spec.name);
    const ready = !terminal && unready.length === 0;
    const [unreadyReason, unreadyMessage] = terminal
      ? ['PodCompleted', undefined]
      : ['ContainersNotReady', `containers with unready status: [${unready.join(' ')}]`];
    const kept = current.filter((c) => !KUBELET_POD_CONDITIONS.has(c.type));
    const scheduled = kept.some((c) => c.type === 'PodScheduled') ? [] : [this.condition('PodScheduled', true)];
    return [
      ...kept,
      ...scheduled,
      this.condition('PodReadyToStartContainers', sandboxReady && !terminal),
      this.condition('Initialized', notInitialized.length === 0, 'ContainersNotInitialized',
        `containers with incomplete status: [${notInitialized.join(' ')}]`),
      this.condition('ContainersReady', ready, unreadyReason, unreadyMessage),
      this.condition('Ready', ready, unreadyReason, unreadyMessage),
    ];
  }

  /** A condition whose lastTransitionTime moves only when its status does. */
  private condition(type: string, isTrue: boolean, reason?: string, message?: string): k8s.V1PodCondition {
    const status = isTrue ? 'True' : 'False';
    const previous = this.times.get(type);
    const lastTransitionTime = previous?.status === status ? previous.time : new Date();
    this.times.set(type, { status, time: lastTransitionTime });
    const explanation = isTrue ? {} : { ...(reason ? { reason } : {}), ...(message ? { message } : {}) };
    return { type, status, lastTransitionTime, ...explanation };
  }
}
