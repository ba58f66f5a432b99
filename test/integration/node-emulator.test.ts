/**
 * The node emulator against the real control plane: pods are bound and run as local processes,
 * reported as a kubelet would, their logs served through the apiserver; deletion, deadlines,
 * restarts and a node failure behave as on a real node.
 */
import * as k8s from '@kubernetes/client-node';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { issueClientCertificate } from '../harness/control-plane.ts';
import { clients, cluster, createNamespace, eventually, kubectl, statusCode } from '../harness/kube.ts';
import { EMULATOR_SCHEDULER_NAME, EMULATOR_TAINT, NodeEmulator, type EmulatorLog } from '../harness/node-emulator.ts';

const { core, kc } = clients();
/** AGENTRUN_TEST_VERBOSE=1 shows what the emulated kubelets do. */
const log: EmulatorLog | undefined = process.env.AGENTRUN_TEST_VERBOSE
  ? (message, fields) => { console.log(`[node-emulator] ${message}`, fields ?? ''); }
  : undefined;

let namespace = '';
let emulator: NodeEmulator | undefined;

beforeAll(async () => {
  namespace = await createNamespace('emu');
  emulator = new NodeEmulator({ ...cluster(), nodeName: `node-${namespace}`, namespaces: [namespace], log });
  await emulator.start();
});

afterAll(async () => {
  await emulator?.stop();
});

/** The emulated node of this file's namespace. */
function kubelet(): NodeEmulator {
  if (!emulator) throw new Error('the node emulator did not start');
  return emulator;
}

interface PodOptions {
  readonly container?: Omit<k8s.V1Container, 'name'>;
  readonly spec?: Omit<k8s.V1PodSpec, 'containers'>;
}

/** A pod whose one container `main` runs `command`; restartPolicy Never unless `spec` says otherwise. */
function commandPod(name: string, command: string[], options: PodOptions = {}): k8s.V1Pod {
  return {
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 5,
      // With real nodes in the cluster, kube-scheduler leaves these pods to the emulator.
      schedulerName: EMULATOR_SCHEDULER_NAME,
      ...options.spec,
      containers: [{ image: 'busybox:1.36', command, ...options.container, name: 'main' }],
    },
  };
}

function shellPod(name: string, script: string, options: PodOptions = {}): k8s.V1Pod {
  return commandPod(name, ['sh', '-c', script], options);
}

async function createPod(pod: k8s.V1Pod, ns = namespace): Promise<string> {
  await core.createNamespacedPod({ namespace: ns, body: pod });
  return pod.metadata?.name ?? '';
}

async function podWhen(name: string, what: string, check: (pod: k8s.V1Pod) => boolean, ns = namespace): Promise<k8s.V1Pod> {
  return eventually(`pod ${name} ${what}`, async () => {
    const pod = await core.readNamespacedPod({ name, namespace: ns });
    return check(pod) ? pod : undefined;
  });
}

const finished = (pod: k8s.V1Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
const running = (pod: k8s.V1Pod) => pod.status?.phase === 'Running';

function statusOf(pod: k8s.V1Pod, container = 'main'): k8s.V1ContainerStatus {
  const all = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const status = all.find((s) => s.name === container);
  if (!status) throw new Error(`no status for container ${container}: ${JSON.stringify(pod.status)}`);
  return status;
}

function condition(pod: k8s.V1Pod, type: string): k8s.V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidOf(node: NodeEmulator, pod: string, ns = namespace): number {
  const found = node.runningProcesses().find((p) => p.namespace === ns && p.pod === pod);
  if (!found) throw new Error(`no process for pod ${pod}`);
  return found.pid;
}

async function podLog(name: string, options: { limitBytes?: number; tailLines?: number; previous?: boolean } = {}): Promise<string> {
  return core.readNamespacedPodLog({ name, namespace, container: 'main', ...options });
}

/** Waits for a condition of local state (a process, a stream) to hold. */
async function until(what: string, holds: () => boolean): Promise<void> {
  await eventually(what, () => Promise.resolve(holds() || undefined));
}

async function gone(name: string, ns = namespace): Promise<true | undefined> {
  try {
    await core.readNamespacedPod({ name, namespace: ns });
    return undefined;
  } catch (error) {
    if (statusCode(error) === 404) return true;
    throw error;
  }
}

describe('node emulator', () => {
  test('registers a Ready node whose kubelet endpoint is its log server', async () => {
    const node = await core.readNode({ name: kubelet().nodeName });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'KubeletReady' });
    expect(node.status?.nodeInfo).toMatchObject({ kubeletVersion: 'v1.34.4-agentrun-emulator', operatingSystem: 'linux' });
    expect(node.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBe(kubelet().port);
    expect(node.status?.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    expect(node.status?.allocatable).toMatchObject({ cpu: '2', memory: '8Gi', pods: '110' });
  });

  test('a failing container ends the pod Failed with its exit code; kubectl logs shows stdout and stderr', async () => {
    const name = await createPod(shellPod('fails', 'echo hello; echo oops >&2; exit 3'));
    const pod = await podWhen(name, 'finished', finished);

    expect(pod.spec?.nodeName).toBe(kubelet().nodeName);
    expect(pod.status?.phase).toBe('Failed');
    expect(statusOf(pod).state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    const { stdout } = await kubectl(['logs', '-n', namespace, name]);
    expect(stdout).toBe('hello\noops\n');
  });

  test('a successful container ends the pod Succeeded, reported in the kubelet\'s shape', async () => {
    const name = await createPod(shellPod('succeeds', 'echo fine'));
    const pod = await podWhen(name, 'finished', finished);

    expect(pod.status).toMatchObject({ phase: 'Succeeded', hostIP: '127.0.0.1', podIP: '127.0.0.1' });
    expect(pod.status?.startTime).toBeInstanceOf(Date);
    const terminated = statusOf(pod).state?.terminated;
    expect(terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(terminated?.startedAt).toBeInstanceOf(Date);
    expect(terminated?.finishedAt).toBeInstanceOf(Date);
    expect(condition(pod, 'Ready')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
    expect(condition(pod, 'Initialized')?.status).toBe('True');
    expect(condition(pod, 'PodScheduled')?.status).toBe('True');
  });

  test('a running pod is reported Running and ready; deleting it kills its process and removes the object', async () => {
    const name = await createPod(commandPod('sleeper', ['sleep', '300']));
    const pod = await podWhen(name, 'running', running);
    const status = statusOf(pod);
    expect(status).toMatchObject({ ready: true, started: true, restartCount: 0 });
    expect(status.state?.running?.startedAt).toBeInstanceOf(Date);
    for (const type of ['Initialized', 'ContainersReady', 'Ready', 'PodScheduled']) expect(condition(pod, type)?.status).toBe('True');
    const pid = pidOf(kubelet(), name);
    expect(alive(pid)).toBe(true);

    await core.deleteNamespacedPod({ name, namespace });

    await eventually('the pod object to disappear', () => gone(name));
    await until(`process ${pid} to end`, () => !alive(pid));
  });

  test('the termination message file, or the log tail with FallbackToLogsOnError, becomes the message', async () => {
    const written = await createPod(shellPod('writes-message', 'printf result-42 > /dev/termination-log'));
    const fallback = await createPod(shellPod('falls-back', 'echo first; echo last words; exit 1',
      { container: { terminationMessagePolicy: 'FallbackToLogsOnError' } }));
    const silent = await createPod(shellPod('fails-silently', 'echo ignored; exit 1'));

    expect(statusOf(await podWhen(written, 'finished', finished)).state?.terminated?.message).toBe('result-42');
    expect(statusOf(await podWhen(fallback, 'finished', finished)).state?.terminated?.message).toBe('first\nlast words\n');
    expect(statusOf(await podWhen(silent, 'finished', finished)).state?.terminated?.message).toBeUndefined();
  });

  test('env from a value, a Secret and a field, and a ConfigMap volume at its mount path reach the process', async () => {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'greeting' }, data: { hello: 'hi from a configmap' } } });
    const name = await createPod(shellPod('env', 'echo "$PLAIN $FROM_SECRET $POD_NAME"; cat "$GREETING_FILE"', {
      container: {
        env: [
          { name: 'PLAIN', value: 'plain-value' },
          { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'GREETING_FILE', value: '/etc/greeting/hello' },
        ],
        volumeMounts: [{ name: 'greeting', mountPath: '/etc/greeting' }],
      },
      spec: { volumes: [{ name: 'greeting', configMap: { name: 'greeting' } }] },
    }));

    // The Secret does not exist yet: the container waits, as with a real kubelet.
    const waiting = await podWhen(name, 'waiting for its Secret',
      (pod) => statusOf(pod).state?.waiting?.reason === 'CreateContainerConfigError');
    expect(waiting.status?.phase).toBe('Pending');
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'creds' }, stringData: { token: 's3cret' } } });

    expect((await podWhen(name, 'finished', finished)).status?.phase).toBe('Succeeded');
    expect(await podLog(name)).toBe('plain-value s3cret env\nhi from a configmap');
  });

  test('a pod past its activeDeadlineSeconds is killed and fails with DeadlineExceeded', async () => {
    const name = await createPod(commandPod('overdue', ['sleep', '300'], { spec: { activeDeadlineSeconds: 3 } }));
    await podWhen(name, 'running', running);
    const pid = pidOf(kubelet(), name);

    const pod = await podWhen(name, 'finished', finished, namespace);
    expect(pod.status).toMatchObject({
      phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline',
    });
    expect(statusOf(pod).state?.terminated).toMatchObject({ exitCode: 143, reason: 'Error' });
    expect(alive(pid)).toBe(false);
  });

  test('logs through the apiserver honour limitBytes and tailLines', async () => {
    const name = await createPod(shellPod('counts', 'printf "one\\ntwo\\nthree\\n"'));
    await podWhen(name, 'finished', finished);

    expect(await podLog(name)).toBe('one\ntwo\nthree\n');
    expect(await podLog(name, { limitBytes: 5 })).toBe('one\nt');
    expect(await podLog(name, { tailLines: 2 })).toBe('two\nthree\n');
    expect(await podLog(name, { tailLines: 2, limitBytes: 3 })).toBe('two');
  });

  test('follow streams what a running container writes until it exits', async () => {
    const gate = await mkdtemp(join(tmpdir(), 'emu-gate-'));
    try {
      const name = await createPod(shellPod('follows', 'echo start; while [ ! -e /gate/open ]; do sleep 0.1; done; echo end', {
        container: { volumeMounts: [{ name: 'gate', mountPath: '/gate' }] },
        spec: { volumes: [{ name: 'gate', hostPath: { path: gate } }] },
      }));
      await podWhen(name, 'running', running);
      const output = new PassThrough();
      let text = '';
      output.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      const ended = once(output, 'end');

      await new k8s.Log(kc).log(namespace, name, 'main', output, { follow: true });
      await until('the first line to stream', () => text === 'start\n');
      await writeFile(join(gate, 'open'), '');
      await ended;

      expect(text).toBe('start\nend\n');
    } finally {
      await rm(gate, { recursive: true, force: true });
    }
  });

  test('the log server wants a certificate from the cluster CA and answers 404 for an unknown pod', async () => {
    const identity = await issueClientCertificate(cluster(), 'emu-log-reader');
    const url = `https://127.0.0.1:${kubelet().port}/containerLogs/${namespace}/no-such-pod/main`;

    const answer = await httpsGet(url, { ca: cluster().caCert, cert: identity.cert, key: identity.key });
    expect(answer.status).toBe(404);
    expect(answer.body).toContain('no-such-pod');
    await expect(httpsGet(url, { ca: cluster().caCert })).rejects.toThrow();
  });

  test('restartPolicy OnFailure restarts a failed container; previous logs show the first run', async () => {
    const name = await createPod(shellPod('flaky',
      'if [ -e /scratch/ran ]; then echo second run; exit 0; fi; touch /scratch/ran; echo first run; exit 1', {
        container: { volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] },
        spec: { restartPolicy: 'OnFailure', volumes: [{ name: 'scratch', emptyDir: {} }] },
      }));
    const pod = await podWhen(name, 'finished', finished);

    expect(pod.status?.phase).toBe('Succeeded');
    const status = statusOf(pod);
    expect(status.restartCount).toBe(1);
    expect(status.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(status.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(await podLog(name)).toBe('second run\n');
    expect(await podLog(name, { previous: true })).toBe('first run\n');
  });

  test('init containers complete before the containers start', async () => {
    const shared = { volumeMounts: [{ name: 'shared', mountPath: '/shared' }] };
    const name = await createPod(shellPod('initialised', 'cat /shared/note', {
      container: shared,
      spec: {
        volumes: [{ name: 'shared', emptyDir: {} }],
        initContainers: [{ name: 'prepare', image: 'busybox:1.36', command: ['sh', '-c', 'echo prepared > /shared/note'], ...shared }],
      },
    }));
    const pod = await podWhen(name, 'finished', finished);

    expect(pod.status?.phase).toBe('Succeeded');
    expect(statusOf(pod, 'prepare')).toMatchObject({ ready: true, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
    expect(await podLog(name)).toBe('prepared\n');
  });

  test('a container without a command cannot run here and says so', async () => {
    const name = await createPod({ metadata: { name: 'no-command' }, spec: { restartPolicy: 'Never', schedulerName: EMULATOR_SCHEDULER_NAME, containers: [{ name: 'main', image: 'nginx:1.27' }] } });
    const pod = await podWhen(name, 'finished', finished);

    expect(pod.status?.phase).toBe('Failed');
    const terminated = statusOf(pod).state?.terminated;
    expect(terminated?.reason).toBe('EmulatorNeedsCommand');
    expect(terminated?.message).toMatch(/needs a command/);
  });

  test('a node failure kills the processes silently, taints the node and the taint manager deletes its pods', async () => {
    // A namespace and node of its own: this emulator dies, and must not bind the other tests' pods.
    const ns = await createNamespace('emu-fail');
    const nodeName = `node-${ns}`;
    const doomed = new NodeEmulator({ ...cluster(), nodeName, namespaces: [ns], log });
    const events: { type: string; pod: k8s.V1Pod }[] = [];
    let watch: AbortController | undefined;
    try {
      await doomed.start();
      const name = await createPod(commandPod('victim', ['sleep', '300']), ns);
      await podWhen(name, 'running', running, ns);
      const pid = pidOf(doomed, name, ns);
      watch = await new k8s.Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, {},
        (type: string, pod: k8s.V1Pod) => { events.push({ type, pod }); }, () => undefined);

      await doomed.simulateNodeFailure();

      expect(alive(pid)).toBe(false);
      const node = await core.readNode({ name: nodeName });
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'Unknown', reason: 'NodeStatusUnknown' });
      expect(node.spec?.taints?.map((t) => `${t.key}:${t.effect}`))
        .toEqual(expect.arrayContaining(['node.kubernetes.io/unreachable:NoExecute', 'node.kubernetes.io/unreachable:NoSchedule']));
      expect(await gone(name, ns)).toBe(true);
      await until('the DELETED event', () => events.some((e) => e.type === 'DELETED'));
      const disrupted = events.find((e) => e.pod.status?.conditions?.some((c) => c.type === 'DisruptionTarget'));
      expect(condition(disrupted?.pod ?? {}, 'DisruptionTarget')).toMatchObject({ status: 'True', reason: 'DeletionByTaintManager' });
      // A dead kubelet reports nothing: the pod never looked finished.
      expect(events.map((e) => e.pod.status?.phase)).not.toContain('Failed');

      // A new kubelet with the same name brings the node back.
      const revived = new NodeEmulator({ ...cluster(), nodeName, namespaces: [ns], log });
      try {
        await revived.start();
        const back = await core.readNode({ name: nodeName });
        expect(back.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
        expect(back.spec?.taints ?? []).toEqual([EMULATOR_TAINT]);
      } finally {
        await revived.stop();
      }
    } finally {
      watch?.abort();
      await doomed.stop();
    }
  });
});

/** GET over HTTPS with explicit TLS material (file paths); resolves with status and body. */
async function httpsGet(url: string, tls: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: string }> {
  const read = (file: string | undefined) => file === undefined ? Promise.resolve(undefined) : readFile(file);
  const [ca, cert, key] = await Promise.all([read(tls.ca), read(tls.cert), read(tls.key)]);
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, cert, key, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
      res.on('error', reject);
    });
    req.on('timeout', () => { req.destroy(new Error('timeout')); });
    req.on('error', reject);
    req.end();
  });
}
