/**
 * The node emulator's fixed names, limits and timings (kubelet defaults, capped for tests).
 */

/** The kubelet version the emulated Node reports. */
export const KUBELET_VERSION = 'v1.34.4-agentrun-emulator';
/** The address of the log endpoint and of every emulated pod and node. */
export const LOCALHOST = '127.0.0.1';
/** A container's terminationMessagePath when it sets none. */
export const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';
/** The most of a termination message file that is reported, as a kubelet does. */
export const MAX_TERMINATION_MESSAGE_BYTES = 4096;
/** Log lines read for FallbackToLogsOnError termination messages. */
export const FALLBACK_LOG_LINES = 80;
/** Log bytes read at most for FallbackToLogsOnError termination messages. */
export const FALLBACK_LOG_BYTES = 2048;
/** A pod's termination grace period when it sets none. */
export const DEFAULT_GRACE_SECONDS = 30;
/** Grace periods are capped so that a process ignoring SIGTERM never holds a test for 30 s. */
export const MAX_GRACE_MS = 10_000;
/** First restart back-off of a crashing container; it doubles up to the maximum. */
export const RESTART_BACKOFF_BASE_MS = 1_000;
/** Longest restart back-off of a crashing container. */
export const RESTART_BACKOFF_MAX_MS = 20_000;
/** Pause before retrying anything that failed: a volume source, an env source, an API write. */
export const RETRY_MS = 1_000;
/** How often a write is retried after a resourceVersion conflict. */
export const MAX_CONFLICT_RETRIES = 5;
/** How often a followed log file is checked for appended output. */
export const FOLLOW_POLL_MS = 100;
/** The exit code a runtime reports for a container that could not be started. */
export const START_FAILURE_EXIT_CODE = 128;
/** How often the Node's Ready condition is refreshed (kubelet's nodeStatusUpdateFrequency is 10 s). */
export const HEARTBEAT_MS = 4_000;
/** The status message of a pod stopped by activeDeadlineSeconds (the kubelet's words). */
export const DEADLINE_MESSAGE = 'Pod was active on the node longer than the specified deadline';
/** The taint the node lifecycle controller puts on a node that stopped reporting. */
export const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';
/** Taints an emulator lifts when it adopts a Node again. */
export const NODE_LIFECYCLE_TAINTS = new Set([UNREACHABLE_TAINT, 'node.kubernetes.io/not-ready']);
/**
 * On a cluster that also has real nodes and kube-scheduler (local-cluster.ts), the scheduler must
 * neither place other pods on an emulated node (this taint: the emulator binds pods itself and
 * ignores it) nor bind the emulator's pods to a real node: pods meant for an emulator there set
 * `schedulerName: EMULATOR_SCHEDULER_NAME`, which no real scheduler serves.
 */
export const EMULATOR_TAINT = { key: 'agentrun.dev/node-emulator', value: 'true', effect: 'NoSchedule' } as const;
/** The schedulerName of pods meant for an emulated node (see EMULATOR_TAINT). */
export const EMULATOR_SCHEDULER_NAME = 'agentrun-node-emulator';
/** Pod conditions the kubelet owns; any other condition (DisruptionTarget, readiness gates) is kept as found. */
export const KUBELET_POD_CONDITIONS = new Set(['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready']);
