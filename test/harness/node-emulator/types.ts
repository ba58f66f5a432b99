/**
 * Types shared across the node emulator: its options and log hook, and the state of a pod's containers.
 */
import * as k8s from '@kubernetes/client-node';
import type { ProcessExit } from './processes.ts';

/** Structured logging hook; the emulator is silent by default. */
export type EmulatorLog = (message: string, fields?: Record<string, unknown>) => void;

/**
 * Options of a {@link NodeEmulator}. A `ClusterInfo` carries `kubeconfig`, `caCert` and `caKey`,
 * so `new NodeEmulator({ ...cluster(), nodeName, namespaces: [ns] })` is all a test needs.
 */
export interface NodeEmulatorOptions {
  /** Kubeconfig of the identity the emulated kubelet acts as (the admin one in tests). */
  readonly kubeconfig: string;
  /** The cluster CA: it signs the log server's certificate, which the apiserver verifies. */
  readonly caCert: string;
  readonly caKey: string;
  /** Name of the Node to register; a node that exists already is adopted (taints lifted, Ready). */
  readonly nodeName: string;
  /** Only pods in these namespaces are bound and run (all namespaces when omitted). Tests set it. */
  readonly namespaces?: readonly string[];
  /** Where sandboxes, logs and the certificate go; a temporary directory removed by stop() if omitted. */
  readonly workDir?: string;
  readonly log?: EmulatorLog;
}

/** A container process the emulator is running. */
export interface EmulatedProcess {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly pid: number;
}

// ── One pod's containers (PodRuntime) ──

/** What a PodRuntime gets from its emulator: the API, the cluster CA, logging and task tracking. */
export interface RuntimeContext {
  readonly core: k8s.CoreV1Api;
  readonly caCert: string;
  readonly apiServer: URL;
  readonly log: EmulatorLog;
  readonly track: (task: Promise<unknown>, what: string) => void;
}

/** How a container instance ended, as its terminated state reports it. */
export interface Termination {
  readonly exitCode: number;
  readonly signal?: number;
  readonly reason: string;
  readonly message?: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly containerID?: string;
}

/** A container state as the API reports it: waiting, running or terminated. */
export type ContainerState =
  | { readonly kind: 'waiting'; readonly reason: string; readonly message?: string }
  | { readonly kind: 'running'; readonly startedAt: Date; readonly containerID: string }
  | ({ readonly kind: 'terminated' } & Termination);

/** The process of a running container instance. */
export interface RunningProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
}

/** One container of the pod across its restarts. */
export interface ContainerRun {
  readonly spec: k8s.V1Container;
  readonly isInit: boolean;
  state: ContainerState;
  lastTermination?: Termination;
  restartCount: number;
  process?: RunningProcess;
}

/** Why a pod's containers were stopped before they ended by themselves. */
export type StopCause = 'deleted' | 'deadline' | 'killed';

/** What a log request gets: a file to stream (live while the container runs), or an HTTP error. */
export type LogTarget = { readonly file: string; readonly live: () => boolean } | { readonly status: number; readonly message: string };
