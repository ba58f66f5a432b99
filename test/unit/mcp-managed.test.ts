/** Managed MCP servers, the pure parts: the spec's rules, the owned objects, drift, the readiness verdicts, the flags. */
import { describe, expect, it } from 'vitest';
import type { V1Deployment } from '@kubernetes/client-node';
import { mcpServerSpec } from '../../src/api/mcp-server.ts';
import { buildManagedObjects, managedName } from '../../src/core/mcp-managed.ts';
import { driftOf, quantityValue } from '../../src/core/mcp-drift.ts';
import { buildToolPod } from '../../src/core/tool-pod.ts';
import { reconcileManaged, type ManagedSettings } from '../../src/reconciler/mcp-managed-reconcile.ts';
import { deploymentAvailable, reachable } from '../../src/core/mcp-managed-state.ts';
import type { ManagedObjectsClient, PodProblem } from '../../src/ports.ts';
import { loadConfig } from '../../src/config.ts';
import { managedMCPSettings } from '../../src/operator.ts';
import { agentRunSpec } from '../../src/api/agent-run.ts';

const owner = { name: 'memory', namespace: 'team-a', uid: 'uid-1' };
const peer = { namespace: 'agentrun-system', podLabels: { 'app.kubernetes.io/name': 'agentrun-operator' } };
/** The value, or a failed test when it is missing. */
function must<T>(value: T | null | undefined): T {
  if (value === undefined || value === null) throw new Error('missing');
  return value;
}
const managed = (extra: Record<string, unknown> = {}) => must(mcpServerSpec.parse({ managed: { image: 'agentrun.dev/mcp-servers:2026.8.31', ...extra } }).managed);

describe('MCPServer spec: remote or managed', () => {
  it('takes exactly one of url and managed, and defaults port and path', () => {
    expect(mcpServerSpec.safeParse({ url: 'http://x/mcp' }).success).toBe(true);
    expect(managed()).toMatchObject({ port: 8080, path: '/mcp' });
    for (const spec of [{}, { url: 'http://x/mcp', managed: { image: 'x' } }]) {
      const r = mcpServerSpec.safeParse(spec);
      expect(r.success).toBe(false);
      expect(r.error?.message).toContain('set exactly one of url (a remote server) or managed (the operator runs it)');
    }
    expect(mcpServerSpec.safeParse({ managed: { image: 'x', path: 'mcp' } }).error?.message).toContain('must be a URL path starting with');
    expect(mcpServerSpec.safeParse({ managed: { image: 'x', env: [{ name: 'AGENTRUN_X', value: '1' }] } }).success).toBe(false);
    expect(mcpServerSpec.safeParse({ managed: { image: 'x', port: 70000 } }).success).toBe(false);
  });
});

describe('the objects a managed server owns', () => {
  it('the pod gets exactly the tool pods\' hardening and no ServiceAccount token unless one is named', () => {
    const { deployment } = buildManagedObjects(owner, managed(), peer);
    const pod = deployment.spec?.template.spec;
    const toolPod = buildToolPod({
      run: { name: 'r', namespace: 'team-a', uid: 'u', spec: agentRunSpec.parse({ model: { name: 'm', endpointRef: { name: 'e' } }, prompt: 'p' }) },
      stepId: 2, attempt: 1, podName: 'r-s2-a1', input: {},
      tool: { name: 't', container: { image: 'busybox' }, timeoutSeconds: 60 } as never,
    });
    expect(pod?.securityContext).toEqual(toolPod.spec?.securityContext);
    expect(pod?.containers[0]?.securityContext).toEqual(toolPod.spec?.containers[0]?.securityContext);
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.serviceAccountName).toBeUndefined();
    const withSA = buildManagedObjects(owner, managed({ serviceAccountName: 'mcp' }), peer).deployment.spec?.template.spec;
    expect(withSA).toMatchObject({ automountServiceAccountToken: true, serviceAccountName: 'mcp' });
    expect(deployment.spec?.replicas).toBe(1);
    expect(deployment.metadata?.ownerReferences).toEqual([{ apiVersion: 'agentrun.dev/v1alpha1', kind: 'MCPServer', name: 'memory', uid: 'uid-1', controller: true, blockOwnerDeletion: true }]);
    expect(pod?.containers[0]?.env?.[0]).toEqual({ name: 'PORT', value: '8080' });
  });

  it('the NetworkPolicy admits only the operator\'s pods, on the server\'s port', () => {
    const { networkPolicy, service } = buildManagedObjects(owner, managed({ port: 3001 }), peer);
    expect(networkPolicy.spec?.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/component': 'mcp-server', 'agentrun.dev/mcp-server-uid': 'uid-1' } });
    expect(networkPolicy.spec?.ingress).toEqual([{
      _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'agentrun-system' } }, podSelector: { matchLabels: peer.podLabels } }],
      ports: [{ protocol: 'TCP', port: 3001 }],
    }]);
    expect(service.spec?.ports).toEqual([{ name: 'mcp', port: 3001, targetPort: 3001, protocol: 'TCP' }]);
  });

  it('names are DNS-1035 labels of at most 63 characters', () => {
    expect(managedName('memory')).toBe('mcp-memory');
    for (const name of ['a.b.c', 'x'.repeat(253)]) {
      expect(managedName(name)).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    }
    expect(managedName('x'.repeat(100))).not.toBe(managedName(`${'x'.repeat(99)}y`));
  });
});

describe('drift', () => {
  const desired = buildManagedObjects(owner, managed({ resources: { limits: { cpu: '1000m', memory: '256Mi' } } }), peer).deployment;
  const stored = (): V1Deployment => {
    const copy = structuredClone(desired);
    // What the apiserver adds or rewrites: defaults and canonical quantities.
    const c = must(must(copy.spec?.template.spec).containers[0]);
    Object.assign(c, { imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log' });
    must(c.resources).limits = { cpu: '1', memory: '256Mi' };
    must(copy.metadata).resourceVersion = '7';
    return copy;
  };

  it('ignores defaults and rewritten quantities; finds a changed field and an added env var', () => {
    expect(driftOf(desired.spec, stored().spec)).toBeUndefined();
    const changed = stored();
    must(changed.spec?.template.spec).automountServiceAccountToken = true;
    expect(driftOf(desired.spec, changed.spec)).toBe('.template.spec.automountServiceAccountToken');
    const added = stored();
    must(must(added.spec?.template.spec).containers[0]?.env).push({ name: 'EXTRA', value: '1' });
    expect(driftOf(desired.spec, added.spec)).toBe('.template.spec.containers[0].env');
  });

  it('compares quantities by value', () => {
    expect(quantityValue('1')).toBe(quantityValue('1000m'));
    expect(quantityValue('1Gi')).toBe(1024 ** 3);
    expect(quantityValue('lots')).toBeUndefined();
  });
});

describe('readiness verdicts of a managed server', () => {
  const client = (o: { available?: boolean; problem?: PodProblem; addresses?: string[]; fail?: Error }): ManagedObjectsClient => ({
    ensure: () => (o.fail ? Promise.reject(o.fail) : Promise.resolve({
      changes: [], deployment: { metadata: { generation: 1 }, status: { observedGeneration: 1, availableReplicas: o.available ? 1 : 0 } },
    })),
    podProblem: () => Promise.resolve(o.problem),
    readyAddresses: () => Promise.resolve(o.addresses ?? []),
  });
  const endpoints: ManagedSettings = { peer, address: 'endpoints' };

  it('names the image when it cannot be pulled, and the container when it crashes', async () => {
    const pull = await reconcileManaged(client({ problem: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } }), owner, managed(), endpoints);
    expect(pull).toMatchObject({ kind: 'not-ready', reason: 'ImagePullFailed' });
    expect(pull.kind === 'not-ready' && pull.message).toContain('image agentrun.dev/mcp-servers:2026.8.31 cannot be pulled (ImagePullBackOff)');
    const crash = await reconcileManaged(client({ problem: { reason: 'CrashLoopBackOff', message: '(last exit code 1)' } }), owner, managed(), endpoints);
    expect(crash).toMatchObject({ kind: 'not-ready', reason: 'ServerCrashing' });
    expect(await reconcileManaged(client({}), owner, managed(), endpoints)).toMatchObject({ kind: 'not-ready', reason: 'Deploying' });
    expect(await reconcileManaged(client({ fail: new Error('forbidden') }), owner, managed(), endpoints))
      .toMatchObject({ kind: 'not-ready', reason: 'ApplyFailed' });
  });

  it('is reached at a ready EndpointSlice address, or at the Service\'s DNS name', async () => {
    expect(await reconcileManaged(client({ available: true, addresses: ['10.1.0.9'] }), owner, managed({ port: 3001 }), endpoints))
      .toMatchObject({ kind: 'reachable', url: 'http://10.1.0.9:3001/mcp' });
    expect(await reconcileManaged(client({ available: true }), owner, managed(), endpoints)).toMatchObject({ kind: 'not-ready', reason: 'Deploying' });
    expect(await reconcileManaged(client({ available: true }), owner, managed(), { peer, address: 'service' }))
      .toMatchObject({ kind: 'reachable', url: 'http://mcp-memory.team-a.svc:8080/mcp' });
  });
});

describe('readiness verdicts, pure', () => {
  it('counts a replica only once the Deployment observed its current generation', () => {
    expect(deploymentAvailable({ metadata: { generation: 2 }, status: { observedGeneration: 1, availableReplicas: 1 } })).toBe(false);
    expect(deploymentAvailable({ metadata: { generation: 2 }, status: { observedGeneration: 2, availableReplicas: 1 } })).toBe(true);
    expect(deploymentAvailable({ metadata: { generation: 2 }, status: { observedGeneration: 2 } })).toBe(false);
  });

  it('picks the same ready address on every reconcile, and brackets an IPv6 one', () => {
    const at = (addresses: string[]) => reachable(owner, managed(), 'endpoints', addresses, []);
    expect(at(['10.1.0.9', '10.1.0.10'])).toEqual(at(['10.1.0.10', '10.1.0.9']));
    expect(at(['fd00::5'])).toMatchObject({ kind: 'reachable', url: 'http://[fd00::5]:8080/mcp' });
  });
});

describe('flags of managed MCP servers', () => {
  it('default to the pod\'s namespace and the chart\'s operator label; auto picks service in a pod, endpoints outside', () => {
    const config = must(loadConfig([], {}));
    expect(managedMCPSettings(config, () => 'ops', { KUBERNETES_SERVICE_HOST: '10.0.0.1' }))
      .toEqual({ peer: { namespace: 'ops', podLabels: { 'app.kubernetes.io/name': 'agentrun-operator' } }, address: 'service' });
    expect(managedMCPSettings(config, () => { throw new Error('no file'); }, {}).address).toBe('endpoints');
    const flags = must(loadConfig(['--mcp-operator-namespace=sys', '--mcp-operator-pod-labels=a=b,c.io/d=e', '--mcp-address=endpoints'], {}));
    expect(managedMCPSettings(flags, () => 'ops', { KUBERNETES_SERVICE_HOST: 'x' }))
      .toEqual({ peer: { namespace: 'sys', podLabels: { a: 'b', 'c.io/d': 'e' } }, address: 'endpoints' });
    expect(() => loadConfig(['--mcp-operator-pod-labels=nolabel'], {})).toThrow(/--mcp-operator-pod-labels: must be one or more key=value labels/);
    expect(() => loadConfig(['--mcp-address=dns'], {})).toThrow(/--mcp-address: must be auto, service or endpoints/);
  });
});
