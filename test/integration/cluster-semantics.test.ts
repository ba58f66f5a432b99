/**
 * The apiserver behaviour the operator relies on, proven on the local control plane: owner
 * references garbage-collect journal ConfigMaps and tool Pods, and RBAC denies a non-admin
 * identity what it was not granted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userKubeconfig } from '../harness/control-plane.ts';
import { cluster, clients, createNamespace, eventually, kubectl, statusCode } from '../harness/kube.ts';
import { validRunSpec } from '../fixtures/invalid-manifests.ts';

const { core, custom } = clients();
let namespace = '';

beforeAll(async () => { namespace = await createNamespace('semantics'); });
afterAll(async () => { await core.deleteNamespace({ name: namespace }); });

describe('garbage collection', () => {
  it('deleting an AgentRun deletes the ConfigMaps and Pods it owns', async () => {
    const run = await custom.createNamespacedCustomObject({
      group: 'agentrun.dev', version: 'v1alpha1', namespace, plural: 'agentruns',
      body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name: 'owner' }, spec: validRunSpec() },
    }) as { metadata: { uid: string } };
    const ownerReferences = [{ apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', name: 'owner', uid: run.metadata.uid, controller: true, blockOwnerDeletion: true }];
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner-journal-1', ownerReferences }, data: { step: '1' } } });
    await core.createNamespacedPod({ namespace, body: {
      metadata: { name: 'owner-tool-1', ownerReferences },
      spec: { restartPolicy: 'Never', containers: [{ name: 'tool', image: 'busybox:1.37', command: ['true'] }] },
    } });
    await custom.deleteNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', namespace, plural: 'agentruns', name: 'owner' });

    const gone = async (read: () => Promise<unknown>) => read().then(() => undefined, (e: unknown) => (statusCode(e) === 404 ? true : undefined));
    await eventually('the owned ConfigMap to be collected', () => gone(() => core.readNamespacedConfigMap({ namespace, name: 'owner-journal-1' })));
    await eventually('the owned Pod to be collected', () => gone(() => core.readNamespacedPod({ namespace, name: 'owner-tool-1' })));
  });
});

describe('RBAC', () => {
  it('denies a non-admin identity what no Role grants, and allows what one does', async () => {
    const bob = await userKubeconfig(cluster(), 'bob', ['developers']);
    const denied = await kubectl(['get', 'agentruns', '-n', namespace], { kubeconfig: bob }).then(() => '', (e: unknown) => String(e));
    expect(denied).toContain('User "bob" cannot list resource "agentruns" in API group "agentrun.dev"');

    await kubectl(['create', 'role', 'run-reader', '-n', namespace, '--verb=get,list', '--resource=agentruns.agentrun.dev']);
    await kubectl(['create', 'rolebinding', 'bob-reads-runs', '-n', namespace, '--role=run-reader', '--group=developers']);
    const { stdout } = await kubectl(['auth', 'can-i', 'list', 'agentruns.agentrun.dev', '-n', namespace], { kubeconfig: bob });
    expect(stdout.trim()).toBe('yes');
    const stillDenied = await kubectl(['get', 'secrets', '-n', namespace], { kubeconfig: bob }).then(() => '', (e: unknown) => String(e));
    expect(stillDenied).toContain('cannot list resource "secrets"');
  });
});
