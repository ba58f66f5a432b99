/**
 * The Helm chart against the real apiserver with the real helm: it lints clean, installs (the
 * CRDs may already be there), refuses bad values with the schema's message, and its RBAC is
 * exactly enough: the operator, run as the chart's ServiceAccount with the flags the chart's
 * Deployment passes, completes a run with tools, and `kubectl auth can-i` shows what it may not do.
 * The plain manifests in deploy/ must equal a fresh render of the chart.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, getRun, recordingTool, executions, startAgentEnv, type AgentEnv, endpointFor } from '../harness/agent-env.ts';
import { freePort, repoRoot } from '../harness/control-plane.ts';
import { clients, cluster, createNamespace, kubectl, parseYaml } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { CHART, helm, helmOk, operatorContainer, serviceAccountKubeconfig, withFlag } from '../harness/ship.ts';
import { MANIFEST_PATH, renderManifests } from '../../scripts/manifests.ts';

const suffix = randomBytes(3).toString('hex');
const approverGroup = `agentrun-approvers-${suffix}`;
let env: AgentEnv;
let releaseNs: string;
let release: string;
let watchedNs: string;
let scopedRelease: string;
let operator: OperatorProcess | undefined;
let manifest: string;

/** `kubectl auth can-i` as the admin impersonating someone: true for yes, false for no. */
async function canI(args: readonly string[]): Promise<boolean> {
  try {
    const { stdout } = await kubectl(['auth', 'can-i', ...args]);
    return stdout.trim() === 'yes';
  } catch (error) {
    const stdout = (error as { stdout?: string }).stdout ?? '';
    if (stdout.trim() === 'no') return false;
    throw error;
  }
}

beforeAll(async () => {
  env = await startAgentEnv('helm-runs', { startOperator: false });
  releaseNs = await createNamespace('helm-op');
  watchedNs = await createNamespace('helm-watched');
  release = `agentrun-${suffix}`;
  scopedRelease = `scoped-${suffix}`;
});

afterAll(async () => {
  await operator?.stop();
  for (const rel of [release, scopedRelease]) await helm(cluster(), ['uninstall', rel, '-n', releaseNs, '--wait', '--timeout', '60s']);
  await env.close();
  for (const ns of [releaseNs, watchedNs]) await clients().core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('the Helm chart', () => {
  it('passes helm lint --strict with the default values and with every optional part on', async () => {
    const lint = await helm(cluster(), ['lint', '--strict', CHART]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    const everything = await helm(cluster(), ['lint', '--strict', CHART,
      '--set', 'watchNamespaces={a,b}', '--set', 'approvers.groups={ops}', '--set', 'approvers.users={alice}',
      '--set', 'toolPods.networkPolicy.enabled=true', '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'admissionPolicies.install=always']);
    expect(everything.code, everything.stdout + everything.stderr).toBe(0);
    expect(everything.stdout).toContain('0 chart(s) failed');
  });

  it('refuses bad values at install with a message that says what is wrong', async () => {
    const bad: [string[], RegExp][] = [
      [['--set', 'replicaCount=0'], /at '\/replicaCount': minimum: got 0, want 1/],
      [['--set', 'operator.logLevel=verbose'], /at '\/operator\/logLevel': value must be one of 'debug', 'info', 'warn', 'error'/],
      [['--set', 'watchNamespaces[0]=Not_A_Namespace'], /at '\/watchNamespaces\/0': 'Not_A_Namespace' does not match pattern/],
      [['--set', 'modelApiKeySecret=anthropic'], /additional properties 'modelApiKeySecret' not allowed/],
      [['--set', 'podSecurityContext.runAsNonRoot=false'], /at '\/podSecurityContext\/runAsNonRoot': value must be true/],
      [['--set', 'leaderElection.enabled=false'], /replicaCount is 2 but leaderElection.enabled is false: .* set leaderElection.enabled=true or replicaCount=1/],
      [['--set', 'leaderElection.leaseDuration=5s'], /leaderElection.leaseDuration \(5s\) must be longer than leaderElection.renewDeadline \(10s\)/],
      [['--set', 'toolPods.networkPolicy.enabled=true'], /toolPods.networkPolicy.enabled needs namespaces/],
    ];
    for (const [args, message] of bad) {
      const result = await helm(cluster(), ['install', `bad-${suffix}`, CHART, '-n', releaseNs, '--set', 'admissionPolicies.install=never', ...args]);
      expect(result.code, `${args.join(' ')} was accepted`).not.toBe(0);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
    expect(await helmOk(cluster(), ['list', '-n', releaseNs, '-a', '-q'])).not.toContain(`bad-${suffix}`);
  });

  it('installs into its own namespace over CRDs that already exist, and everything it creates is accepted', async () => {
    const out = await helmOk(cluster(), ['install', release, CHART, '-n', releaseNs,
      '--set', 'image.repository=registry.invalid/agentrun-operator', '--set', 'image.tag=test',
      // The approval policies and the approver ClusterRole are cluster-wide singletons the test
      // cluster already has from crds/; they are checked by the next test.
      '--set', 'admissionPolicies.install=never',
      '--set', `approvers.groups={${approverGroup}}`]);
    expect(out).toContain('STATUS: deployed');
    manifest = await helmOk(cluster(), ['get', 'manifest', release, '-n', releaseNs]);
    const objects = parseYaml(manifest);
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'ClusterRoleBinding', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount',
    ]);
    // Every object exists as rendered (kubectl get -f reads the same names back).
    const { stdout } = await kubectl(['get', '-f', '-', '-o', 'name'], { input: manifest });
    expect(stdout.trim().split('\n')).toHaveLength(objects.length);

    const deployment = objects.find((o) => o.kind === 'Deployment') as { spec: { replicas: number; template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } } };
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers[0]).toMatchObject({
      image: 'registry.invalid/agentrun-operator:test',
      securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' } },
      resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } },
    });
    expect(operatorContainer(manifest).args).toContain('--leader-elect');
  });

  it('ships admission policies the apiserver accepts, each kind only where the cluster serves it', async () => {
    const rendered = parseYaml(await helmOk(cluster(), ['template', 'x', CHART, '-n', releaseNs, '--kube-version', '1.36.0', '--set', 'admissionPolicies.install=always',
      '--show-only', 'templates/approval-policies.yaml']));
    expect(rendered.map((o) => o.kind).sort()).toEqual([
      'ClusterRole', 'MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
    ]);
    const { stdout: v1 } = await kubectl(['get', '--raw', '/apis/admissionregistration.k8s.io/v1']);
    const mutatingV1 = (JSON.parse(v1) as { resources: { name: string }[] }).resources.some((r) => r.name === 'mutatingadmissionpolicies');
    for (const doc of rendered) {
      if (doc.kind?.startsWith('MutatingAdmissionPolicy') && !mutatingV1) continue;
      await kubectl(['apply', '--dry-run=server', '--server-side', '--field-manager=helm-test', '--force-conflicts', '-f', '-'], { input: JSON.stringify(doc) });
    }
    // What the chart (auto) renders for this cluster's version: the mutating policy only where it is served.
    const { stdout: version } = await kubectl(['version', '-o', 'json']);
    const server = (JSON.parse(version) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion;
    const kinds = parseYaml(await helmOk(cluster(), ['template', 'x', CHART, '-n', releaseNs, '--kube-version', server])).map((o) => o.kind);
    expect(kinds.includes('MutatingAdmissionPolicy')).toBe(mutatingV1);
    expect(kinds).toContain('ValidatingAdmissionPolicy');
  });

  it('runs the operator as the chart\'s ServiceAccount with the chart\'s flags: a run with tools completes', async () => {
    const container = operatorContainer(manifest);
    const kubeconfig = await serviceAccountKubeconfig(cluster(), releaseNs, container.serviceAccount);
    await clients().core.createNamespacedSecret({
      namespace: env.namespace, body: { metadata: { name: 'anthropic' }, stringData: { 'api-key': 'sk-ant-from-the-secret' } },
    });
    operator = new OperatorProcess({
      kubeconfig, namespaces: [env.namespace],
      // Exactly the Deployment's arguments (leader election in the release namespace included);
      // only the port moves, since several operators share this machine.
      extraArgs: withFlag(container.args, 'metrics-port', String(await freePort())),
      env: { POD_NAME: `${release}-0`, POD_NAMESPACE: releaseNs },
    });
    await operator.start();

    const KEY = `[helm-rbac-${suffix}]`;
    env.model.script(KEY, [
      { content: [text('Two lookups.'), toolUse('lookup', { q: 'rbac' }), toolUse('lookup', { q: 'helm' })] },
      { content: [text('Both looked up: done.')] },
    ]);
    await createRun(env.namespace, 'as-service-account', {
      model: { name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, env.model.url, { name: 'anthropic' }) } },
      prompt: `${KEY} look things up`,
      tools: [{ name: 'lookup', description: 'Look something up', container: recordingTool(env.execLog) }],
      ttlSecondsAfterFinished: 3600,
    });
    await kubectl(['wait', '-n', env.namespace, '--for=condition=Succeeded', 'agentrun/as-service-account', '--timeout=90s']).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\nstatus: ${JSON.stringify((await getRun(env.namespace, 'as-service-account')).status)}\noperator:\n${operator?.tail(60) ?? ''}`);
    });
    const run = await getRun(env.namespace, 'as-service-account');
    expect(run.status?.result).toBe('Both looked up: done.');
    expect(run.status?.steps?.map((s) => `${s.kind}:${s.phase}`)).toEqual(['Model:Succeeded', 'Tool:Succeeded', 'Tool:Succeeded', 'Model:Succeeded']);
    expect(await executions(env.execLog)).toHaveLength(2);
    // The key came from the Secret the chart lets it read.
    expect(env.model.requests(KEY).map((r) => r.apiKey)).toEqual(['sk-ant-from-the-secret', 'sk-ant-from-the-secret']);
    // Leader election ran on the chart's Lease, with the Role the chart grants.
    const { stdout: holder } = await kubectl(['get', 'lease', `${release}-agentrun-operator`, '-n', releaseNs, '-o', 'jsonpath={.spec.holderIdentity}']);
    expect(holder).toMatch(new RegExp(`^${release}-0_[0-9a-f]{8}$`));
    // Nothing was forbidden along the way.
    expect(operator.logs((l) => JSON.stringify(l).includes('forbidden'))).toEqual([]);
  });

  it('grants nothing more: what the operator\'s ServiceAccount may not do', async () => {
    const sa = `system:serviceaccount:${releaseNs}:${operatorContainer(manifest).serviceAccount}`;
    const as = ['--as', sa];
    const ns = env.namespace;
    const allowed: string[][] = [
      ['get', 'secret/anthropic', '-n', ns],
      ['list', 'agentruns.agentrun.dev', '-n', ns],
      ['patch', 'agentruns.agentrun.dev', '-n', ns],
      ['delete', 'agentruns.agentrun.dev', '-n', ns],
      ['update', 'agentruns.agentrun.dev', '--subresource=status', '-n', ns],
      ['update', 'agentruns.agentrun.dev', '--subresource=finalizers', '-n', ns],
      ['create', 'pods', '-n', ns],
      ['get', 'pods', '--subresource=log', '-n', ns],
      ['create', 'agentrunjournals.agentrun.dev', '-n', ns],
      ['get', 'agentrunjournals.agentrun.dev', '-n', ns],
      ['write', 'agentruns.agentrun.dev', '--subresource=journal', '-n', ns],
      ['create', 'events', '-n', ns],
      ['create', 'leases.coordination.k8s.io', '-n', releaseNs],
      ['update', `leases.coordination.k8s.io/${release}-agentrun-operator`, '-n', releaseNs],
      ['create', 'deployments.apps', '-n', ns],
      ['update', 'services', '-n', ns],
      ['update', 'networkpolicies.networking.k8s.io', '-n', ns],
      ['list', 'endpointslices.discovery.k8s.io', '-n', ns],
    ];
    const denied: string[][] = [
      ['get', 'secret/other-secret', '-n', ns],
      ['list', 'secrets', '-n', ns],
      ['watch', 'secrets', '-n', ns],
      ['create', 'secrets', '-n', ns],
      ['create', 'agentruns.agentrun.dev', '-n', ns],
      ['update', 'agentruns.agentrun.dev', '-n', ns],
      ['delete', 'agenttools.agentrun.dev', '-n', ns],
      ['patch', 'agenttools.agentrun.dev', '-n', ns],
      // It must never approve its own steps.
      ['approve', 'agentruns.agentrun.dev', '--subresource=approval', '-n', ns],
      ['create', 'configmaps', '-n', ns],
      ['get', 'configmaps', '-n', ns],
      // Journal entries are immutable; the garbage collector removes them with their run.
      ['update', 'agentrunjournals.agentrun.dev', '-n', ns],
      ['delete', 'agentrunjournals.agentrun.dev', '-n', ns],
      ['create', 'pods', '--subresource=exec', '-n', ns],
      ['update', 'pods', '-n', ns],
      // Managed MCPServers' objects are created and put back, never deleted by it (garbage collection is).
      ['delete', 'deployments.apps', '-n', ns],
      ['patch', 'deployments.apps', '-n', ns],
      ['delete', 'services', '-n', ns],
      ['delete', 'networkpolicies.networking.k8s.io', '-n', ns],
      ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', ns],
      ['get', 'nodes'],
      ['update', 'leases.coordination.k8s.io/some-other-lease', '-n', releaseNs],
      ['create', 'leases.coordination.k8s.io', '-n', ns],
      ['create', 'serviceaccounts/token', '-n', releaseNs],
    ];
    const wrong: string[] = [];
    for (const check of allowed) if (!(await canI([...check, ...as]))) wrong.push(`may not ${check.join(' ')}, but needs to`);
    for (const check of denied) if (await canI([...check, ...as])) wrong.push(`may ${check.join(' ')}`);
    expect(wrong).toEqual([]);

    // Approvers from values may approve everywhere (cluster-wide install).
    expect(await canI(['approve', 'agentruns.agentrun.dev', '--subresource=approval', '-n', ns, '--as', 'dana', '--as-group', approverGroup])).toBe(true);
    expect(await canI(['approve', 'agentruns.agentrun.dev', '--subresource=approval', '-n', ns, '--as', 'dana'])).toBe(false);
  });

  it('with watchNamespaces, grants Roles in those namespaces only', async () => {
    await helmOk(cluster(), ['install', scopedRelease, CHART, '-n', releaseNs,
      '--set', 'admissionPolicies.install=never', '--set', 'replicaCount=1', '--set', 'leaderElection.enabled=false',
      '--set', `watchNamespaces={${watchedNs}}`, '--set', `approvers.users={carol-${suffix}}`,
      '--set', 'toolPods.networkPolicy.enabled=true']);
    const scoped = await helmOk(cluster(), ['get', 'manifest', scopedRelease, '-n', releaseNs]);
    const objects = parseYaml(scoped);
    // Cluster-wide only what cannot be namespaced: asking the apiserver about a run creator's rights.
    const clusterScoped = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding');
    expect(clusterScoped.map((o) => `${o.kind}/${o.metadata?.name ?? ''}`).sort()).toEqual([
      `ClusterRole/${scopedRelease}-agentrun-operator-access-review`, `ClusterRoleBinding/${scopedRelease}-agentrun-operator-access-review`,
    ]);
    expect((clusterScoped.find((o) => o.kind === 'ClusterRole') as unknown as { rules: unknown[] }).rules)
      .toEqual([{ apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] }]);
    expect(objects.find((o) => o.kind === 'NetworkPolicy')?.metadata?.namespace).toBe(watchedNs);
    expect(operatorContainer(scoped).args).toContain(`--namespaces=${watchedNs}`);
    expect(operatorContainer(scoped).args).not.toContain('--leader-elect');

    const as = ['--as', `system:serviceaccount:${releaseNs}:${operatorContainer(scoped).serviceAccount}`];
    expect(await canI(['list', 'agentruns.agentrun.dev', '-n', watchedNs, ...as])).toBe(true);
    expect(await canI(['create', 'pods', '-n', watchedNs, ...as])).toBe(true);
    expect(await canI(['list', 'agentruns.agentrun.dev', '-n', env.namespace, ...as])).toBe(false);
    expect(await canI(['list', 'agentruns.agentrun.dev', '--all-namespaces', ...as])).toBe(false);
    expect(await canI(['get', 'secret/anthropic', '-n', env.namespace, ...as])).toBe(false);
    expect(await canI(['create', 'leases.coordination.k8s.io', '-n', releaseNs, ...as])).toBe(false);
    expect(await canI(['approve', 'agentruns.agentrun.dev', '--subresource=approval', '-n', watchedNs, '--as', `carol-${suffix}`])).toBe(true);
    expect(await canI(['approve', 'agentruns.agentrun.dev', '--subresource=approval', '-n', env.namespace, '--as', `carol-${suffix}`])).toBe(false);
  });
});

/**
 * Every Kubernetes API call the operator makes, and the permission it needs. The test below reads
 * the calls from the source, so a new call fails it until it is listed here and granted by the chart.
 */
const API_CALLS: Record<string, readonly [group: string, resource: string, verbs: readonly string[]]> = {
  createNamespacedEvent: ['', 'events', ['create']],
  createNamespacedCustomObject: ['agentrun.dev', 'agentrunjournals', ['create']],
  createSubjectAccessReview: ['authorization.k8s.io', 'subjectaccessreviews', ['create']],
  getNamespacedCustomObject: ['agentrun.dev', 'agentrunjournals', ['get']],
  createNamespacedPod: ['', 'pods', ['create']],
  deleteNamespacedPod: ['', 'pods', ['delete']],
  deleteCollectionNamespacedPod: ['', 'pods', ['deletecollection']],
  patchNamespacedPod: ['', 'pods', ['patch']],
  readNamespacedPod: ['', 'pods', ['get']],
  readNamespacedPodLog: ['', 'pods/log', ['get']],
  listNamespacedPod: ['', 'pods', ['list', 'watch']],
  listPodForAllNamespaces: ['', 'pods', ['list', 'watch']],
  readNamespacedSecret: ['', 'secrets', ['get']],
  // Run status, and MCPServer status (discovered tools): the plural is an argument, both are granted.
  replaceNamespacedCustomObjectStatus: ['agentrun.dev', 'agentruns/status+mcpservers/status', ['update']],
  patchNamespacedCustomObject: ['agentrun.dev', 'agentruns', ['patch']],
  deleteNamespacedCustomObject: ['agentrun.dev', 'agentruns', ['delete']],
  // The informers list and watch both kinds (the plural is an argument: both are granted).
  listNamespacedCustomObject: ['agentrun.dev', 'agentruns+agenttools+modelendpoints+mcpservers', ['list', 'watch']],
  listClusterCustomObject: ['agentrun.dev', 'agentruns+agenttools+modelendpoints+mcpservers', ['list', 'watch']],
  // Leader election: a separate Role in the release namespace.
  readNamespacedLease: ['coordination.k8s.io', 'leases', ['get']],
  createNamespacedLease: ['coordination.k8s.io', 'leases', ['create']],
  replaceNamespacedLease: ['coordination.k8s.io', 'leases', ['update']],
  // Managed MCPServers' owned objects (src/adapters/kube/mcp-managed.ts, reconciler/mcp-server-controller.ts).
  readNamespacedDeployment: ['apps', 'deployments', ['get']],
  createNamespacedDeployment: ['apps', 'deployments', ['create']],
  replaceNamespacedDeployment: ['apps', 'deployments', ['update']],
  listNamespacedDeployment: ['apps', 'deployments', ['list', 'watch']],
  listDeploymentForAllNamespaces: ['apps', 'deployments', ['list', 'watch']],
  readNamespacedService: ['', 'services', ['get']],
  createNamespacedService: ['', 'services', ['create']],
  replaceNamespacedService: ['', 'services', ['update']],
  readNamespacedNetworkPolicy: ['networking.k8s.io', 'networkpolicies', ['get']],
  createNamespacedNetworkPolicy: ['networking.k8s.io', 'networkpolicies', ['create']],
  replaceNamespacedNetworkPolicy: ['networking.k8s.io', 'networkpolicies', ['update']],
  listNamespacedEndpointSlice: ['discovery.k8s.io', 'endpointslices', ['list']],
};
/** Granted without a call in the code, on purpose (see the chart's _helpers.tpl). */
const EXTRA_GRANTS = new Set([
  'agentrun.dev agentruns get', 'agentrun.dev agenttools get', 'agentrun.dev modelendpoints get', 'agentrun.dev mcpservers get',
  // OwnerReferencesPermissionEnforcement: blockOwnerDeletion on tool pods.
  'agentrun.dev agentruns/finalizers update',
  // The same for the objects a managed MCPServer owns.
  'agentrun.dev mcpservers/finalizers update',
  // Checked by the admission policy agentrun-journal, not called: it marks the operator.
  'agentrun.dev agentruns/journal write',
]);

describe('the chart\'s RBAC and the code', () => {
  it('grants exactly the API calls the operator makes', async () => {
    const sources = ['src/operator.ts', 'src/operator-watches.ts', 'src/controller/leader-election.ts', 'src/reconciler/mcp-server-controller.ts',
      ...['access', 'errors', 'events', 'journal', 'kubeconfig', 'mcp-managed', 'mcp-servers', 'pods', 'runs', 'secrets'].map((f) => `src/adapters/kube/${f}.ts`)];
    const { readdir } = await import('node:fs/promises');
    const adapters = (await readdir(join(repoRoot, 'src/adapters/kube'))).map((f) => `src/adapters/kube/${f}`);
    expect(adapters.filter((f) => !sources.includes(f)), 'a new adapter file: add it to this test').toEqual([]);
    const called = new Set<string>();
    for (const file of sources) {
      const code = await readFile(join(repoRoot, file), 'utf8');
      for (const [, method = ''] of code.matchAll(/\.((?:create|read|get|replace|patch|delete|deleteCollection|list|connect)(?:Namespaced|Cluster)[A-Za-z]*|list[A-Za-z]+ForAllNamespaces|createSubjectAccessReview)\(/g)) called.add(method);
    }
    expect([...called].filter((m) => !(m in API_CALLS)), 'API calls without a permission in API_CALLS').toEqual([]);

    const needed = new Set<string>();
    for (const method of called) {
      const [group, resources, verbs] = API_CALLS[method] ?? ['', '', []];
      for (const resource of resources.split('+')) for (const verb of verbs) needed.add(`${group} ${resource} ${verb}`);
    }
    const rendered = parseYaml(await helmOk(cluster(), ['template', 'x', CHART, '-n', 'ops', '--kube-version', '1.34.0', '--set', 'admissionPolicies.install=never']));
    const granted = new Set<string>();
    for (const role of rendered.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
      for (const rule of (role as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }).rules) {
        for (const group of rule.apiGroups) for (const resource of rule.resources) for (const verb of rule.verbs) granted.add(`${group} ${resource} ${verb}`);
      }
    }
    expect([...needed].filter((p) => !granted.has(p)).sort(), 'needed but not granted').toEqual([]);
    expect([...granted].filter((p) => !needed.has(p) && !EXTRA_GRANTS.has(p)).sort(), 'granted but never used').toEqual([]);
  });
});

describe('deploy/', () => {
  it(`${MANIFEST_PATH} equals a fresh render of the chart (npm run render-manifests)`, async () => {
    const checkedIn = await readFile(join(repoRoot, MANIFEST_PATH), 'utf8');
    const fresh = await renderManifests(repoRoot);
    expect(checkedIn === fresh, `${MANIFEST_PATH} is stale: run npm run render-manifests`).toBe(true);
    const kinds = parseYaml(fresh).map((o) => o.kind);
    expect(kinds[0]).toBe('Namespace');
    expect(kinds).toEqual(expect.arrayContaining(['CustomResourceDefinition', 'Deployment', 'ServiceAccount', 'ClusterRole', 'MutatingAdmissionPolicy', 'ValidatingAdmissionPolicy']));
  });

  it('the kind config and script exist and the script installs the chart that is checked in', async () => {
    const script = await readFile(join(repoRoot, 'deploy/kind/up.sh'), 'utf8');
    for (const step of ['docker build', 'kind load docker-image', 'helm upgrade --install']) expect(script).toContain(step);
    expect(script).toContain('charts/agentrun-operator');
    const config = parseYaml(await readFile(join(repoRoot, 'deploy/kind/kind-config.yaml'), 'utf8'))[0];
    expect(config).toMatchObject({ kind: 'Cluster', apiVersion: 'kind.x-k8s.io/v1alpha4' });
  });
});
