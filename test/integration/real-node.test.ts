/**
 * What only a real kubelet and container runtime do, end to end through the operator, in a
 * namespace that enforces Pod Security Admission `restricted`: images that cannot be pulled, a
 * missing Secret, an OOM kill, a pod no node takes, a kubelet SIGKILLed and restarted mid-tool;
 * and that a group of real nodes leaves this machine as it found it.
 *
 * Real nodes only: vitest.config.ts leaves this file out when the cluster runs the node emulator
 * (AGENTRUN_NODE=emulator, or not root), and the README says so. A node that cannot start fails
 * the whole run in global-setup.ts; nothing here skips.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { MOCK_ENDPOINT, createRun, finished, patchRunSpec, recordingTool, startAgentEnv, waitForRun, type AgentEnv } from '../harness/agent-env.ts';
import { cgroupHierarchies, mountPoints, takeHostSnapshot } from '../harness/host-snapshot.ts';
import { clients, cluster, eventually, kubectl } from '../harness/kube.ts';
import { toolUse } from '../harness/mock-model-server.ts';
import { FINAL_ANSWER, oneToolCall } from '../harness/model-scenarios.ts';
import { readRealNodes, restartKubelet, startRealNodes, stopKubelet, stopRealNodes } from '../harness/real-node.ts';
import { clusterNodes, losableNode } from '../harness/test-node.ts';
import {
  PodHistory, executionsOf, gated, openGate, scenarioFiles, stepOf, toolResultsSent, waitForExecutions, type ReceivedToolResult,
} from '../harness/tool-scenarios.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

let env: AgentEnv;
let history: PodHistory;
beforeAll(async () => {
  env = await startAgentEnv('realnode');
  await kubectl(['label', 'namespace', env.namespace, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
  history = await PodHistory.watch(env.namespace);
});
afterAll(async () => {
  history.stop();
  await env.close();
});

function runSpec(key: string, tools: readonly Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} do the task`, tools, ...extra };
}

async function succeededAfterTool(name: string, timeoutMs = 60_000): Promise<AgentRun> {
  const run = await waitForRun(env.namespace, name, `run ${name} to finish`, finished, timeoutMs);
  expect(run.status?.phase, JSON.stringify(run.status?.steps)).toBe('Succeeded');
  expect(run.status?.result).toBe(FINAL_ANSWER);
  expect(run.status?.steps?.map((s) => `${s.id}:${s.kind}`)).toEqual(['1:Model', '2:Tool', '3:Model']);
  return run;
}

function onlyResult(key: string): ReceivedToolResult {
  const results = toolResultsSent(env.model, key, 1);
  expect(results).toHaveLength(1);
  const [result] = results;
  if (!result) throw new Error('no tool_result');
  return result;
}

describe('real node', () => {
  it('the test cluster runs real nodes, and PSA restricted is enforced on this namespace: a non-compliant pod is refused', async () => {
    expect(clusterNodes().mode).toBe('real');
    const node = await clients().core.readNode({ name: clusterNodes().names[0] ?? '' });
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/2\./);
    expect(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address).toBe(clusterNodes().hostIP);
    await expect(clients().core.createNamespacedPod({ namespace: env.namespace, body: {
      metadata: { name: 'privileged' }, spec: { containers: [{ name: 'x', image: 'busybox:1.37', securityContext: { privileged: true } }] },
    } })).rejects.toThrow(/violates PodSecurity\W+restricted:latest/);
  });

  it('a tool pod runs in a container under PSA restricted: UID 65532, no capabilities, no_new_privs, seccomp, read-only root', async () => {
    const name = 'hardened', KEY = '[rn-hardened]';
    const files = await scenarioFiles(env.namespace, name);
    oneToolCall(KEY, env.model, toolUse('whoami', {}));
    await createRun(env.namespace, name, runSpec(KEY, [{
      name: 'whoami', description: 'Who am I',
      container: recordingTool(files.execLog,
        'id -u; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\\t " " "; touch /root-write 2>/dev/null && echo rootfs-writable || echo rootfs-read-only; echo data > /tmp/x && echo tmp-writable'),
    }]));
    await succeededAfterTool(name);
    const lines = onlyResult(KEY).content.trim().split('\n');
    expect(lines).toEqual(['65532', 'CapEff: 0000000000000000', 'NoNewPrivs: 1', 'Seccomp: 2', 'rootfs-read-only', 'tmp-writable']);
    expect(await executionsOf(files.execLog)).toHaveLength(1);
  });

  it.each([
    ['an image that does not exist', 'busybox:0.0-does-not-exist', /ErrImagePull|ImagePullBackOff/],
    ['an invalid image name', 'Not/A:Valid Image', /InvalidImageName/],
  ])('%s fails the step promptly (ImagePullFailed), naming the image, not as a timeout', async (_what, image, reason) => {
    const name = `pull-${randomBytes(2).toString('hex')}`, KEY = `[rn-${name}]`;
    oneToolCall(KEY, env.model, toolUse('fetch', {}));
    const started = Date.now();
    await createRun(env.namespace, name, runSpec(KEY, [{ name: 'fetch', description: 'Fetch', timeout: '10m', container: { image, command: ['true'] } }]));
    const run = await succeededAfterTool(name);
    expect(Date.now() - started).toBeLessThan(45_000);
    expect(stepOf(run, 2)).toMatchObject({ tool: 'fetch', phase: 'Failed', outcome: 'ImagePullFailed', attempt: 1 });
    const result = onlyResult(KEY);
    expect(result.is_error).toBe(true);
    expect(result.content).toContain(`"${image}"`);
    expect(result.content).toMatch(reason);
    expect(result.content).not.toContain('timeout');
    await eventually('the pod to be deleted', async () => ((await clients().core.listNamespacedPod({ namespace: env.namespace, labelSelector: `agentrun.dev/run=${name}` })).items.length === 0 ? true : undefined));
  });

  it('a missing Secret fails the step at once (ContainerConfigError) with the kubelet\'s message', async () => {
    const name = 'no-secret', KEY = '[rn-no-secret]';
    oneToolCall(KEY, env.model, toolUse('deploy', {}));
    await createRun(env.namespace, name, runSpec(KEY, [{
      name: 'deploy', description: 'Deploy', container: {
        image: 'busybox:1.37', command: ['sh', '-c', 'echo "$TOKEN"'],
        env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'deploy-token', key: 'token' } } }],
      },
    }]));
    const run = await succeededAfterTool(name);
    expect(stepOf(run, 2)).toMatchObject({ outcome: 'ContainerConfigError', phase: 'Failed' });
    expect(onlyResult(KEY).content).toContain('CreateContainerConfigError: secret "deploy-token" not found');
  });

  it('a tool over its memory limit is OOM-killed by the kernel; the model is told, the tool is not re-run', async () => {
    const name = 'oom', KEY = '[rn-oom]';
    const files = await scenarioFiles(env.namespace, name);
    oneToolCall(KEY, env.model, toolUse('hog', {}));
    await createRun(env.namespace, name, runSpec(KEY, [{
      name: 'hog', description: 'Uses memory',
      // dd's 96 MiB block buffer is filled by the read: far over the 24Mi limit.
      container: { ...recordingTool(files.execLog, 'echo allocating; dd if=/dev/zero of=/dev/null bs=96M count=4'), resources: { limits: { memory: '24Mi' } } },
    }]));
    const run = await succeededAfterTool(name);
    expect(stepOf(run, 2)).toMatchObject({ outcome: 'PodLost', phase: 'Failed', attempt: 1 });
    const result = onlyResult(KEY);
    expect(result.content).toContain('ran out of memory');
    const pod = history.all(`${name}-s2-a1`).map((p) => p.status?.containerStatuses?.[0]?.state?.terminated).find((t) => t !== undefined);
    expect(pod).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
    expect(await executionsOf(files.execLog)).toHaveLength(1);
  });

  it('a tool pod no node can take waits, saying Unschedulable with the scheduler\'s message; cancel ends it', async () => {
    const name = 'nowhere', KEY = '[rn-nowhere]';
    oneToolCall(KEY, env.model, toolUse('wait', {}));
    await createRun(env.namespace, name, runSpec(KEY, [{ name: 'wait', description: 'Wait', container: { image: 'busybox:1.37', command: ['true'] } }],
      { toolPodDefaults: { nodeSelector: { 'agentrun.dev/no-such-pool': 'x' } } }));
    const waiting = await waitForRun(env.namespace, name, 'Unschedulable in waitingFor', (r) => (r.status?.waitingFor ?? '').includes('Unschedulable'));
    expect(waiting.status?.waitingFor).toMatch(/^pod nowhere-s2-a1 to be scheduled \(Unschedulable: 0\/\d+ nodes are available/);
    expect(waiting.status?.message).toContain('Unschedulable');
    expect(waiting.status?.phase).toBe('Running');
    await patchRunSpec(env.namespace, name, { cancel: true });
    const run = await waitForRun(env.namespace, name, 'Cancelled', (r) => r.status?.phase === 'Cancelled');
    expect(stepOf(run, 2)).toMatchObject({ outcome: 'Cancelled' });
  });

  it('kubelet SIGKILLed while a tool runs, restarted: the container kept running, the tool finishes once', async () => {
    const name = 'kubelet-restart', KEY = '[rn-kubelet-restart]';
    // A node of its own: restarting the shared node's kubelet disturbed other test files' pods.
    const node = await losableNode(env.namespace, undefined);
    try {
      const files = await scenarioFiles(env.namespace, name);
      oneToolCall(KEY, env.model, toolUse('work', {}));
      await createRun(env.namespace, name, runSpec(KEY, [{
        name: 'work', description: 'Works', container: recordingTool(files.execLog, gated(files.gate, 'echo "finished on $HOSTNAME"')),
      }], { toolPodDefaults: node.toolPodDefaults }));
      await waitForExecutions(files.execLog, 1);
      await stopKubelet(cluster().stateDir, node.name, 'SIGKILL', node.group);
      // The tool finishes while its kubelet is dead; the restarted kubelet adopts and reports it.
      await openGate(files.gate);
      await new Promise((r) => setTimeout(r, 3_000));
      await restartKubelet(cluster(), node.name, node.group);
      const run = await succeededAfterTool(name, 90_000);
      expect(stepOf(run, 2)).toMatchObject({ outcome: 'Completed', attempt: 1 });
      expect(onlyResult(KEY).content.trim()).toBe(`finished on ${name}-s2-a1`);
      expect(await executionsOf(files.execLog)).toHaveLength(1);
      expect(env.pods.names().filter((n) => n.startsWith(`${name}-s`))).toEqual([`${name}-s2-a1`]);
    } finally {
      await node.close();
    }
  }, 180_000);

  it('a group of real nodes, stopped, leaves nothing behind: its link, address, bridge, cgroups, mounts and state', async () => {
    const group = `snap-${randomBytes(2).toString('hex')}`;
    const before = await takeHostSnapshot();
    // Tainted: only the probe (bound by nodeName) runs here, no other test's pod is lost at teardown.
    const started = await startRealNodes(cluster(), { group, namePrefix: group, count: 1, taints: [`agentrun.dev/test-pool=${group}:NoSchedule`] });
    const node = started.nodes[0];
    if (!node) throw new Error('no node started');
    // One pod through the whole path: scheduler → kubelet → containerd → runc, CNI bridge and netns.
    const ns = env.namespace;
    await clients().core.createNamespacedPod({ namespace: ns, body: {
      metadata: { name: `${group}-probe` },
      spec: {
        nodeName: node.name, restartPolicy: 'Never', securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{ name: 'probe', image: 'busybox:1.37', command: ['sh', '-c', 'ip -4 addr show eth0 | grep -o "inet [0-9.]*"'],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      },
    } });
    const pod = await eventually('the probe pod to succeed', async () => {
      const p = await clients().core.readNamespacedPod({ namespace: ns, name: `${group}-probe` });
      return p.status?.phase === 'Succeeded' ? p : undefined;
    }, 60_000);
    expect(pod.status?.podIP).toMatch(new RegExp(`^10\\.235\\.${started.slot * 4}\\.`));
    const during = await takeHostSnapshot();
    expect(during.links).toEqual(expect.arrayContaining([started.link, node.bridge]));
    expect(during.cgroups.filter((c) => c.endsWith(node.cgroupRoot)).length).toBeGreaterThan(0);

    await stopRealNodes(cluster().stateDir, group);
    await clients().core.deleteNamespacedPod({ namespace: ns, name: `${group}-probe`, gracePeriodSeconds: 0 }).catch(() => undefined);
    await clients().core.deleteNode({ name: node.name });
    const after = await takeHostSnapshot();
    const ours = (item: string) => item.includes(started.link) || item.includes(node.bridge) || item.includes(node.cgroupRoot)
      || item.includes(node.dir) || item.includes(`10.234.${started.slot}.`) || item.includes(`10.235.${started.slot * 4}.`);
    expect(after.links.filter(ours)).toEqual([]);
    expect(after.addresses.filter(ours)).toEqual([]);
    expect(after.routes.filter(ours)).toEqual([]);
    expect(after.mounts.filter(ours)).toEqual([]);
    expect(after.cgroups.filter(ours)).toEqual([]);
    expect(before.links.filter(ours)).toEqual([]);
    // Machine-wide state (sysctls, hard-coded paths) belongs to the cluster's own nodes while they
    // run; global-setup.ts compares the whole machine before the cluster and after its teardown.
    expect(after.sysctls).toEqual(before.sysctls);
    expect(existsSync(node.dir)).toBe(false);
    expect(await readRealNodes(cluster().stateDir, group)).toBeUndefined();
    for (const hierarchy of await cgroupHierarchies()) expect(existsSync(join(hierarchy, node.cgroupRoot))).toBe(false);
    expect((await mountPoints()).filter((m) => m.startsWith(node.dir))).toEqual([]);
  }, 150_000);
});
