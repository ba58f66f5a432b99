/**
 * The node emulator's public API (this folder's other modules hold its parts).
 *
 * NodeEmulator: a stand-in kubelet for a real kube-apiserver on a machine without a container
 * runtime. It registers a Ready Node, binds the unscheduled pods of its namespaces to it (the
 * test control plane has no scheduler), runs their containers as LOCAL PROCESSES, reports pod
 * status the way a kubelet does, and serves container logs so `kubectl logs` works.
 *
 *   ┌─────────────────────────────────────────────────────────────────────────────────────┐
 *   │ THE CONTAINER IMAGE IS IGNORED. A container runs its `command` + `args` directly on   │
 *   │ this machine, as the user running the tests, with no isolation of any kind. A        │
 *   │ container without `command` cannot run (its image's entrypoint is unknown): it ends   │
 *   │ terminated with reason `EmulatorNeedsCommand`.                                        │
 *   └─────────────────────────────────────────────────────────────────────────────────────┘
 *
 * PATHS ARE REWRITTEN. A process cannot see the paths a container would see, so emptyDir,
 * configMap, secret, downwardAPI and projected volumes are materialised under the pod's sandbox
 * (`<sandbox>/volumes/<volumeName>`; hostPath volumes map to the host path itself), and every
 * occurrence of a container's `volumeMounts[].mountPath` and of its `terminationMessagePath`
 * (default /dev/termination-log) in its command, args, workingDir and env values is replaced by
 * the sandbox path. Only whole path components match (`/data` rewrites `/data/x`, not `/database`).
 * Paths a program computes or has built in (client libraries reading
 * /var/run/secrets/kubernetes.io/serviceaccount) are NOT rewritten. Projected service account
 * tokens come from the TokenRequest API; the kube-root-ca.crt ConfigMap falls back to the cluster
 * CA file, as the test control plane runs no root-ca-cert-publisher.
 *
 * What a container process gets:
 * - env: PATH (the emulator's), HOME=<sandbox>, HOSTNAME=<pod name>, KUBERNETES_SERVICE_HOST/PORT
 *   pointing at the real apiserver, then envFrom and env (value with $(VAR) expansion, or
 *   valueFrom secretKeyRef / configMapKeyRef / fieldRef). resourceFieldRef is not supported.
 * - cwd: workingDir (after rewriting) when it exists on this machine, else the sandbox.
 * - stdout and stderr, interleaved, in one log file per container instance, as the kubelet does.
 * - its own process group: stopping a container signals the whole group (SIGTERM, then SIGKILL
 *   after the grace period, capped at 10 s), and anything left in the group when the main
 *   process exits is killed, as a container runtime would.
 *
 * Also emulated: init containers (sequential) then containers (concurrent); restartPolicy with
 * an exponential back-off (1 s doubling to 20 s, CrashLoopBackOff meanwhile); termination
 * messages (incl. FallbackToLogsOnError); activeDeadlineSeconds (DeadlineExceeded); graceful
 * deletion finished with a grace-0 delete; a node failure with the taint manager's eviction
 * (simulateNodeFailure); the kubelet's /containerLogs endpoint (follow, tailLines, limitBytes,
 * previous) over HTTPS with a certificate from the cluster CA; it admits any client certificate
 * from that CA (the apiserver's) and authorizes nothing further. Container IDs are
 * `emulator://<pid>`.
 *
 * Also: node heartbeats (the Ready condition every 4 s, for a cluster that runs the node lifecycle
 * controller beside real nodes) and a NoSchedule taint (EMULATOR_TAINT) so that a real
 * kube-scheduler never places other pods here.
 *
 * Not emulated: images, probes (a running container is ready), resource limits, native sidecars
 * (init containers with restartPolicy: Always), persistent volumes (other volume types are an
 * empty directory), node leases, log timestamps and sinceSeconds/sinceTime,
 * exec/attach/port-forward.
 */
export { NodeEmulator } from './emulator.ts';
export { EMULATOR_SCHEDULER_NAME, EMULATOR_TAINT } from './constants.ts';
export type { EmulatedProcess, EmulatorLog, NodeEmulatorOptions } from './types.ts';
