/**
 * The objects a managed MCPServer owns, built purely from its spec: a Deployment of one replica
 * (hardened like tool pods: src/core/pod-hardening.ts), a Service in front of it and a
 * NetworkPolicy that admits only the operator's pods. All three carry a controller ownerReference,
 * so deleting the MCPServer deletes them (garbage collection).
 */
import type {
  V1Deployment,
  V1EnvVar,
  V1NetworkPolicy,
  V1ResourceRequirements,
  V1Service,
} from '@kubernetes/client-node';
import { API_VERSION } from '../api/group.ts';
import { Label, MANAGED_BY } from '../api/conditions.ts';
import { MCP_SERVER_KIND } from '../api/mcp-server.ts';
import type { MCPManagedSpec } from '../api/mcp-managed.ts';
import { boundedName } from './naming.ts';
import { DEFAULT_RESOURCES, hardenedContainerSecurityContext, hardenedPodSecurityContext } from './pod-hardening.ts';

/** The component label of a managed server's objects. */
export const MCP_COMPONENT = 'mcp-server';
/** Label with the owning MCPServer's UID: what selectors use (names may be shortened and collide). */
export const MCP_SERVER_UID_LABEL = 'agentrun.dev/mcp-server-uid';
/** Label with the owning MCPServer's name (shortened to 63 characters), for people. */
export const MCP_SERVER_LABEL = 'agentrun.dev/mcp-server';
/** Size of the writable /tmp of a managed server (the root filesystem is read-only). */
export const MCP_TMP_SIZE = '256Mi';

/** The MCPServer the objects belong to. */
export interface ManagedOwner {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

/** Who may reach a managed server: the operator's pods (flags --mcp-operator-namespace / -pod-labels). */
export interface OperatorPeer {
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
}

/** The objects a managed MCPServer owns: its Deployment, Service and NetworkPolicy. */
export interface ManagedObjects {
  readonly deployment: V1Deployment;
  readonly service: V1Service;
  readonly networkPolicy: V1NetworkPolicy;
}

/** The name of all three objects: `mcp-<server>`, a DNS-1035 label (what a Service name must be). */
export function managedName(server: string): string {
  return boundedName(`mcp-${server.replaceAll('.', '-')}`, '');
}

/** The labels that select the server's pods. */
export function managedSelector(owner: ManagedOwner): Record<string, string> {
  return { [Label.component]: MCP_COMPONENT, [MCP_SERVER_UID_LABEL]: owner.uid };
}

/** The Service's in-cluster URL of the Streamable HTTP endpoint. */
export function serviceUrl(owner: ManagedOwner, spec: MCPManagedSpec): string {
  return `http://${managedName(owner.name)}.${owner.namespace}.svc:${spec.port}${spec.path}`;
}

/** The three objects of a managed server. */
export function buildManagedObjects(owner: ManagedOwner, spec: MCPManagedSpec, peer: OperatorPeer): ManagedObjects {
  const name = managedName(owner.name);
  const labels = {
    [Label.managedBy]: MANAGED_BY,
    [MCP_SERVER_LABEL]: boundedName(owner.name, ''),
    ...managedSelector(owner),
  };
  const metadata = {
    name,
    namespace: owner.namespace,
    labels,
    ownerReferences: [{
      apiVersion: API_VERSION,
      kind: MCP_SERVER_KIND,
      name: owner.name,
      uid: owner.uid,
      controller: true,
      blockOwnerDeletion: true,
    }],
  };
  const selector = managedSelector(owner);
  const deployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      // One replica: replace it (a Streamable HTTP session lives in one process; two would split them).
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels },
        spec: {
          // No token unless the admin names a ServiceAccount (then the server needs the API, presumably).
          automountServiceAccountToken: spec.serviceAccountName !== undefined,
          ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 10,
          securityContext: hardenedPodSecurityContext(),
          containers: [{
            name: 'server',
            image: spec.image,
            ...(spec.command ? { command: spec.command } : {}),
            ...(spec.args ? { args: spec.args } : {}),
            env: [
              // PORT is what server-everything (and many Node servers) listen on; the admin's own PORT wins.
              ...(spec.env?.some((e) => e.name === 'PORT') ? [] : [{ name: 'PORT', value: String(spec.port) }]),
              ...(spec.env ?? []) as V1EnvVar[],
            ],
            ports: [{ name: 'mcp', containerPort: spec.port, protocol: 'TCP' }],
            resources: (spec.resources ?? DEFAULT_RESOURCES) as V1ResourceRequirements,
            // Ready when the port accepts connections; whether it speaks MCP the operator checks with initialize.
            readinessProbe: { tcpSocket: { port: spec.port }, periodSeconds: 2, failureThreshold: 3 },
            securityContext: hardenedContainerSecurityContext(),
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
          }],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: MCP_TMP_SIZE } }],
        },
      },
    },
  };
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec: { selector, ports: [{ name: 'mcp', port: spec.port, targetPort: spec.port, protocol: 'TCP' }] },
  };
  const networkPolicy: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata,
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{
        // `_from`: client-node's name for `from` (a keyword); its serializer writes `from`.
        _from: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': peer.namespace } },
          podSelector: { matchLabels: { ...peer.podLabels } },
        }],
        ports: [{ protocol: 'TCP', port: spec.port }],
      }],
      // Egress stays open: a server may call its own APIs. Ingress is what keeps tenants' pods out.
      egress: [{}],
    },
  };
  return { deployment, service, networkPolicy };
}
