/**
 * One integration-test environment for the reconciler: a namespace, the node that runs its pods
 * (the cluster's real node, or a node emulator bound to it; test-node.ts), the mock model server,
 * and helpers to create runs and observe what happened to them.
 */
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { hostScratchDir } from './control-plane.ts';
import { clients, cluster, createNamespace, eventually, kubectl } from './kube.ts';
import { startMockModelServer, type MockModelServer } from './mock-model-server.ts';
import type { NodeEmulator } from './node-emulator.ts';
import { OperatorProcess } from './operator-process.ts';
import { prepareToolSignals, recordLineSnippet, startTestNode } from './test-node.ts';

export interface AgentEnv {
  readonly namespace: string;
  readonly model: MockModelServer;
  /** The node emulator serving the namespace; undefined on real nodes (they serve every namespace). */
  readonly emulator: NodeEmulator | undefined;
  readonly operator: OperatorProcess;
  /** A file outside every sandbox where test tools append one line per real execution. */
  readonly execLog: string;
  readonly pods: PodCreations;
  close(): Promise<void>;
}

export async function startAgentEnv(prefix: string, options: { startOperator?: boolean } = {}): Promise<AgentEnv> {
  const namespace = await createNamespace(prefix);
  const model = await startMockModelServer();
  await createModelEndpoint(namespace, MOCK_ENDPOINT, model.url);
  const emulator = await startTestNode(`node-${namespace}`, [namespace]);
  await prepareToolSignals();
  const operator = new OperatorProcess({ kubeconfig: cluster().kubeconfig, namespaces: [namespace] });
  if (options.startOperator ?? true) await operator.start();
  const dir = hostScratchDir('test-exec');
  await mkdir(dir, { recursive: true });
  const execLog = join(dir, `${namespace}.log`);
  await writeFile(execLog, '');
  const pods = await PodCreations.watch(namespace);
  return {
    namespace, model, emulator, operator, execLog, pods,
    close: async () => {
      const timed = async (what: string, step: () => Promise<unknown>) => {
        const t = Date.now();
        await step();
        if (process.env.AGENTRUN_TEST_VERBOSE) console.log(`[agent-env] ${what} took ${Date.now() - t} ms`);
      };
      await timed('operator stop', () => operator.stop());
      pods.stop();
      // With the operator gone nobody releases the tool-pod finalizer; do it so the namespace can go.
      await timed('release pods', () => releasePodFinalizers(namespace));
      await timed('emulator stop', async () => emulator?.stop());
      await timed('model close', () => model.close());
      await timed('namespace delete', () => clients().core.deleteNamespace({ name: namespace }).catch(() => undefined));
    },
  };
}

/** The ModelEndpoint every run of an AgentEnv uses: `model: { name, endpointRef: { name: MOCK_ENDPOINT } }`. */
export const MOCK_ENDPOINT = 'mock';

/** Creates a ModelEndpoint (as the admin who configures endpoints) that allows every model. */
export async function createModelEndpoint(namespace: string, name: string, baseURL: string, extra: Record<string, unknown> = {}): Promise<void> {
  await kubectl(['apply', '-n', namespace, '-f', '-'], { input: JSON.stringify({
    apiVersion: 'agentrun.dev/v1alpha1', kind: 'ModelEndpoint', metadata: { name }, spec: { baseURL, models: ['*'], ...extra },
  }) });
}

/**
 * The name of a ModelEndpoint in `namespace` for `baseURL` (and key Secret), created on first use:
 * tests that talk to several mock servers, or with several keys, get one endpoint each.
 */
export async function endpointFor(namespace: string, baseURL: string, apiKeySecretRef?: { name: string; key?: string }): Promise<string> {
  const name = `ep-${createHash('sha256').update(`${baseURL}|${JSON.stringify(apiKeySecretRef ?? null)}`).digest('hex').slice(0, 10)}`;
  const key = `${namespace}/${name}`;
  // One creation per endpoint, however many concurrent tests ask for it at once.
  let created = createdEndpoints.get(key);
  if (!created) {
    created = createModelEndpoint(namespace, name, baseURL, apiKeySecretRef ? { apiKeySecretRef } : {});
    createdEndpoints.set(key, created);
  }
  await created;
  return name;
}
const createdEndpoints = new Map<string, Promise<void>>();

/** Removes every pod's finalizers in a namespace, so its deletion never waits for an operator that is gone. */
export async function releasePodFinalizers(namespace: string): Promise<void> {
  const { core } = clients();
  const list = await core.listNamespacedPod({ namespace });
  await Promise.all(list.items.filter((p) => p.metadata?.finalizers?.length).map((p) =>
    core.patchNamespacedPod({ namespace, name: p.metadata?.name ?? '', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch)).catch(() => undefined)));
}

/** Records every pod created in a namespace (by uid), so a test can prove none was created twice. */
export class PodCreations {
  private readonly created = new Map<string, k8s.V1Pod>();
  private abort: AbortController | undefined;
  private stopped = false;
  private constructor() { /* use watch() */ }

  static async watch(namespace: string): Promise<PodCreations> {
    const recorder = new PodCreations();
    await recorder.start(namespace);
    return recorder;
  }

  /**
   * A watch ends now and then (the apiserver closes it, a slow machine times it out): start it
   * again, after a list that records the pods created meanwhile (by uid, so nothing counts twice).
   */
  private async start(namespace: string): Promise<void> {
    if (this.stopped) return;
    const list = await clients().core.listNamespacedPod({ namespace });
    for (const pod of list.items) if (pod.metadata?.uid) this.created.set(pod.metadata.uid, pod);
    const watch = new k8s.Watch(clients().kc);
    this.abort = await watch.watch(`/api/v1/namespaces/${namespace}/pods`, { resourceVersion: list.metadata?.resourceVersion }, (_type, pod: k8s.V1Pod) => {
      if (pod.metadata?.uid) this.created.set(pod.metadata.uid, pod);
    }, () => {
      if (!this.stopped) setTimeout(() => { this.start(namespace).catch(() => undefined); }, 200);
    });
  }

  /** Pod names created, once per creation (a name created twice appears twice). */
  names(): string[] {
    return [...this.created.values()].map((p) => p.metadata?.name ?? '').sort();
  }

  stop(): void { this.stopped = true; this.abort?.abort(); }
}

/** A tool container that records each real execution and prints its input. */
export function recordingTool(execLog: string, script = 'printf "%s" "$AGENTRUN_INPUT"') {
  return { image: 'busybox:1.37', command: ['sh', '-c', `${recordLineSnippet(execLog, '"$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT"')}; ${script}`] };
}

/** Lines of the execution log: one per real tool execution. */
export async function executions(execLog: string): Promise<string[]> {
  return (await readFile(execLog, 'utf8')).split('\n').filter(Boolean);
}

const api = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns' };

export async function createRun(namespace: string, name: string, spec: Record<string, unknown>): Promise<AgentRun> {
  return await clients().custom.createNamespacedCustomObject({
    ...api, namespace, body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name }, spec },
  }) as AgentRun;
}

export async function getRun(namespace: string, name: string): Promise<AgentRun> {
  return await clients().custom.getNamespacedCustomObject({ ...api, namespace, name }) as AgentRun;
}

export async function patchRunSpec(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await kubectl(['patch', 'agentrun', name, '-n', namespace, '--type', 'merge', '-p', JSON.stringify({ spec })]);
}

/** Waits until the run satisfies `predicate`; the failure message shows the last status seen. */
export async function waitForRun(namespace: string, name: string, what: string, predicate: (run: AgentRun) => boolean, timeoutMs = 60_000): Promise<AgentRun> {
  let last: AgentRun | undefined;
  try {
    return await eventually(what, async () => {
      last = await getRun(namespace, name);
      return predicate(last) ? last : undefined;
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${String(error)}\nlast status: ${last ? JSON.stringify(last.status ?? {}, null, 1).slice(0, 3000) : 'none'}`);
  }
}

export const finished = (run: AgentRun) => ['Succeeded', 'Failed', 'Cancelled'].includes(run.status?.phase ?? '');

/** Events recorded for the run, oldest first. */
export async function runEvents(namespace: string, name: string): Promise<{ type: string; reason: string; message: string }[]> {
  const list = await clients().core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items
    .sort((a, b) => new Date(a.metadata.creationTimestamp ?? 0).getTime() - new Date(b.metadata.creationTimestamp ?? 0).getTime())
    .map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '' }));
}

/** The tool pods that still exist in a namespace, or of one run. */
export async function livePods(namespace: string, run?: string): Promise<string[]> {
  const list = await clients().core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=agentrun-operator' });
  // A run's pods are named <run>-s<step>-a<attempt>: another run's pods (still being deleted) do not count.
  return list.items.map((p) => p.metadata?.name ?? '').filter((n) => run === undefined || n.startsWith(`${run}-s`));
}
