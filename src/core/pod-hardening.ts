/**
 * The hardened pod defaults every pod the operator creates gets (tool pods and managed MCP
 * servers): one place for each rule, so the two cannot drift apart. They satisfy the Pod Security
 * Admission `restricted` profile: non-root, no privilege escalation, ALL capabilities dropped,
 * seccomp RuntimeDefault; plus a read-only root filesystem and no service links.
 */
import type { V1PodSecurityContext, V1SecurityContext } from '@kubernetes/client-node';

/** The UID and GID pods run as (the `nonroot` user of distroless and of our local images). */
export const NON_ROOT_UID = 65532;
/** Resources of a container whose spec names none. */
export const DEFAULT_RESOURCES = { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '50m', memory: '64Mi' } };

/** The pod-level security context. */
export function hardenedPodSecurityContext(): V1PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: NON_ROOT_UID,
    runAsGroup: NON_ROOT_UID,
    fsGroup: NON_ROOT_UID,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** The container-level security context. */
export function hardenedContainerSecurityContext(): V1SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  };
}
