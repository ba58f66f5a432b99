/**
 * The operator as it ships: an image built from the project's Dockerfile, unchanged, by buildah
 * (scripts/cluster/operator-image.sh; the base image is a local stand-in under the name the
 * Dockerfile uses), imported into the real node's containerd, and installed by the Helm chart as
 * a two-replica Deployment with its ServiceAccount (a real projected token), RBAC and metrics
 * Service. It runs a run to completion; then, mid-run, the leader's container is SIGKILLed and the
 * leader Pod deleted, and the run resumes and ends as an undisturbed one would, its tool run once.
 *
 * Real nodes only (vitest.config.ts). The pods reach the apiserver at the `kubernetes` Service
 * (10.0.0.1:443, DNAT to the apiserver: real-node.ts) and the mock model at the node IP.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, endpointFor, finished, PodCreations, recordingTool, waitForRun } from '../harness/agent-env.ts';
import { repoRoot } from '../harness/control-plane.ts';
import { clients, cluster, createNamespace, eventually, kubectl } from '../harness/kube.ts';
import { startMockModelServer, text, toolUse, type MockModelServer } from '../harness/mock-model-server.ts';
import { crictl, importImage, readRealNodes } from '../harness/real-node.ts';
import { CHART, helm, helmOk } from '../harness/ship.ts';
import { clusterNodes, prepareToolSignals } from '../harness/test-node.ts';
import { executionsOf, gated, openGate, scenarioFiles, waitForExecutions } from '../harness/tool-scenarios.ts';

const execFileAsync = promisify(execFile);
const TAG = '0.1.0-local';
const KEY = 'sk-ant-operator-pod-test';
const suffix = randomBytes(3).toString('hex');
const release = `oppod-${suffix}`;
let releaseNs = '';
let ns = '';
let model: MockModelServer;
let pods: PodCreations;

beforeAll(async () => {
  // Cached by source hash: `npm run cluster:install` / .ci/run built it already, unless src changed.
  const { stdout } = await execFileAsync('bash', [join(repoRoot, 'scripts', 'cluster', 'operator-image.sh'), TAG], { maxBuffer: 16 * 1024 * 1024 });
  const archive = stdout.trim().split('\n').at(-1) ?? '';
  for (const node of (await readRealNodes(cluster().stateDir))?.nodes ?? []) await importImage(node, archive);
  await prepareToolSignals();
  model = await startMockModelServer({ apiKeys: [KEY], host: clusterNodes().hostIP });
  ns = await createNamespace('oppod-runs');
  releaseNs = await createNamespace('oppod-system');
  pods = await PodCreations.watch(ns);
  await kubectl(['create', 'secret', 'generic', 'anthropic', '-n', ns, `--from-literal=api-key=${KEY}`]);
  await helmOk(cluster(), ['install', release, CHART, '-n', releaseNs,
    '--set', 'image.repository=agentrun-operator', '--set', `image.tag=${TAG}`, '--set', 'image.pullPolicy=Never',
    '--set', `watchNamespaces={${ns}}`, '--set', 'admissionPolicies.install=never', '--set', 'operator.requireApproverIdentity=false',
    '--wait', '--timeout', '180s']);
}, 1_200_000);

afterAll(async () => {
  pods.stop();
  await helm(cluster(), ['uninstall', release, '-n', releaseNs, '--wait', '--timeout', '60s']);
  await model.close();
  for (const n of [ns, releaseNs]) await clients().core.deleteNamespace({ name: n }).catch(() => undefined);
});

async function operatorPods(): Promise<{ name: string; ready: boolean; restarts: number; containerId: string }[]> {
  const list = await clients().core.listNamespacedPod({ namespace: releaseNs, labelSelector: 'app.kubernetes.io/name=agentrun-operator' });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => {
    const status = p.status?.containerStatuses?.[0];
    return { name: p.metadata?.name ?? '', ready: status?.ready ?? false, restarts: status?.restartCount ?? 0, containerId: (status?.containerID ?? '').replace(/^containerd:\/\//, '') };
  });
}

/** The replica holding the Lease, once it holds it. */
async function leader(): Promise<string> {
  return eventually('a leader', async () => {
    const leases = await kubectl(['get', 'lease', '-n', releaseNs, '-o', 'jsonpath={.items[*].spec.holderIdentity}']);
    const holder = leases.stdout.trim();
    return (await operatorPods()).find((p) => holder.includes(p.name))?.name;
  }, 60_000);
}

async function oneToolRun(key: string, name: string, container: Record<string, unknown>): Promise<unknown> {
  model.script(key, [{ content: [text('Working.'), toolUse('work', { n: 1 })] }, { content: [text(`${name} finished`)] }]);
  return createRun(ns, name, {
    model: { name: 'claude-test', endpointRef: { name: await endpointFor(ns, model.url, { name: 'anthropic' }) } }, prompt: `${key} do the work`,
    tools: [{ name: 'work', description: 'Works', container }],
  });
}

describe('the operator installed by Helm, running as a Pod of its own image', () => {
  it('two replicas run from the locally built image as the chart\'s ServiceAccount; one leads', async () => {
    const replicas = await operatorPods();
    expect(replicas).toHaveLength(2);
    expect(replicas.every((p) => p.ready)).toBe(true);
    const pod = await clients().core.readNamespacedPod({ namespace: releaseNs, name: replicas[0]?.name ?? '' });
    expect(pod.spec?.containers[0]?.image).toBe(`agentrun-operator:${TAG}`);
    expect(pod.status?.containerStatuses?.[0]?.imageID).toMatch(/sha256:/);
    expect(pod.spec?.serviceAccountName).toMatch(/agentrun-operator/);
    expect(JSON.stringify(pod.spec?.volumes ?? [])).toContain('serviceAccountToken');
    await leader();
  });

  it('runs a run to completion', async () => {
    const files = await scenarioFiles(ns, 'plain');
    await oneToolRun('[oppod-plain]', 'plain', recordingTool(files.execLog, 'echo "ran in $HOSTNAME"'));
    const run = await waitForRun(ns, 'plain', 'plain to finish', finished, 90_000);
    expect(run.status?.phase, run.status?.message).toBe('Succeeded');
    expect(run.status?.result).toBe('plain finished');
    expect(await executionsOf(files.execLog)).toHaveLength(1);
  });

  it('the leader\'s container SIGKILLed, then the leader Pod deleted, mid-run: the run resumes, its tool ran once', async () => {
    const files = await scenarioFiles(ns, 'survivor');
    await oneToolRun('[oppod-survivor]', 'survivor', recordingTool(files.execLog, gated(files.gate, 'echo survived')));
    await waitForExecutions(files.execLog, 1, 90_000);

    // 1. SIGKILL the leader's container process (what an OOM kill or a crash does); kubelet restarts it.
    const first = await leader();
    const target = (await operatorPods()).find((p) => p.name === first);
    const node = (await readRealNodes(cluster().stateDir))?.nodes[0];
    if (!target || !node) throw new Error('no leader pod or node');
    const inspect = JSON.parse(await crictl(node, ['inspect', target.containerId])) as { info?: { pid?: number } };
    const pid = inspect.info?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await eventually('the killed container to be restarted', async () =>
      ((await operatorPods()).find((p) => p.name === first)?.restarts ?? 0) >= 1 ? true : undefined, 90_000);

    // 2. Delete whichever replica leads now; the Deployment replaces it.
    const second = await leader();
    await clients().core.deleteNamespacedPod({ namespace: releaseNs, name: second });
    await eventually('a replacement pod', async () => ((await operatorPods()).some((p) => p.name !== first && p.name !== second) ? true : undefined), 90_000);

    await openGate(files.gate);
    const run = await waitForRun(ns, 'survivor', 'survivor to finish', finished, 180_000);
    expect(run.status?.phase, run.status?.message).toBe('Succeeded');
    expect(run.status?.result).toBe('survivor finished');
    expect(run.status?.steps?.map((s) => `${s.id}:${s.kind}:${s.phase}`)).toEqual(['1:Model:Succeeded', '2:Tool:Succeeded', '3:Model:Succeeded']);
    expect(await executionsOf(files.execLog)).toHaveLength(1);
    expect(pods.names().filter((n) => n.startsWith('survivor-s'))).toEqual(['survivor-s2-a1']);
    await leader();
  }, 400_000);
});
