/**
 * One benchmark environment: our own control plane, a namespace, the node emulator (or, with
 * `node: 'real'`, a real node: kubelet + containerd, tools in containers), the mock
 * Messages API (answer times recorded), the operator as a child process, and a recorder that
 * timestamps (on arrival, in this process's clock) every step transition and tool pod event.
 */
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMockModelServer, text, toolUse, type MockModelServer, type ScriptedTurn } from './mock-model-server.ts';
import { NodeEmulator } from './node-emulator.ts';
import { hostScratchDir } from './control-plane.ts';
import type { NodeMode } from './real-node.ts';
import { appendLineSnippet, startToolSignalServer } from './tool-signals.ts';
import { startOwnCluster, type AgentRunLike, type Kube, type OwnCluster } from './own-cluster.ts';
import { OperatorProcess, type OperatorOptions } from './operator-process.ts';

export interface BenchEnv {
  readonly cluster: OwnCluster;
  readonly kube: Kube;
  readonly namespace: string;
  readonly model: MockModelServer;
  /** Epoch ms at which the mock answered (or abandoned) each request, by request id. */
  readonly answered: Map<string, number>;
  /** The node emulator; undefined on a real node. */
  readonly emulator: NodeEmulator | undefined;
  /** On a real node, where tools record their execution (see workTool's `via`). */
  readonly signalsUrl: string | undefined;
  readonly operator: OperatorProcess;
  readonly recorder: Recorder;
  readonly execLog: string;
  close(): Promise<void>;
}

export interface EnvOptions {
  readonly label: string;
  readonly modelLatencyMs?: number;
  readonly operator?: Partial<OperatorOptions>;
  readonly startOperator?: boolean;
  readonly record?: boolean;
  readonly log?: (s: string) => void;
  /** The node emulator (default) or a real node. */
  readonly node?: NodeMode;
}

export async function startBenchEnv(o: EnvOptions): Promise<BenchEnv> {
  const cluster = await startOwnCluster(o.label, { log: o.log, nodeMode: o.node ?? 'emulator' });
  const closers: (() => Promise<unknown>)[] = [() => cluster.stop()];
  const close = async () => { for (const c of closers) await c().catch(() => undefined); };
  try {
    const kube = cluster.kube;
    const namespace = await kube.createNamespace(o.label);
    const answered = new Map<string, number>();
    const model = await startMockModelServer({ latencyMs: o.modelLatencyMs ?? 0, onResponse: (r) => { answered.set(r.requestId, Date.now()); } });
    closers.unshift(() => model.close());
    await createModelEndpoint(kube, namespace, model.url);
    let emulator: NodeEmulator | undefined;
    let signalsUrl: string | undefined;
    if ((o.node ?? 'emulator') === 'emulator') {
      const started = new NodeEmulator({ ...cluster.info, nodeName: `node-${o.label}`, namespaces: [namespace] });
      await started.start();
      closers.unshift(() => started.stop());
      emulator = started;
    } else {
      const signals = await startToolSignalServer(cluster.info.nodes?.hostIP ?? '', hostScratchDir());
      closers.unshift(() => signals.close());
      signalsUrl = signals.url;
    }
    // Outside /tmp (and so outside a checkout under /tmp): tool pods mount their own /tmp.
    const dir = hostScratchDir('bench', `${o.label}-${Date.now()}`);
    await mkdir(dir, { recursive: true });
    const execLog = join(dir, 'exec.log');
    await writeFile(execLog, '');
    const recorder = new Recorder(kube, namespace);
    if (o.record ?? true) { await recorder.start(); closers.unshift(() => recorder.stop()); }
    const operator = new OperatorProcess({ kubeconfig: cluster.info.kubeconfig, namespaces: [namespace], logLevel: 'info', keepLogs: false, ...o.operator });
    if (o.startOperator ?? true) await operator.start();
    closers.unshift(() => operator.stop());
    return { cluster, kube, namespace, model, answered, emulator, signalsUrl, operator, recorder, execLog, close };
  } catch (error) {
    await close();
    throw error;
  }
}

// ───────────────────────────────────────── run shapes ─────────────────────────────────────────

/**
 * A scripted agent: `turns` tool turns with `toolsPerTurn` parallel calls each, then a final
 * answer. Model steps = turns + 1, tool steps = turns × toolsPerTurn.
 */
export function scriptAgent(model: MockModelServer, key: string, turns: number, toolsPerTurn: number): void {
  const script: ScriptedTurn[] = [];
  for (let t = 0; t < turns; t++) {
    script.push({ content: Array.from({ length: toolsPerTurn }, (_, i) => toolUse('work', { turn: t, call: i })) });
  }
  script.push({ content: [text('Finished.')] });
  model.script(key, script);
}

/** A run of model steps only: `pauses` pause_turn answers (each continued by a new model step), then the final answer. */
export function scriptPauses(model: MockModelServer, key: string, pauses: number): void {
  const script: ScriptedTurn[] = Array.from({ length: pauses }, (_, i) => ({ content: [text(`Working (${i + 1}/${pauses})…`)], stopReason: 'pause_turn' as const }));
  script.push({ content: [text('Finished.')] });
  model.script(key, script);
}

/**
 * A tool that appends "<key> <attempt> start|done <ms>" to `execLog` around `body`: directly, or
 * from a container through the tool-signal server at `via` (which adds the time on arrival).
 */
export function workTool(execLog: string, body = 'printf ok', via?: string): Record<string, unknown> {
  const record = (what: string) => (via
    ? appendLineSnippet(via, execLog, `"$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT ${what}"`, true)
    : `echo "$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT ${what} \`date +%s%3N\`" >> ${execLog}`);
  return {
    name: 'work', description: 'Does a unit of work', inputSchema: { type: 'object' },
    container: { image: 'busybox:1.37', command: ['sh', '-c', `${record('start')}; ${body}; ${record('done')}`] },
  };
}

/** The ModelEndpoint name for a mock server's URL (runs name an endpoint, never a URL). */
export function endpointNameFor(baseURL: string): string {
  return `mock-${createHash('sha256').update(baseURL).digest('hex').slice(0, 10)}`;
}

/** Creates the ModelEndpoint for `baseURL` that agentSpec() runs use; it allows every model. */
export async function createModelEndpoint(kube: Kube, namespace: string, baseURL: string): Promise<void> {
  await kube.custom.createNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', plural: 'modelendpoints', namespace,
    body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'ModelEndpoint', metadata: { name: endpointNameFor(baseURL) }, spec: { baseURL, models: ['*'] } } });
}

export function agentSpec(key: string, modelUrl: string, tools: readonly Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: { name: 'claude-bench', endpointRef: { name: endpointNameFor(modelUrl) } },
    prompt: `${key} do the work`,
    ...(tools.length > 0 ? { tools } : {}),
    limits: { maxTurns: 100, timeout: '1h', maxParallelTools: 8 },
    ...extra,
  };
}

/** Creates runs with at most `concurrency` create calls in flight; returns the create-return time of each. */
export async function createRuns(kube: Kube, namespace: string, specs: readonly { name: string; spec: Record<string, unknown> }[], concurrency = 16): Promise<Map<string, number>> {
  const created = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const item = specs[next++];
      if (!item) return;
      for (let attempt = 0; ; attempt++) {
        try { await kube.createRun(namespace, item.name, item.spec); break; } catch (error) {
          if (attempt >= 5) throw error;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      created.set(item.name, Date.now());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return created;
}

// ───────────────────────────────────────── the recorder ───────────────────────────────────────

export interface StepTimes { kind: string; tool?: string; turn?: number; firstSeen: number; running?: number; done?: number; phase: string; podName?: string; attempt?: number }
export interface RunTimes { steps: Map<number, StepTimes>; finishedAt?: number; phase?: string; uid?: string }
export interface PodTimes { created: number; terminal?: number; run?: string; step?: number }

/** Watches AgentRuns and tool pods of a namespace and keeps arrival times of every transition. */
export class Recorder {
  readonly runs = new Map<string, RunTimes>();
  readonly pods = new Map<string, PodTimes>();
  private informers: { stop(): Promise<void> | void }[] = [];
  private stopped = false;
  private readonly kube: Kube;
  private readonly namespace: string;

  constructor(kube: Kube, namespace: string) {
    this.kube = kube;
    this.namespace = namespace;
  }

  async start(): Promise<void> {
    const ns = this.namespace;
    const runs = k8s.makeInformer<k8s.KubernetesObject>(this.kube.kc, `/apis/agentrun.dev/v1alpha1/namespaces/${ns}/agentruns`,
      async () => await this.kube.custom.listNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace: ns }) as k8s.KubernetesListObject<k8s.KubernetesObject>);
    const onRun = (obj: k8s.KubernetesObject) => { this.observeRun(obj as unknown as AgentRunLike); };
    runs.on('add', onRun);
    runs.on('update', onRun);
    const pods = k8s.makeInformer<k8s.V1Pod>(this.kube.kc, `/api/v1/namespaces/${ns}/pods`,
      () => this.kube.core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/component=tool' }), 'app.kubernetes.io/component=tool');
    const onPod = (pod: k8s.V1Pod) => { this.observePod(pod); };
    pods.on('add', onPod);
    pods.on('update', onPod);
    for (const inf of [runs, pods] as (k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>)[]) {
      inf.on('error', () => { if (!this.stopped) setTimeout(() => { void inf.start().catch(() => undefined); }, 1_000); });
    }
    this.informers = [runs, pods];
    await runs.start();
    await pods.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const inf of this.informers) await inf.stop();
  }

  private observeRun(run: AgentRunLike): void {
    const now = Date.now();
    const name = run.metadata.name ?? '';
    let times = this.runs.get(name);
    if (!times) { times = { steps: new Map(), uid: run.metadata.uid }; this.runs.set(name, times); }
    for (const s of run.status?.steps ?? []) {
      let st = times.steps.get(s.id);
      if (!st) { st = { kind: s.kind, tool: s.tool, turn: s.turn, firstSeen: now, phase: s.phase }; times.steps.set(s.id, st); }
      st.phase = s.phase;
      st.podName = s.podName ?? st.podName;
      st.attempt = s.attempt;
      if (s.phase === 'Running' && st.running === undefined) st.running = now;
      if ((s.phase === 'Succeeded' || s.phase === 'Failed') && st.done === undefined) st.done = now;
    }
    const phase = run.status?.phase;
    times.phase = phase;
    if ((phase === 'Succeeded' || phase === 'Failed' || phase === 'Cancelled') && times.finishedAt === undefined) times.finishedAt = now;
  }

  private observePod(pod: k8s.V1Pod): void {
    const now = Date.now();
    const name = pod.metadata?.name ?? '';
    let times = this.pods.get(name);
    if (!times) {
      times = { created: now, run: pod.metadata?.labels?.['agentrun.dev/run'], step: Number(pod.metadata?.labels?.['agentrun.dev/step'] ?? 0) };
      this.pods.set(name, times);
    }
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    if (times.terminal === undefined && (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || terminated)) times.terminal = now;
  }

  finishedCount(names?: ReadonlySet<string>): number {
    let n = 0;
    for (const [name, r] of this.runs) if (r.finishedAt !== undefined && (!names || names.has(name))) n++;
    return n;
  }
}

export interface ExecLine { key: string; attempt: number; what: 'start' | 'done'; at: number }

export async function readExecLog(path: string): Promise<ExecLine[]> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((line) => {
    const [key = '', attempt = '0', what = 'start', at = '0'] = line.split(' ');
    return { key, attempt: Number(attempt), what: what as 'start' | 'done', at: Number(at) };
  });
}

/** Waits (polling the recorder, bounded) until `count` of `names` have finished. */
export async function waitFinished(recorder: Recorder, names: ReadonlySet<string>, timeoutMs: number, onTick?: (done: number) => void): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  let lastTick = 0;
  while (Date.now() < end) {
    const done = recorder.finishedCount(names);
    if (done >= names.size) return true;
    if (onTick && Date.now() - lastTick > 10_000) { onTick(done); lastTick = Date.now(); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * One finished step of a run, cut on the critical path a user waits on, from events this process
 * sees in the world (never from status, which the operator writes off the critical path):
 * a model step from the mock's answer to what the operator did next (its tools' first pod
 * created, the next request, or the run's end in status); a tool step from its pod's end (the
 * pod watch) to the next model request, for the last of a turn's parallel tools to end.
 */
export type MeasuredStep =
  | { kind: 'Model'; id: number; times: StepTimes; answeredAt: number; nextAt: number }
  | { kind: 'Tool'; id: number; times: StepTimes; pod: PodTimes & { terminal: number }; nextAt: number };

/** The finished steps of run `name` (mock key `key`) whose overhead can be measured; see MeasuredStep. */
export function measuredSteps(env: Pick<BenchEnv, 'recorder' | 'model' | 'answered'>, name: string, key: string): MeasuredStep[] {
  const times = env.recorder.runs.get(name);
  if (!times) return [];
  const requests = env.model.requests(key).filter((r) => r.status === 200);
  const steps = [...times.steps.entries()].sort((a, b) => a[0] - b[0]);
  const modelIds = steps.filter(([, st]) => st.kind === 'Model').map(([id]) => id);
  // The k-th model step sends the k-th request; its answer is what the next steps act on.
  const requestOf = (modelIndex: number) => requests.find((q) => q.turnIndex === modelIndex);
  const out: MeasuredStep[] = [];
  for (const [id, st] of steps) {
    if (st.done === undefined) continue;
    if (st.kind === 'Model') {
      const k = modelIds.indexOf(id);
      const req = requestOf(k);
      const answeredAt = req ? env.answered.get(req.requestId) : undefined;
      if (answeredAt === undefined) continue;
      const toolPods = steps.filter(([, t]) => t.kind === 'Tool' && t.turn === st.turn && t.podName !== undefined)
        .map(([, t]) => env.recorder.pods.get(t.podName ?? '')?.created).filter((c): c is number => c !== undefined);
      const nextAt = toolPods.length > 0 ? Math.min(...toolPods) : (requestOf(k + 1)?.receivedAt ?? times.finishedAt);
      if (nextAt !== undefined) out.push({ kind: 'Model', id, times: st, answeredAt, nextAt });
    } else {
      const pod = st.podName ? env.recorder.pods.get(st.podName) : undefined;
      const nextModel = modelIds.findIndex((m) => m > id);
      const nextAt = nextModel >= 0 ? requestOf(nextModel)?.receivedAt : undefined;
      if (pod?.terminal === undefined || nextAt === undefined) continue;
      // Of parallel tools only the last to end is on the critical path; the others wait for it.
      const siblingEnds = steps.filter(([, t]) => t.kind === 'Tool' && t.turn === st.turn)
        .map(([, t]) => env.recorder.pods.get(t.podName ?? '')?.terminal ?? 0);
      if (pod.terminal >= Math.max(...siblingEnds)) out.push({ kind: 'Tool', id, times: st, pod: { ...pod, terminal: pod.terminal }, nextAt });
    }
  }
  return out;
}
