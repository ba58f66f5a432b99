/**
 * Managed MCP servers on the cluster's real node: the operator runs the reference servers from
 * the local image agentrun.dev/mcp-servers (scripts/cluster/mcp-image.sh) as a Deployment +
 * Service + NetworkPolicy it owns, reaches them at the Service's ready EndpointSlice address (no
 * kube-proxy here), lists their tools once they answer initialize, and runs call them. A real node
 * is required: the node emulator cannot run images, so this file fails without one.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, finished, startAgentEnv, waitForRun, type AgentEnv, endpointFor } from '../harness/agent-env.ts';
import { clients, cluster, eventually, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { stepOf, toolResultsSent } from '../harness/tool-scenarios.ts';
import { clusterNodes, onRealNode } from '../harness/test-node.ts';
import { OperatorProcess } from '../harness/operator-process.ts';

const IMAGE = 'agentrun.dev/mcp-servers:2026.8.31';
const OPT = '/opt/mcp/node_modules';
const mcpApi = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'mcpservers' };

let env: AgentEnv;
let operator: OperatorProcess;
let apps: k8s.AppsV1Api;
let net: k8s.NetworkingV1Api;

beforeAll(async () => {
  if (!onRealNode()) {
    throw new Error(`managed MCP servers need a real node (images run in containers); this cluster has ${clusterNodes().mode}: `
      + `${clusterNodes().why}. Run the tests as root on Linux (AGENTRUN_NODE=real).`);
  }
  env = await startAgentEnv('mcp-managed', { startOperator: false });
  // Pod Security Admission enforces `restricted` here: a server pod that is not hardened is never created.
  await kubectl(['label', 'namespace', env.namespace, 'pod-security.kubernetes.io/enforce=restricted']);
  operator = new OperatorProcess({ kubeconfig: cluster().kubeconfig, namespaces: [env.namespace], extraArgs: ['--mcp-operator-namespace', 'agentrun-system'] });
  await operator.start();
  apps = clients().kc.makeApiClient(k8s.AppsV1Api);
  net = clients().kc.makeApiClient(k8s.NetworkingV1Api);
}, 120_000);
afterAll(async () => {
  // Unset when beforeAll failed (no real node).
  await (operator as OperatorProcess | undefined)?.stop();
  await (env as AgentEnv | undefined)?.close();
});

interface Condition { type: string; status: string; reason: string; message: string }
interface MCPServerView {
  metadata: { uid: string };
  status?: { conditions?: Condition[]; toolCount?: number; url?: string; discoveredTools?: { name: string }[];
    serverInfo?: { name?: string; protocolVersion?: string } };
}

const ready = (s: MCPServerView): Condition | undefined => s.status?.conditions?.find((c) => c.type === 'Ready');

async function getMCPServer(name: string): Promise<MCPServerView> {
  return await clients().custom.getNamespacedCustomObject({ ...mcpApi, namespace: env.namespace, name }) as MCPServerView;
}

async function applyManaged(name: string, managed: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  await kubectl(['apply', '-n', env.namespace, '-f', '-'], { input: JSON.stringify({
    apiVersion: 'agentrun.dev/v1alpha1', kind: 'MCPServer', metadata: { name }, spec: { managed, ...extra },
  }) });
}

async function waitReady(name: string, timeoutMs = 120_000): Promise<MCPServerView> {
  let last: MCPServerView | undefined;
  try {
    return await eventually(`MCPServer ${name} Ready`, async () => {
      last = await getMCPServer(name);
      return ready(last)?.status === 'True' ? last : undefined;
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${String(error)}\nlast Ready: ${JSON.stringify(last && ready(last))}\n${operator.tail(20)}`);
  }
}

const runSpec = async (key: string, tools: Record<string, unknown>[]): Promise<Record<string, unknown>> =>
  ({ model: { name: 'claude-test', endpointRef: { name: await endpointFor(env.namespace, env.model.url) } }, prompt: `${key} do the task`, tools });

const memoryServer = {
  image: IMAGE,
  command: ['node', `${OPT}/supergateway/dist/index.js`],
  args: ['--stdio', `node ${OPT}/@modelcontextprotocol/server-memory/dist/index.js`, '--outputTransport', 'streamableHttp',
    '--stateful', '--port', '8080', '--streamableHttpPath', '/mcp'],
  env: [{ name: 'MEMORY_FILE_PATH', value: '/tmp/memory.jsonl' }],
};


/** The Events recorded on an MCPServer, as `kubectl describe mcpserver` lists them. */
async function mcpServerEvents(name: string): Promise<{ type?: string; reason?: string; message?: string }[]> {
  const list = await clients().core.listNamespacedEvent({ namespace: env.namespace,
    fieldSelector: `involvedObject.kind=MCPServer,involvedObject.name=${name}` });
  return list.items.map((e) => ({ type: e.type, reason: e.reason, message: e.message }));
}

describe('managed MCP servers (real node, image agentrun.dev/mcp-servers)', () => {
  it('server-everything becomes Ready with its tools; the pod is hardened with no token; the NetworkPolicy admits only the operator', async () => {
    const started = Date.now();
    await applyManaged('everything', { image: IMAGE, port: 3001 });
    const server = await waitReady('everything');
    const readyMs = Date.now() - started;
    expect(server.status?.serverInfo).toMatchObject({ name: 'mcp-servers/everything', protocolVersion: '2025-11-25' });
    expect(server.status?.toolCount).toBeGreaterThanOrEqual(12);
    expect(server.status?.discoveredTools?.map((t) => t.name)).toContain('echo');
    expect(server.status?.url).toMatch(/^http:\/\/10\.\d+\.\d+\.\d+:3001\/mcp$/);
    console.log(`[mcp-managed] server-everything Ready in ${readyMs} ms after apply`);

    const deployment = await apps.readNamespacedDeployment({ name: 'mcp-everything', namespace: env.namespace });
    expect(deployment.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'MCPServer', name: 'everything', uid: server.metadata.uid, controller: true })]);
    expect(deployment.spec?.replicas).toBe(1);
    const pods = await clients().core.listNamespacedPod({ namespace: env.namespace, labelSelector: `agentrun.dev/mcp-server-uid=${server.metadata.uid}` });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0];
    expect(pod?.spec?.automountServiceAccountToken).toBe(false);
    expect(pod?.spec?.containers[0]?.volumeMounts?.map((m) => m.mountPath)).toEqual(['/tmp']);
    expect(pod?.spec?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod?.spec?.containers[0]?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, privileged: false, capabilities: { drop: ['ALL'] },
    });

    const policy = await net.readNamespacedNetworkPolicy({ name: 'mcp-everything', namespace: env.namespace });
    expect(policy.spec?.podSelector?.matchLabels).toEqual({ 'app.kubernetes.io/component': 'mcp-server', 'agentrun.dev/mcp-server-uid': server.metadata.uid });
    expect(policy.spec?.ingress).toEqual([{
      _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'agentrun-system' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'agentrun-operator' } } }],
      ports: [{ protocol: 'TCP', port: 3001 }],
    }]);
    const service = await clients().core.readNamespacedService({ name: 'mcp-everything', namespace: env.namespace });
    expect(service.spec?.ports?.[0]).toMatchObject({ port: 3001, targetPort: 3001 });
  });

  it('a run calls a managed server-everything tool end to end', async () => {
    await waitReady('everything');
    const KEY = '[mcp-managed-echo]', name = 'mcp-managed-echo';
    env.model.script(KEY, [{ content: [text('Echoing.'), toolUse('echo', { message: 'hello from the node' })] }, { content: [text('Done.')] }]);
    await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'ev', mcpServerRef: { name: 'everything' }, allow: ['echo'] }]));
    const run = await waitForRun(env.namespace, name, 'run to finish', finished, 60_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    expect(stepOf(run, 2)).toMatchObject({ kind: 'Tool', tool: 'echo', mcpServer: 'everything', outcome: 'Completed' });
    expect(toolResultsSent(env.model, KEY, 1)).toEqual([{ tool_use_id: stepOf(run, 2).toolUseId, content: 'Echo: hello from the node' }]);
  });

  it('server-memory through supergateway: a run writes the graph, and a second call reads it back', async () => {
    await applyManaged('memory', memoryServer, { tools: [{ name: 'read_graph', idempotent: true }] });
    const server = await waitReady('memory');
    expect(server.status?.discoveredTools?.map((t) => t.name)).toEqual(expect.arrayContaining(['create_entities', 'read_graph']));
    const KEY = '[mcp-managed-memory]', name = 'mcp-managed-memory';
    env.model.script(KEY, [
      { content: [toolUse('mem_create_entities', { entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }] })] },
      { content: [toolUse('mem_read_graph', {})] },
      { content: [text('Remembered.')] },
    ]);
    await createRun(env.namespace, name, await runSpec(KEY, [{ name: 'mem', mcpServerRef: { name: 'memory' }, allow: ['create_entities', 'read_graph'], prefix: 'mem_' }]));
    const run = await waitForRun(env.namespace, name, 'run to finish', finished, 60_000);
    expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
    const read = toolResultsSent(env.model, KEY, 2)[0];
    expect(String(read?.content)).toContain('wrote the first program');
    expect(String(read?.content)).toContain('Ada');
  });

  it('a tenant\'s edit of the owned Deployment is reverted', async () => {
    await waitReady('everything');
    const before = await apps.readNamespacedDeployment({ name: 'mcp-everything', namespace: env.namespace });
    await kubectl(['patch', 'deployment', 'mcp-everything', '-n', env.namespace, '--type=json', '-p',
      JSON.stringify([{ op: 'replace', path: '/spec/template/spec/automountServiceAccountToken', value: true }])]);
    await eventually('the Deployment to be put back', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'mcp-everything', namespace: env.namespace });
      return d.spec?.template.spec?.automountServiceAccountToken === false
        && (d.metadata?.generation ?? 0) > (before.metadata?.generation ?? 0) + 1 ? d : undefined;
    }, 30_000);
    // Only the tenant's edit was put back: what the apiserver defaults is not drift (no update loop).
    // The operator logs each change after its reconcile's writes: wait for the line, not just the write.
    const changed = () => operator.logs((l) => l.msg === 'managed MCP server object changed').map((l) => String(l.change))
      .filter((c) => c.includes('mcp-everything:'));
    await eventually('the revert logged', () => Promise.resolve(changed().some((c) => c.includes('reverted')) ? true : undefined), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(changed().sort()).toEqual([
      'Deployment mcp-everything: created',
      'Deployment mcp-everything: reverted a change at .spec.template.spec.automountServiceAccountToken',
      'NetworkPolicy mcp-everything: created', 'Service mcp-everything: created',
    ]);
    // The tenant reads why their edit vanished where they look: `kubectl describe mcpserver`.
    expect(await mcpServerEvents('everything')).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'DriftReverted',
      message: 'Deployment mcp-everything: reverted a change at .spec.template.spec.automountServiceAccountToken.' }));
  });

  it('an image that cannot be pulled gives Ready=False ImagePullFailed naming the image, promptly', async () => {
    const bad = 'agentrun.dev/no-such-mcp-image:0.0.1';
    const started = Date.now();
    await applyManaged('bad-image', { image: bad });
    const server = await eventually('Ready=False ImagePullFailed', async () => {
      const s = await getMCPServer('bad-image');
      return ready(s)?.reason === 'ImagePullFailed' ? s : undefined;
    }, 60_000);
    console.log(`[mcp-managed] ImagePullFailed reported ${Date.now() - started} ms after apply`);
    expect(ready(server)).toMatchObject({ status: 'False' });
    expect(ready(server)?.message).toContain(`image ${bad} cannot be pulled`);
    const event = await eventually('the ImagePullFailed Event', async () =>
      (await mcpServerEvents('bad-image')).find((e) => e.reason === 'ImagePullFailed'), 10_000);
    expect(event).toMatchObject({ type: 'Warning' });
    expect(event.message).toContain(`image ${bad} cannot be pulled`);
  });

  it('the apiserver refuses an MCPServer with both url and managed, saying what to fix (CEL)', async () => {
    const refused = await kubectl(['apply', '-n', env.namespace, '-f', '-'], { input: JSON.stringify({
      apiVersion: 'agentrun.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'both' },
      spec: { url: 'http://x/mcp', managed: { image: IMAGE } },
    }) }).then(() => '', (error: unknown) => String(error));
    expect(refused).toContain('set exactly one of url (a remote server) or managed (the operator runs it)');
  });

  it('deleting the MCPServer deletes its Deployment, Service and NetworkPolicy (ownerReferences)', async () => {
    await kubectl(['delete', 'mcpserver', 'bad-image', '-n', env.namespace, '--wait=true']);
    await eventually('owned objects gone', async () => {
      const left = [
        await apps.readNamespacedDeployment({ name: 'mcp-bad-image', namespace: env.namespace }).then(() => 'Deployment', () => undefined),
        await clients().core.readNamespacedService({ name: 'mcp-bad-image', namespace: env.namespace }).then(() => 'Service', () => undefined),
        await net.readNamespacedNetworkPolicy({ name: 'mcp-bad-image', namespace: env.namespace }).then(() => 'NetworkPolicy', () => undefined),
      ].filter(Boolean);
      return left.length === 0 ? true : undefined;
    }, 60_000);
  });
});
