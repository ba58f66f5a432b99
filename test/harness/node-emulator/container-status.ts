/**
 * Pod phase and container statuses as the kubelet computes them from container runs.
 */
import * as k8s from '@kubernetes/client-node';
import { START_FAILURE_EXIT_CODE } from './constants.ts';
import type { ContainerRun, ContainerState, Termination } from './types.ts';

/** The kubelet's getPhase: Pending until init containers succeed, then from the containers' states. */
export function kubeletPhase(restartPolicy: string, initRuns: readonly ContainerRun[], mainRuns: readonly ContainerRun[]): string {
  if (!initRuns.every(succeeded)) {
    const initFailed = initRuns.some((run) => run.state.kind === 'terminated' && run.state.exitCode !== 0);
    return restartPolicy === 'Never' && initFailed ? 'Failed' : 'Pending';
  }
  let waiting = 0, running = 0, stopped = 0, exitedZero = 0;
  for (const run of mainRuns) {
    if (run.state.kind === 'running') running++;
    else if (run.state.kind === 'terminated') { stopped++; if (run.state.exitCode === 0) exitedZero++; }
    else if (run.lastTermination) stopped++; // waiting to restart
    else waiting++;
  }
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (restartPolicy === 'Always' || (restartPolicy === 'OnFailure' && exitedZero < stopped)) return 'Running';
  return exitedZero === stopped ? 'Succeeded' : 'Failed';
}

/** Whether a container run ended with exit code 0. */
export function succeeded(run: ContainerRun): boolean {
  return run.state.kind === 'terminated' && run.state.exitCode === 0;
}

/** The API status of one container run (state, last state, restarts, readiness). */
export function containerStatus(run: ContainerRun): k8s.V1ContainerStatus {
  const { state } = run;
  const running = state.kind === 'running';
  const containerID = state.kind === 'waiting' ? run.lastTermination?.containerID : state.containerID;
  return {
    name: run.spec.name,
    image: run.spec.image ?? '',
    imageID: '',
    ...(containerID ? { containerID } : {}),
    // An init container that completed counts as ready, as with the kubelet.
    ready: run.isInit ? succeeded(run) : running,
    started: running,
    restartCount: run.restartCount,
    state: apiState(state),
    lastState: run.lastTermination ? { terminated: apiTermination(run.lastTermination) } : {},
  };
}

function apiState(state: ContainerState): k8s.V1ContainerState {
  switch (state.kind) {
    case 'waiting': return { waiting: { reason: state.reason, ...(state.message ? { message: state.message } : {}) } };
    case 'running': return { running: { startedAt: state.startedAt } };
    case 'terminated': return { terminated: apiTermination(state) };
  }
}

function apiTermination(termination: Termination): k8s.V1ContainerStateTerminated {
  const { exitCode, signal, reason, message, startedAt, finishedAt, containerID } = termination;
  return { exitCode, signal, reason, message, startedAt, finishedAt, containerID };
}

/** The termination of a container that could not be started at all. */
export function startFailure(reason: string, message: string): Termination {
  const now = new Date();
  return { exitCode: START_FAILURE_EXIT_CODE, reason, message, startedAt: now, finishedAt: now };
}
