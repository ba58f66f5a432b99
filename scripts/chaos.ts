/**
 * `npm run chaos`: a fleet of AgentRuns under seeded faults, checked against undisturbed runs.
 *
 *   npm run chaos                      # 30 runs, 15 leader kills, 5 tool-pod deletions, 3 model outages,
 *                                      # one kube-apiserver restart and one etcd restart
 *   npm run chaos -- --small           # the CI-sized configuration (6 runs, 4 kills, 2 deletions, ...)
 *   npm run chaos -- --runs 60 --kills 20 --pod-deletions 8 --outages 4 --seed 7
 *   npm run chaos -- --node emulator   # the node emulator instead of real nodes (default without root)
 *
 * What runs (everything on 127.0.0.1, all of it real except the two stand-ins of the README):
 * our own control plane (etcd with fsync, kube-apiserver, kube-controller-manager, CRDs and the
 * approval admission policies), TWO REAL NODES as root on Linux (kubelet + containerd each, the
 * second in a group of its own so that it can be lost whole; test/harness/real-node.ts) or else
 * the node emulator, the mock Messages API, and TWO operator
 * replicas (`node src/main.ts --leader-elect`, short lease timings) supervised like a kubelet
 * would: a replica that exits, killed or not, is started again a second later.
 *
 * The fleet: each run is a ~6-turn agent with parallel tool calls and one tool that needs a human
 * approval, given by a user bound to the `agentrun-approver` ClusterRole (the admission policies
 * record `decided-by.agentrun.dev/step-N`). All tools are `idempotent: true`. Each tool appends
 * "<idempotency key> <attempt> start|done <ms>" to an execution log outside /tmp (from a
 * container: through an HTTP recorder on the node IP, which adds the time; test/harness/tool-signals.ts).
 *
 * Faults, in a seeded order with seeded gaps: SIGKILL of the current leader (the Lease holder),
 * deletion of a running tool pod, a kube-apiserver kill + restart with the same flags, an etcd
 * kill + restart with the same flags and data dir, 529 bursts of the model API; on real nodes also
 * kubelet SIGKILLs (restarted 2-4 s later: its containers keep running and are adopted) and the
 * loss of the second node (kubelet, containerd and its containers stopped for good: the node
 * lifecycle controller marks it unreachable, its pods are evicted and idempotent tools run again
 * on the first node).
 *
 * Checks, for every run against the undisturbed baseline run of its variant: same final result,
 * the same steps (kind, tool, turn) all Succeeded and journaled (AgentRunJournal present, digest
 * matches, payload equal to the baseline's), no completed tool execution repeated, and every
 * extra model call explained by a leader exit between the original call and its re-issue.
 * Writes bench/results/chaos[-small]-<time>.json and -latest.json, and (full configuration only)
 * docs/chaos.md; exits 1 if a guarantee was broken. `npm test` ends with the small configuration.
 */
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { approveKey, decidedByKey } from '../src/api/approval.ts';
import { hostScratchDir, kubectl, userKubeconfig, type ClusterInfo } from '../test/harness/control-plane.ts';
import { startMockModelServer, text, toolUse, type MockModelServer, type RecordedRequest, type ScriptRequest, type ScriptedTurn } from '../test/harness/mock-model-server.ts';
import { NodeEmulator } from '../test/harness/node-emulator.ts';
import { chooseNodeMode, readRealNodes, restartKubelet, startRealNodes, stopKubelet, stopRealNodes, type NodeMode } from '../test/harness/real-node.ts';
import { appendLineSnippet, startToolSignalServer } from '../test/harness/tool-signals.ts';
import { ForeignCpuSampler, intFlag, log as logger, machineInfo, mulberry32, parseFlags, repoRoot, sleep, srcFingerprint, summarize, writeResult } from '../test/harness/measure.ts';
import { Kube, finished, restartComponent, startOwnCluster, until, type AgentRunLike, type OwnCluster, type RestartRecord } from '../test/harness/own-cluster.ts';
import { createModelEndpoint, endpointNameFor } from '../test/harness/fleet.ts';
import { OperatorProcess, type Exit } from '../test/harness/operator-process.ts';
import { renderChaosMarkdown } from './chaos-report.ts';

const log = logger('chaos');

// ───────────────────────────────────────────── options ─────────────────────────────────────────────

interface Options {
  runs: number; kills: number; podDeletions: number; outages: number; apiserverRestarts: number; etcdRestarts: number;
  node: NodeMode; kubeletRestarts: number; nodeLosses: number;
  seed: number; modelLatencyMs: number; leaseSeconds: number; renewSeconds: number; retrySeconds: number;
  gapMinMs: number; gapMaxMs: number; deadlineMs: number; small: boolean; writeDocs: boolean; unsafeNoFsync: boolean;
}

function options(argv: readonly string[]): Options {
  const flags = parseFlags(argv);
  const small = flags.get('small') === 'true';
  const d = small
    ? { runs: 6, kills: 4, podDeletions: 2, outages: 1, deadline: 150, kubeletRestarts: 1, nodeLosses: 0 }
    : { runs: 30, kills: 15, podDeletions: 5, outages: 3, deadline: 900, kubeletRestarts: 3, nodeLosses: 1 };
  const asked = flags.get('node');
  const node: NodeMode = asked === 'real' || asked === 'emulator' ? asked : chooseNodeMode().mode;
  const real = node === 'real';
  return {
    small,
    node,
    // Faults of a real kubelet; the emulator has none to restart or lose.
    kubeletRestarts: real ? intFlag(flags, 'kubelet-restarts', d.kubeletRestarts) : 0,
    nodeLosses: real ? Math.min(1, intFlag(flags, 'node-losses', d.nodeLosses)) : 0,
    runs: intFlag(flags, 'runs', d.runs),
    kills: intFlag(flags, 'kills', d.kills),
    podDeletions: intFlag(flags, 'pod-deletions', d.podDeletions),
    outages: intFlag(flags, 'outages', d.outages),
    apiserverRestarts: intFlag(flags, 'apiserver-restarts', 1),
    etcdRestarts: intFlag(flags, 'etcd-restarts', 1),
    seed: intFlag(flags, 'seed', 20261129),
    modelLatencyMs: intFlag(flags, 'model-latency-ms', 300),
    leaseSeconds: intFlag(flags, 'lease-seconds', 5),
    renewSeconds: intFlag(flags, 'renew-seconds', 4),
    retrySeconds: intFlag(flags, 'retry-seconds', 1),
    gapMinMs: intFlag(flags, 'gap-min-ms', 1_000),
    gapMaxMs: intFlag(flags, 'gap-max-ms', 3_000),
    deadlineMs: intFlag(flags, 'deadline-seconds', d.deadline) * 1000,
    // The small (CI) configuration proves the guarantees on every change; docs/chaos.md reports the full one.
    writeDocs: !small && flags.get('no-docs') !== 'true',
    unsafeNoFsync: flags.get('unsafe-no-fsync') === 'true',
  };
}

// ──────────────────────────────────────────── the fleet ────────────────────────────────────────────

const TOOL_SLEEP = { fetch: '1.5', compute: '0.5', deploy: '0.3' } as const;
type ToolName = keyof typeof TOOL_SLEEP;
type Call = [ToolName, Record<string, unknown>];

/** Three variants of a 6-turn agent: parallel calls, one approval-gated `deploy`, then an answer. */
const VARIANTS: readonly (readonly (readonly Call[])[])[] = [
  [[['fetch', { url: 'a' }], ['fetch', { url: 'b' }]], [['compute', { x: 1 }], ['compute', { x: 2 }]], [['deploy', { target: 'staging' }]],
    [['fetch', { url: 'c' }], ['compute', { x: 3 }], ['fetch', { url: 'd' }]], [['compute', { x: 4 }]]],
  [[['fetch', { url: 'e' }], ['fetch', { url: 'f' }], ['fetch', { url: 'g' }]], [['deploy', { target: 'canary' }], ['compute', { x: 5 }]],
    [['compute', { x: 6 }]], [['fetch', { url: 'h' }], ['fetch', { url: 'i' }]], [['compute', { x: 7 }], ['compute', { x: 8 }]]],
  [[['compute', { x: 9 }], ['fetch', { url: 'j' }]], [['fetch', { url: 'k' }]], [['compute', { x: 10 }], ['compute', { x: 11 }], ['compute', { x: 12 }]],
    [['deploy', { target: 'prod' }]], [['fetch', { url: 'l' }], ['compute', { x: 13 }]]],
];

/** The final answer digests every tool result of the conversation: a changed or lost result changes it. */
function finalAnswer(request: ScriptRequest): ScriptedTurn {
  const messages = (request.body.messages ?? []) as { role: string; content: unknown }[];
  const results: string[] = [];
  for (const m of messages) {
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const b of m.content as { type: string; content?: unknown; is_error?: boolean }[]) {
      if (b.type === 'tool_result') results.push(`${b.is_error ? 'ERR ' : ''}${typeof b.content === 'string' ? b.content : JSON.stringify(b.content)}`);
    }
  }
  const digest = createHash('sha256').update(results.join('\n')).digest('hex').slice(0, 16);
  return { content: [text(`All done: ${results.length} tool results, digest ${digest}.`)] };
}

function scriptFor(model: MockModelServer, key: string, variant: number): void {
  const turns = (VARIANTS[variant] ?? []).map((calls, turn): ScriptedTurn => ({
    content: [...(turn === 0 ? [text('Starting the work.')] : []), ...calls.map(([name, input]) => toolUse(name, input))],
  }));
  model.script(key, [...turns, finalAnswer]);
}

/** How a tool records "<key> <attempt> start|done <ms>": a file append, or an HTTP append from a container. */
type Recorder = (what: string) => string;

function fileRecorder(execLog: string): Recorder {
  return (what) => `echo "$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT ${what} \`date +%s%3N\`" >> ${execLog}`;
}

function httpRecorder(url: string, execLog: string): Recorder {
  return (what) => appendLineSnippet(url, execLog, `"$AGENTRUN_IDEMPOTENCY_KEY $AGENTRUN_ATTEMPT ${what}"`, true);
}

function toolSpec(name: ToolName, record: Recorder): Record<string, unknown> {
  return {
    name,
    description: `The ${name} tool`,
    inputSchema: { type: 'object' },
    idempotent: true,
    retries: 3,
    ...(name === 'deploy' ? { requiresApproval: true } : {}),
    container: { image: 'busybox:1.37', command: ['sh', '-c', `${record('start')}; sleep ${TOOL_SLEEP[name]}; printf '%s(%s)' ${name} "$AGENTRUN_INPUT"; ${record('done')}`] },
  };
}

function runSpec(key: string, modelUrl: string, record: Recorder): Record<string, unknown> {
  return {
    model: { name: 'claude-chaos', endpointRef: { name: endpointNameFor(modelUrl) } },
    prompt: `${key} Do the fleet work.`,
    tools: (['fetch', 'compute', 'deploy'] as const).map((t) => toolSpec(t, record)),
    limits: { maxTurns: 20, timeout: '30m', maxParallelTools: 4 },
    modelRetry: { initialBackoff: '500ms', backoffFactor: 2, maxBackoff: '4s' },
  };
}

// ─────────────────────────────────────────── the replicas ──────────────────────────────────────────

/**
 * `at`: when the process stopped serving — the SIGKILL for our kills (the exit event comes later,
 * when Node reaps the child, up to hundreds of ms on a loaded machine), else the exit itself.
 */
interface ReplicaExit { replica: string; at: number; exitedAt: number; code: number | null; signal: string | null; killedByUs: boolean; wasLeader: boolean }

/** Two operator replicas with leader election; a replica that exits is started again after 1 s. */
class Replicas {
  readonly all: OperatorProcess[];
  readonly exits: ReplicaExit[] = [];
  private readonly killing = new Map<OperatorProcess, number>();
  private stopping = false;
  private readonly restarts = new Set<Promise<void>>();

  private readonly kube: Kube;
  private readonly namespace: string;

  constructor(kube: Kube, namespace: string, kubeconfig: string, o: Options) {
    this.kube = kube;
    this.namespace = namespace;
    const args = ['--leader-elect', '--leader-election-namespace', namespace, '--leader-election-id', 'agentrun-chaos',
      '--leader-election-lease-duration', `${o.leaseSeconds}s`, '--leader-election-renew-deadline', `${o.renewSeconds}s`,
      '--leader-election-retry-period', `${o.retrySeconds}s`, '--model-timeout', '2m'];
    this.all = ['op-a', 'op-b'].map((name) => new OperatorProcess({
      kubeconfig, namespaces: [namespace], name, logLevel: 'debug', extraArgs: args, env: { POD_NAME: name },
      track: ['status written'], keepLogs: false,
    }));
  }

  async start(): Promise<void> {
    for (const op of this.all) { await op.start(); this.supervise(op); }
  }

  private supervise(op: OperatorProcess): void {
    void op.exited().then((exit: Exit) => {
      const killedAt = this.killing.get(op);
      const at = killedAt ?? exit.at;
      this.exits.push({ replica: op.name, at, exitedAt: exit.at, code: exit.code, signal: exit.signal, killedByUs: killedAt !== undefined, wasLeader: this.ledAt(op, at) });
      this.killing.delete(op);
      if (this.stopping) return;
      if (killedAt === undefined) log(`${op.name} exited by itself (code ${String(exit.code)}): restarting it`);
      const restart = (async () => {
        await sleep(1_000);
        for (let attempt = 0; attempt < 60 && !this.stopping; attempt++) {
          try { await op.start(); this.supervise(op); return; } catch (error) {
            log(`${op.name} failed to start (${String(error).split('\n')[0] ?? ''}); retrying`);
            await sleep(2_000);
          }
        }
      })();
      this.restarts.add(restart);
      void restart.finally(() => this.restarts.delete(restart));
    });
  }

  /** Whether `op` held the lease at time `at`: it became leader since its last start. */
  private ledAt(op: OperatorProcess, at: number): boolean {
    const became = op.times('became leader').filter((t) => t <= at);
    return became.length > 0 && (became.at(-1) ?? 0) >= op.spawnedAt;
  }

  async holder(): Promise<string> {
    try {
      const lease = await this.kube.coordination.readNamespacedLease({ name: 'agentrun-chaos', namespace: this.namespace });
      return lease.spec?.holderIdentity ?? '';
    } catch { return ''; }
  }

  /** The running replica that holds the lease and has started leading since its last start. */
  async leader(): Promise<OperatorProcess | undefined> {
    const holder = await this.holder();
    const op = this.all.find((o) => holder.startsWith(`${o.name}_`));
    if (!op?.running) return undefined;
    return this.ledAt(op, Date.now()) ? op : undefined;
  }

  async kill(op: OperatorProcess): Promise<number> {
    this.killing.set(op, Date.now());
    return op.kill();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.restarts]);
    await Promise.all(this.all.map((op) => op.stop()));
  }
}

// ───────────────────────────────────────────── approver ────────────────────────────────────────────

/** Approves every pending tool step after a seeded human-like delay, as a user bound to agentrun-approver. */
class Approver {
  private timer: NodeJS.Timeout | undefined;
  private readonly scheduled = new Map<string, number>();
  readonly decisions: { run: string; step: number; at: number }[] = [];
  private busy = false;
  private readonly custom: k8s.CustomObjectsApi;

  private readonly admin: Kube;
  private readonly namespace: string;
  private readonly random: () => number;

  constructor(admin: Kube, kubeconfig: string, namespace: string, random: () => number) {
    this.admin = admin;
    this.namespace = namespace;
    this.random = random;
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  start(): void { this.timer = setInterval(() => { void this.tick(); }, 400); }
  stop(): void { if (this.timer) clearInterval(this.timer); }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const runs = await this.admin.listRuns(this.namespace);
      const now = Date.now();
      for (const run of runs) {
        const name = run.metadata.name ?? '';
        for (const pending of run.status?.pendingApprovals ?? []) {
          const key = `${name}/${String(pending.step)}`;
          if (run.metadata.annotations?.[approveKey(pending.step)] !== undefined) continue;
          const due = this.scheduled.get(key) ?? now + 300 + Math.floor(this.random() * 1_700);
          this.scheduled.set(key, due);
          if (due > now) continue;
          await this.custom.patchNamespacedCustomObject({
            group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace: this.namespace, name,
            body: { metadata: { annotations: { [approveKey(pending.step)]: 'chaos approver: ok' } } },
          }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
          this.decisions.push({ run: name, step: pending.step, at: Date.now() });
        }
      }
    } catch { /* the apiserver may be down right now: try again on the next tick */ } finally {
      this.busy = false;
    }
  }
}

// ────────────────────────────────────────────── faults ─────────────────────────────────────────────

type FaultKind = 'leader-kill' | 'pod-deletion' | 'apiserver-restart' | 'etcd-restart' | 'model-outage' | 'kubelet-restart' | 'node-loss';

/** The group of the real node that may be lost (the cluster's own node stays). */
const LOSABLE_GROUP = 'chaos-b';

interface FaultRecord {
  kind: FaultKind; at: number; detail: string;
  /** leader-kill: time until a replica became leader, and until the new leader wrote a status. */
  newLeaderMs?: number; firstStatusWriteMs?: number; killed?: string;
  restart?: RestartRecord; skipped?: string; pod?: string; durationMs?: number;
  /** node-loss: the pods bound to the node when it was lost. */
  lostPods?: string[];
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

class FaultInjector {
  readonly records: FaultRecord[] = [];
  private readonly o: Options;
  private readonly cluster: OwnCluster;
  private readonly namespace: string;
  private readonly replicas: Replicas;
  private readonly model: MockModelServer;
  private readonly random: () => number;
  private readonly execLog: string;

  constructor(o: Options, cluster: OwnCluster, namespace: string, replicas: Replicas, model: MockModelServer, random: () => number, execLog: string) {
    this.execLog = execLog;
    this.o = o;
    this.cluster = cluster;
    this.namespace = namespace;
    this.replicas = replicas;
    this.model = model;
    this.random = random;
  }

  plan(): FaultKind[] {
    const kinds: FaultKind[] = [
      ...Array<FaultKind>(this.o.kills).fill('leader-kill'), ...Array<FaultKind>(this.o.podDeletions).fill('pod-deletion'),
      ...Array<FaultKind>(this.o.apiserverRestarts).fill('apiserver-restart'), ...Array<FaultKind>(this.o.etcdRestarts).fill('etcd-restart'),
      ...Array<FaultKind>(this.o.outages).fill('model-outage'), ...Array<FaultKind>(this.o.kubeletRestarts).fill('kubelet-restart'),
    ];
    const plan = shuffle(kinds, this.random);
    // The node loss comes in the middle of the fleet, so runs are in flight on both nodes.
    if (this.o.nodeLosses > 0) plan.splice(Math.floor(plan.length / 2), 0, 'node-loss');
    return plan;
  }

  async run(plan: readonly FaultKind[], deadline: number): Promise<void> {
    for (const [i, kind] of plan.entries()) {
      if (Date.now() > deadline) { this.records.push({ kind, at: Date.now(), detail: 'not injected', skipped: 'deadline reached' }); continue; }
      await sleep(this.o.gapMinMs + Math.floor(this.random() * (this.o.gapMaxMs - this.o.gapMinMs)));
      const record = await this.inject(kind).catch((error: unknown): FaultRecord => ({ kind, at: Date.now(), detail: 'failed', skipped: String(error) }));
      this.records.push(record);
      log(`fault ${i + 1}/${plan.length}: ${kind} ${record.detail}${record.skipped ? ` (SKIPPED: ${record.skipped})` : ''}`);
    }
  }

  private async inject(kind: FaultKind): Promise<FaultRecord> {
    switch (kind) {
      case 'leader-kill': return this.killLeader();
      case 'pod-deletion': return this.deletePod();
      case 'apiserver-restart':
      case 'etcd-restart': {
        const component = kind === 'etcd-restart' ? 'etcd' : 'kube-apiserver';
        const restart = await restartComponent(this.cluster.info, component, 1_000);
        return { kind, at: restart.killedAt, restart, detail: `${component} down ${restart.readyAt - restart.killedAt} ms (SIGKILL, restarted with the same flags)` };
      }
      case 'model-outage': {
        const durationMs = 2_000 + Math.floor(this.random() * 3_000);
        this.model.outage({ status: 529, durationMs });
        return { kind, at: Date.now(), durationMs, detail: `529 overloaded for ${durationMs} ms` };
      }
      case 'kubelet-restart': return this.restartKubelet();
      case 'node-loss': {
        const info = await readRealNodes(this.cluster.info.stateDir, LOSABLE_GROUP);
        const nodeName = info?.nodes[0]?.name ?? '?';
        const bound = await this.cluster.kube.core.listNamespacedPod({ namespace: this.namespace, fieldSelector: `spec.nodeName=${nodeName}` });
        const lostPods = bound.items.map((p) => p.metadata?.name ?? '');
        const at = Date.now();
        await stopRealNodes(this.cluster.info.stateDir, LOSABLE_GROUP);
        this.nodeLost = true;
        return { kind, at, lostPods, detail: `node ${nodeName} lost with ${lostPods.length} pods: kubelet, containerd and its containers stopped for good (teardown ${Date.now() - at} ms)` };
      }
    }
  }

  private nodeLost = false;

  /** SIGKILLs the kubelet of a node that is up and starts it again 2-4 s later. */
  private async restartKubelet(): Promise<FaultRecord> {
    const groups = this.nodeLost ? ['default'] : ['default', LOSABLE_GROUP];
    const group = groups[Math.floor(this.random() * groups.length)] ?? 'default';
    const node = (await readRealNodes(this.cluster.info.stateDir, group))?.nodes[0];
    if (!node) throw new Error(`no real node in group ${group}`);
    const at = Date.now();
    await stopKubelet(this.cluster.info.stateDir, node.name, 'SIGKILL', group);
    const downMs = 2_000 + Math.floor(this.random() * 2_000);
    await sleep(downMs);
    await restartKubelet(this.cluster.info, node.name, group);
    return { kind: 'kubelet-restart', at, durationMs: Date.now() - at, detail: `kubelet of ${node.name} SIGKILLed, restarted after ${downMs} ms, Ready again after ${Date.now() - at} ms` };
  }

  private async killLeader(): Promise<FaultRecord> {
    const leader = await until('a leader', () => this.replicas.leader(), 90_000, 200);
    const at = await this.replicas.kill(leader);
    // Wait for the takeover (bounded), so the next kill hits a leader again.
    const next = await until('a new leader', () => {
      for (const op of this.replicas.all) {
        const t = op.times('became leader').find((x) => x > at);
        if (t !== undefined) return Promise.resolve({ op, t });
      }
      return Promise.resolve(undefined);
    }, 90_000, 100).catch(() => undefined);
    const record: FaultRecord = { kind: 'leader-kill', at, killed: leader.name, detail: `SIGKILL ${leader.name} (leader)` };
    if (next) {
      record.newLeaderMs = next.t - at;
      const write = await until('a status write by the new leader', () => Promise.resolve(next.op.times('status written').find((x) => x >= next.t)), 30_000, 100).catch(() => undefined);
      if (write !== undefined) record.firstStatusWriteMs = write - at;
      record.detail += `; ${next.op.name} leads after ${record.newLeaderMs} ms, first status write after ${record.firstStatusWriteMs ?? '—'} ms`;
    }
    return record;
  }

  /**
   * Deletes a tool pod whose process is running right now (its execution log has a `start` for
   * that attempt, no `done`, and it started less than 300 ms ago — 1 s on a real node, whose
   * deletion kills at once — so it will not finish first).
   */
  private async deletePod(): Promise<FaultRecord> {
    const core = this.cluster.kube.core;
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      const exec = await execLines(this.execLog);
      const pods = (await core.listNamespacedPod({ namespace: this.namespace, labelSelector: 'app.kubernetes.io/component=tool' })).items
        .filter((p) => {
          if (p.metadata?.deletionTimestamp) return false;
          const env = p.spec?.containers[0]?.env ?? [];
          const key = env.find((e) => e.name === 'AGENTRUN_IDEMPOTENCY_KEY')?.value ?? '';
          const attempt = Number(env.find((e) => e.name === 'AGENTRUN_ATTEMPT')?.value ?? '0');
          const lines = exec.filter((l) => l.key === key && l.attempt === attempt);
          const start = lines.find((l) => l.what === 'start');
          return start !== undefined && !lines.some((l) => l.what === 'done') && Date.now() - start.at < (this.o.node === 'real' ? 1_000 : 300);
        });
      const pod = pods[Math.floor(this.random() * pods.length)];
      if (pod?.metadata?.name) {
        const at = Date.now();
        // A container's `sh -c` is PID 1 and ignores SIGTERM: with the default grace period the tool
        // would simply finish. Grace 0 kills it at once, as the emulator's deletion does.
        await core.deleteNamespacedPod({ namespace: this.namespace, name: pod.metadata.name, ...(this.o.node === 'real' ? { gracePeriodSeconds: 0 } : {}) });
        return { kind: 'pod-deletion', at, pod: pod.metadata.name, detail: `deleted tool pod ${pod.metadata.name} while its process ran${this.o.node === 'real' ? ' (grace 0: killed at once)' : ''}` };
      }
      await sleep(100);
    }
    return { kind: 'pod-deletion', at: Date.now(), detail: 'no running tool process', skipped: 'no tool process was running for 30 s' };
  }
}

/** When each journal entry was first seen (a watch, restarted after control-plane restarts). */
class JournalWatch {
  readonly firstSeen = new Map<string, number>();
  private informer: (k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>) | undefined;
  private stopped = false;

  async start(kube: Kube, namespace: string): Promise<void> {
    const custom = kube.custom;
    const informer = k8s.makeInformer<k8s.KubernetesObject>(kube.kc, `/apis/agentrun.dev/v1alpha1/namespaces/${namespace}/agentrunjournals`,
      async () => await custom.listNamespacedCustomObject({ ...JOURNALS, namespace }) as k8s.KubernetesListObject<k8s.KubernetesObject>);
    const seen = (cm: k8s.KubernetesObject) => { const n = cm.metadata?.name; if (n && !this.firstSeen.has(n)) this.firstSeen.set(n, Date.now()); };
    informer.on('add', seen);
    informer.on('update', seen);
    informer.on('error', () => { if (!this.stopped) setTimeout(() => { void informer.start().catch(() => undefined); }, 1_000); });
    this.informer = informer;
    await informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
  }
}

// ───────────────────────────────────────────── checks ──────────────────────────────────────────────

interface JournalPayload { kind: string; output?: string; isError?: boolean; response?: { content: unknown[]; stop_reason: string | null } }

interface RunCheck {
  name: string; variant: number; phase: string; resultMatches: boolean; stepsMatch: boolean;
  lostSteps: number; journalMismatches: number; modelCalls: number; extraModelCalls: number; unexplainedExtraCalls: number;
  /** Leader exits that landed while one of this run's model calls was open (request sent, response not yet journaled). */
  callsInterruptedByLeaderExits: number; extraCallsBeyondInterruptions: number;
  outageRejections: number; toolStarts: number; completedToolReruns: number; interruptedToolReruns: number;
  /** Idempotent tools that finished on a node as it was lost, unreported by its dead kubelet, and ran again (by design). */
  rerunsAfterUnreportedCompletion: number;
  podLostSteps: number; problems: string[];
}

/** Replaces the run-specific script key so payloads of different runs compare. */
function normalize(value: unknown, key: string): string {
  const safe = key.replace(/[^a-zA-Z0-9_-]/g, '');
  return JSON.stringify(value).split(key).join('<KEY>').split(safe).join('<KEY>');
}

const JOURNALS = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentrunjournals' } as const;

async function journalOf(kube: Kube, namespace: string): Promise<Map<string, { text: string; payload: JournalPayload }>> {
  const list = await kube.custom.listNamespacedCustomObject({ ...JOURNALS, namespace }) as { items: { metadata?: { name?: string }; spec?: { entry?: string } }[] };
  const map = new Map<string, { text: string; payload: JournalPayload }>();
  for (const obj of list.items) {
    const textData = obj.spec?.entry;
    if (obj.metadata?.name && textData !== undefined) map.set(obj.metadata.name, { text: textData, payload: JSON.parse(textData) as JournalPayload });
  }
  return map;
}

interface ExecLine { key: string; attempt: number; what: 'start' | 'done'; at: number }

async function execLines(path: string): Promise<ExecLine[]> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((line) => {
    const [key = '', attempt = '0', what = 'start', at = '0'] = line.split(' ');
    return { key, attempt: Number(attempt), what: what as 'start' | 'done', at: Number(at) };
  });
}

/**
 * How long before its arrival at the mock a model request may already have been sent. A kill is
 * timed when we send SIGKILL; a request the leader wrote to its socket just before reaches the
 * mock's handler after that (the kernel delivers it; this process's event loop, loaded by the
 * fleet, runs the handler later), so it counts as open at the kill.
 */
const REQUEST_IN_TRANSIT_MS = 250;

/** A leader exit at `t` can explain one re-issued call of each run whose call it interrupted. */
function explainedBy(exits: readonly ReplicaExit[], from: number, to: number): boolean {
  return exits.some((e) => e.wasLeader && e.at >= from - REQUEST_IN_TRANSIT_MS && e.at <= to);
}

function checkRun(
  run: AgentRunLike, variant: number, key: string, baseline: { run: AgentRunLike; key: string; journal: Map<string, string> },
  journal: Map<string, { text: string; payload: JournalPayload }>, requests: RecordedRequest[], exec: ExecLine[], exits: readonly ReplicaExit[],
  open: readonly (readonly [number, number])[], nodeLoss?: { at: number; pods: ReadonlySet<string> },
): RunCheck {
  const name = run.metadata.name ?? '';
  const problems: string[] = [];
  const steps = run.status?.steps ?? [];
  const baseSteps = baseline.run.status?.steps ?? [];
  const shape = (s: typeof steps) => s.map((x) => `${String(x.id)}:${x.kind}:${x.tool ?? ''}:${String(x.turn ?? '')}`).join(',');
  const stepsMatch = shape(steps) === shape(baseSteps);
  if (!stepsMatch) problems.push(`steps differ from the baseline: ${shape(steps)} vs ${shape(baseSteps)}`);
  const resultMatches = run.status?.result === baseline.run.status?.result && run.status?.phase === 'Succeeded';
  if (!resultMatches) problems.push(`result ${JSON.stringify(run.status?.result)} (${String(run.status?.phase)}) vs baseline ${JSON.stringify(baseline.run.status?.result)}`);

  let lostSteps = Math.max(0, baseSteps.length - steps.length);
  let journalMismatches = 0;
  let podLostSteps = 0;
  for (const step of steps) {
    if (step.outcome === 'PodLost') podLostSteps++;
    const entry = step.journal ? journal.get(step.journal.name) : undefined;
    if (step.phase !== 'Succeeded' || !step.journal || !entry) {
      lostSteps++;
      problems.push(`step ${String(step.id)} ${step.kind} is ${step.phase}${step.journal ? '' : ', not journaled'}${step.journal && !entry ? ', journal entry missing' : ''}`);
      continue;
    }
    const digest = `sha256:${createHash('sha256').update(entry.text).digest('hex')}`;
    if (digest !== step.journal.digest) { journalMismatches++; problems.push(`step ${String(step.id)}: journal digest mismatch`); }
    const base = baseSteps.find((b) => b.id === step.id);
    const baseText = base?.journal ? baseline.journal.get(base.journal.name) : undefined;
    const comparable = (p: JournalPayload) => (p.kind === 'ModelResponse'
      ? { kind: p.kind, content: p.response?.content, stop: p.response?.stop_reason }
      : { kind: p.kind, output: p.output, isError: p.isError });
    if (baseText === undefined || normalize(comparable(entry.payload), key) !== normalize(comparable(JSON.parse(baseText) as JournalPayload), baseline.key)) {
      journalMismatches++;
      const shown = (p: JournalPayload) => JSON.stringify(comparable(p)).slice(0, 300);
      problems.push(`step ${String(step.id)}: journaled payload differs from the baseline: ${shown(entry.payload)} vs ${baseText === undefined ? 'none' : shown(JSON.parse(baseText) as JournalPayload)}`);
    }
  }

  // Model calls: 200 answers and calls abandoned by a dead client (499) cost tokens; 529s do not.
  const paid = requests.filter((r) => r.status !== 529 && r.status !== undefined);
  const baselineCalls = baseSteps.filter((s) => s.kind === 'Model').length;
  const extraModelCalls = Math.max(0, paid.length - baselineCalls);
  let unexplainedExtraCalls = 0;
  const byTurn = new Map<number, RecordedRequest[]>();
  for (const r of paid) byTurn.set(r.turnIndex ?? -1, [...(byTurn.get(r.turnIndex ?? -1) ?? []), r]);
  for (const [turn, calls] of byTurn) {
    for (let i = 1; i < calls.length; i++) {
      const prev = calls[i - 1];
      const cur = calls[i];
      if (!prev || !cur) continue;
      if (!explainedBy(exits, prev.receivedAt, cur.receivedAt)) {
        unexplainedExtraCalls++;
        problems.push(`model turn ${turn} was called again at ${new Date(cur.receivedAt).toISOString()} with no leader exit since the previous call`);
      }
    }
  }

  const callsInterruptedByLeaderExits = exits.filter((e) => e.wasLeader && open.some(([from, to]) => e.at >= from && e.at <= to)).length;
  const extraCallsBeyondInterruptions = Math.max(0, extraModelCalls - callsInterruptedByLeaderExits);
  if (extraCallsBeyondInterruptions > 0) problems.push(`${extraModelCalls} extra model calls but only ${callsInterruptedByLeaderExits} leader exits landed during its calls`);

  // Tool executions, by idempotency key `${uid}/${step}`.
  const uid = run.metadata.uid ?? '?';
  const mine = exec.filter((l) => l.key.startsWith(`${uid}/`));
  let completedToolReruns = 0;
  let interruptedToolReruns = 0;
  let rerunsAfterUnreportedCompletion = 0;
  const keys = new Set(mine.map((l) => l.key));
  for (const k of keys) {
    const lines = mine.filter((l) => l.key === k).sort((a, b) => a.at - b.at);
    const firstDone = lines.findIndex((l) => l.what === 'done');
    const starts = lines.filter((l) => l.what === 'start').length;
    const done = lines[firstDone];
    // A tool that finished on a pod that was then lost (its node died) or deleted before its result
    // was journaled: its output went with the pod, so the operator ran the idempotent tool again, as
    // documented. A journaled result is never re-run: the step is done.
    const unreported = done !== undefined && nodeLoss !== undefined
      && nodeLoss.pods.has(`${name}-s${k.slice(k.lastIndexOf('/') + 1)}-a${String(done.attempt)}`);
    if (unreported && starts > 1) rerunsAfterUnreportedCompletion += starts - 1;
    else if (firstDone >= 0 && lines.slice(firstDone + 1).some((l) => l.what === 'start')) {
      completedToolReruns++;
      problems.push(`tool step ${k} ran again after it had completed`);
    } else if (starts > 1) interruptedToolReruns += starts - 1;
  }
  // Approvals: decided by the approver identity the admission policy recorded, not typed by anyone.
  for (const step of steps.filter((s) => s.tool === 'deploy')) {
    const by = run.metadata.annotations?.[decidedByKey(step.id)];
    if (step.approval?.decision !== 'Approved' || step.approval.by !== 'chaos-approver' || by !== 'chaos-approver') {
      problems.push(`step ${String(step.id)}: approval ${JSON.stringify(step.approval)} (decided-by ${String(by)})`);
    }
  }
  const toolSteps = steps.filter((s) => s.kind === 'Tool').length;
  if (keys.size !== toolSteps) problems.push(`${keys.size} tool steps executed, ${toolSteps} in status`);

  return {
    name, variant, phase: run.status?.phase ?? '', resultMatches, stepsMatch, lostSteps, journalMismatches,
    modelCalls: paid.length, extraModelCalls, unexplainedExtraCalls, callsInterruptedByLeaderExits, extraCallsBeyondInterruptions, outageRejections: requests.filter((r) => r.status === 529).length,
    toolStarts: mine.filter((l) => l.what === 'start').length, completedToolReruns, interruptedToolReruns, rerunsAfterUnreportedCompletion, podLostSteps, problems,
  };
}

/**
 * The intervals during which a model call of `run` was open: from the request's arrival at the
 * mock (less the time it may have been in transit) until its response was journaled (the journal entry was first seen), the client left
 * (499), or the call was re-issued. A leader exit inside one costs that call.
 */
function openIntervals(run: AgentRunLike | undefined, requests: readonly RecordedRequest[], answered: ReadonlyMap<string, number>, journalSeen: ReadonlyMap<string, number>): [number, number][] {
  const modelSteps = (run?.status?.steps ?? []).filter((s) => s.kind === 'Model');
  const paid = requests.filter((r) => r.status !== 529 && r.status !== undefined);
  return paid.map((r, i) => {
    const journaledAt = journalSeen.get(modelSteps[r.turnIndex ?? -1]?.journal?.name ?? '') ?? Number.POSITIVE_INFINITY;
    const reissuedAt = paid.slice(i + 1).find((n) => n.turnIndex === r.turnIndex)?.receivedAt ?? Number.POSITIVE_INFINITY;
    const end = r.status === 499 ? (answered.get(r.requestId) ?? r.receivedAt) : Math.min(journaledAt, reissuedAt);
    return [r.receivedAt - REQUEST_IN_TRANSIT_MS, Number.isFinite(end) ? end : r.receivedAt] as [number, number];
  });
}

// ────────────────────────────────────────────── main ───────────────────────────────────────────────

/**
 * The nodes of the chaos namespace: a node emulator, or on real nodes the cluster's own node plus
 * a second one in a group of its own (the one a node-loss fault stops). Returns how tools record.
 */
async function startNodes(o: Options, info: ClusterInfo, namespace: string, execLog: string, cleanup: (() => Promise<unknown>)[]): Promise<Recorder> {
  if (o.node === 'emulator') {
    const emulator = new NodeEmulator({ ...info, nodeName: 'chaos-node', namespaces: [namespace] });
    await emulator.start();
    cleanup.unshift(() => emulator.stop());
    return fileRecorder(execLog);
  }
  const second = await startRealNodes(info, { group: LOSABLE_GROUP, namePrefix: 'chaos-node-b', count: 1, log });
  // Just before the cluster's own teardown (the last cleanup step), which restores the machine.
  cleanup.splice(cleanup.length - 1, 0, () => stopRealNodes(info.stateDir, LOSABLE_GROUP));
  const signals = await startToolSignalServer(info.nodes?.hostIP ?? second.hostIP, hostScratchDir());
  cleanup.unshift(() => signals.close());
  log(`real nodes ${[...(info.nodes?.names ?? []), ...second.nodes.map((n) => n.name)].join(', ')} Ready; tools record through ${signals.url}`);
  return httpRecorder(signals.url, execLog);
}

async function main(): Promise<number> {
  const o = options(process.argv.slice(2));
  const started = Date.now();
  const random = mulberry32(o.seed);
  const faultRandom = mulberry32(o.seed ^ 0x5eed);
  log(`seed ${o.seed}: ${o.runs} runs, ${o.kills} leader kills, ${o.podDeletions} pod deletions, ${o.apiserverRestarts} apiserver + ${o.etcdRestarts} etcd restarts, ${o.outages} model outages, ${o.kubeletRestarts} kubelet restarts, ${o.nodeLosses} node losses; ${o.node === 'real' ? 'two real nodes' : 'the node emulator'}`);
  const machine = machineInfo();
  const src = await srcFingerprint();
  const cpu = new ForeignCpuSampler().start();
  const cluster = await startOwnCluster('chaos', { unsafeNoFsync: o.unsafeNoFsync, log, nodeMode: o.node });
  const cleanup: (() => Promise<unknown>)[] = [() => cluster.stop()];
  try {
    const kube = cluster.kube;
    const namespace = await kube.createNamespace('chaos');
    const approverKubeconfig = await userKubeconfig(cluster.info, 'chaos-approver', ['chaos-approvers']);
    await kubectl(cluster.info.kubeconfig, ['create', 'rolebinding', 'approvers', '-n', namespace, '--clusterrole=agentrun-approver', '--group=chaos-approvers']);
    const answered = new Map<string, number>();
    const model = await startMockModelServer({ latencyMs: o.modelLatencyMs, onResponse: (r) => { answered.set(r.requestId, Date.now()); } });
    await createModelEndpoint(kube, namespace, model.url);
    cleanup.unshift(() => model.close());
    // Outside /tmp (and so outside a checkout under /tmp): tool pods mount their own /tmp.
    const dir = hostScratchDir('chaos', new Date().toISOString().replace(/[:.]/g, '-'));
    await mkdir(dir, { recursive: true });
    const execLog = join(dir, 'exec.log');
    await writeFile(execLog, '');
    const record = await startNodes(o, cluster.info, namespace, execLog, cleanup);
    const journalWatch = new JournalWatch();
    await journalWatch.start(kube, namespace);
    cleanup.unshift(() => journalWatch.stop());

    const replicas = new Replicas(kube, namespace, cluster.info.kubeconfig, o);
    await replicas.start();
    cleanup.unshift(() => replicas.stop());
    await until('a leader', () => replicas.leader(), 60_000);
    const approver = new Approver(kube, approverKubeconfig, namespace, random);
    approver.start();
    cleanup.unshift(() => { approver.stop(); return Promise.resolve(); });

    // 1. Undisturbed baseline: one run per variant.
    log('baseline: one undisturbed run per variant');
    const baselineStart = Date.now();
    for (let v = 0; v < VARIANTS.length; v++) {
      scriptFor(model, `[chaos-base-v${v}]`, v);
      await kube.createRun(namespace, `base-v${v}`, runSpec(`[chaos-base-v${v}]`, model.url, record));
    }
    await until('the baseline runs to finish', async () => {
      const runs = await Promise.all(VARIANTS.map((_, v) => kube.getRun(namespace, `base-v${v}`)));
      return runs.every(finished) ? runs : undefined;
    }, 180_000, 500);
    const baselineMs = Date.now() - baselineStart;
    log(`baseline done in ${baselineMs} ms`);

    // 2. The fleet, created over the expected fault window, while faults are injected.
    const injector = new FaultInjector(o, cluster, namespace, replicas, model, faultRandom, execLog);
    const plan = injector.plan();
    // Measured on the 2-core machine: a kill costs the lease duration plus ~5 s (gap, takeover,
    // first write); an apiserver restart ~15 s (the leader loses its lease too); etcd ~8 s.
    const expectedWindowMs = o.kills * (o.leaseSeconds * 1000 + 5_000) + o.apiserverRestarts * 15_000 + o.etcdRestarts * 8_000
      + (o.podDeletions + o.outages) * 3_000 + o.kubeletRestarts * 6_000 + o.nodeLosses * 35_000;
    const staggerMs = Math.max(500, Math.min(10_000, Math.floor((expectedWindowMs * 0.75) / Math.max(1, o.runs))));
    log(`creating the ${o.runs} fleet runs ${staggerMs} ms apart over the expected fault window of ~${Math.round(expectedWindowMs / 1000)} s`);
    const fleetStart = Date.now();
    const deadline = fleetStart + o.deadlineMs;
    const creating = (async () => {
      for (let i = 0; i < o.runs; i++) {
        const v = i % VARIANTS.length;
        const key = `[chaos-r${String(i).padStart(3, '0')}]`;
        scriptFor(model, key, v);
        await until(`run r${i} to be created`, async () => kube.createRun(namespace, `r${String(i).padStart(3, '0')}`, runSpec(key, model.url, record)).then(() => true), 120_000, 500);
        await sleep(staggerMs);
      }
    })();
    const faults = injector.run(plan, deadline);
    await Promise.all([creating, faults]);
    log(`all faults injected after ${Math.round((Date.now() - fleetStart) / 1000)} s; waiting for the fleet to finish`);
    const fleetNames = Array.from({ length: o.runs }, (_, i) => `r${String(i).padStart(3, '0')}`);
    let lastRuns: AgentRunLike[] = [];
    const allDone = await until('every run to finish', async () => {
      lastRuns = (await kube.listRuns(namespace)).filter((r) => fleetNames.includes(r.metadata.name ?? ''));
      return lastRuns.length === o.runs && lastRuns.every(finished) ? true : undefined;
    }, Math.max(30_000, deadline - Date.now()), 1_000).catch(() => false);
    const fleetMs = Date.now() - fleetStart;
    await sleep(1_500); // let the last exec-log lines land

    // 3. Checks.
    const journal = await journalOf(kube, namespace);
    const exec = await execLines(execLog);
    const baselines = await Promise.all(VARIANTS.map(async (_, v) => {
      const run = await kube.getRun(namespace, `base-v${v}`);
      const texts = new Map<string, string>();
      for (const s of run.status?.steps ?? []) if (s.journal) texts.set(s.journal.name, journal.get(s.journal.name)?.text ?? '');
      return { run, key: `[chaos-base-v${v}]`, journal: texts };
    }));
    const baselineProblems = baselines.filter((b) => b.run.status?.phase !== 'Succeeded').map((b) => `baseline ${b.run.metadata.name ?? ''} ended ${String(b.run.status?.phase)}`);
    const runsNow = await kube.listRuns(namespace);
    // Pods whose output may have gone with them: those of the lost node, and those the pod-deletion
    // faults deleted (on a real node the kill can land after the tool ended, and the log goes with the pod).
    const loss = injector.records.find((r) => r.kind === 'node-loss' && !r.skipped);
    const deleted = injector.records.filter((r) => r.kind === 'pod-deletion' && r.pod !== undefined).map((r) => r.pod ?? '');
    const nodeLoss = { at: loss?.at ?? 0, pods: new Set([...(loss?.lostPods ?? []), ...deleted]) };
    const checks: RunCheck[] = fleetNames.map((name, i) => {
      const run = runsNow.find((r) => r.metadata.name === name);
      const v = i % VARIANTS.length;
      const key = `[chaos-r${String(i).padStart(3, '0')}]`;
      const base = baselines[v];
      if (!run || !base) return { name, variant: v, phase: 'Missing', resultMatches: false, stepsMatch: false, lostSteps: 0, journalMismatches: 0, modelCalls: 0, extraModelCalls: 0, unexplainedExtraCalls: 0, callsInterruptedByLeaderExits: 0, extraCallsBeyondInterruptions: 0, outageRejections: 0, toolStarts: 0, completedToolReruns: 0, interruptedToolReruns: 0, rerunsAfterUnreportedCompletion: 0, podLostSteps: 0, problems: ['run missing'] };
      return checkRun(run, v, key, base, journal, model.requests(key), exec, replicas.exits, openIntervals(run, model.requests(key), answered, journalWatch.firstSeen), nodeLoss);
    });

    // Kills that landed while a model call was open (sent, not yet journaled).
    const intervals = fleetNames.map((name, i) => openIntervals(runsNow.find((r) => r.metadata.name === name), model.requests(`[chaos-r${String(i).padStart(3, '0')}]`), answered, journalWatch.firstSeen));
    const inFlightAt = (t: number) => intervals.filter((list) => list.some(([from, to]) => t >= from && t <= to)).length;
    const leaderExits = replicas.exits.filter((e) => e.wasLeader);
    const kills = injector.records.filter((r) => r.kind === 'leader-kill' && !r.skipped);
    const killsDuringCall = kills.filter((k) => inFlightAt(k.at) > 0).length;
    const sum = (f: (c: RunCheck) => number) => checks.reduce((s, c) => s + f(c), 0);
    const injected = (kind: FaultKind) => injector.records.filter((r) => r.kind === kind && !r.skipped).length;
    const summary = {
      runs: o.runs,
      runsSucceeded: checks.filter((c) => c.phase === 'Succeeded').length,
      runsMatchingBaseline: checks.filter((c) => c.problems.length === 0).length,
      lostSteps: sum((c) => c.lostSteps),
      journalMismatches: sum((c) => c.journalMismatches),
      completedToolStepsExecutedTwice: sum((c) => c.completedToolReruns),
      interruptedToolStepsRerun: sum((c) => c.interruptedToolReruns),
      toolStepsRerunAfterUnreportedCompletionOnLostNode: sum((c) => c.rerunsAfterUnreportedCompletion),
      modelCalls: sum((c) => c.modelCalls),
      extraModelCalls: sum((c) => c.extraModelCalls),
      unexplainedExtraModelCalls: sum((c) => c.unexplainedExtraCalls),
      callsInterruptedByLeaderExits: sum((c) => c.callsInterruptedByLeaderExits),
      extraCallsBeyondInterruptions: sum((c) => c.extraCallsBeyondInterruptions),
      modelCallsRejectedByOutages: sum((c) => c.outageRejections),
      leaderKills: kills.length,
      leaderKillsDuringAModelCall: killsDuringCall,
      modelCallsInFlightAtKills: kills.reduce((s, k) => s + inFlightAt(k.at), 0),
      leaderExitsNotKilledByUs: leaderExits.filter((e) => !e.killedByUs).length,
      replicaExits: replicas.exits.length,
      podDeletions: injected('pod-deletion'),
      apiserverRestarts: injected('apiserver-restart'),
      etcdRestarts: injected('etcd-restart'),
      modelOutages: injected('model-outage'),
      kubeletRestarts: injected('kubelet-restart'),
      nodeLosses: injected('node-loss'),
      resumeAfterKillMs: summarize(kills.flatMap((k) => (k.firstStatusWriteMs === undefined ? [] : [k.firstStatusWriteMs]))),
      newLeaderAfterKillMs: summarize(kills.flatMap((k) => (k.newLeaderMs === undefined ? [] : [k.newLeaderMs]))),
      baselineMs, fleetMs, totalMs: Date.now() - started,
    };
    const broken: string[] = [...baselineProblems];
    // Why a run did not finish: its message, and the state of the pods of its running tool steps.
    const unfinished = await Promise.all(runsNow.filter((r) => fleetNames.includes(r.metadata.name ?? '') && !finished(r)).map(async (r) => {
      const pods = await Promise.all((r.status?.steps ?? []).filter((s) => s.kind === 'Tool' && s.phase === 'Running' && s.podName).map(async (s) => {
        const pod = await kube.core.readNamespacedPod({ namespace, name: s.podName ?? '' }).catch(() => undefined);
        return `${s.podName ?? ''}: ${pod ? `${pod.status?.phase ?? '?'} on ${pod.spec?.nodeName ?? 'no node (never bound)'}, created ${String(pod.metadata?.creationTimestamp)}` : 'gone'}`;
      }));
      return `${r.metadata.name ?? ''} (${r.status?.phase ?? '?'}: ${r.status?.message ?? ''}; ${pods.join('; ')})`;
    }));
    if (!allDone) broken.push(`not every run finished before the deadline: ${unfinished.join(' | ')}`);
    if (summary.runsSucceeded !== o.runs) broken.push(`${o.runs - summary.runsSucceeded} runs did not succeed`);
    if (summary.lostSteps > 0) broken.push(`${summary.lostSteps} steps lost`);
    if (summary.journalMismatches > 0) broken.push(`${summary.journalMismatches} journal entries differ from the baseline`);
    if (summary.completedToolStepsExecutedTwice > 0) broken.push(`${summary.completedToolStepsExecutedTwice} completed tool steps executed twice`);
    if (summary.extraCallsBeyondInterruptions > 0) broken.push(`${summary.extraCallsBeyondInterruptions} extra model calls beyond one per interrupted call`);
    if (summary.unexplainedExtraModelCalls > 0) broken.push(`${summary.unexplainedExtraModelCalls} extra model calls with no leader exit to explain them`);
    if (checks.some((c) => c.problems.length > 0)) broken.push(`${checks.filter((c) => c.problems.length > 0).length} runs differ from their baseline`);
    const notInjected = injector.records.filter((r) => r.skipped);
    if (notInjected.length > 0) broken.push(`${notInjected.length} planned faults could not be injected (${notInjected.map((r) => `${r.kind}: ${r.skipped ?? ''}`).join('; ')})`);

    const result = {
      kind: 'chaos', command: `npm run chaos -- ${process.argv.slice(2).join(' ')}`.trim(), machine, src, options: o,
      ok: broken.length === 0, broken, summary,
      faults: injector.records.map((r) => ({ ...r, atOffsetMs: r.at - fleetStart })),
      replicaExits: replicas.exits.map((e) => ({ ...e, atOffsetMs: e.at - fleetStart })),
      runs: checks,
      modelRequests: fleetNames.map((name, i) => ({
        run: name,
        openIntervalsOffsetMs: (intervals[i] ?? []).map(([from, to]) => [from - fleetStart, to - fleetStart]),
        calls: model.requests(`[chaos-r${String(i).padStart(3, '0')}]`).map((r) => ({
          turn: r.turnIndex, status: r.status, atOffsetMs: r.receivedAt - fleetStart, answeredOffsetMs: (answered.get(r.requestId) ?? Number.NaN) - fleetStart,
        })),
      })),
      cpu: cpu.stop(),
      execLog,
    };
    const path = await writeResult(o.small ? 'chaos-small' : 'chaos', result);
    // The committed copy of the raw result is the -latest one (timestamped files are not committed).
    if (o.writeDocs) await writeFile(join(repoRoot, 'docs', 'chaos.md'), renderChaosMarkdown(result, join(repoRoot, 'bench', 'results', 'chaos-latest.json')));
    log(`results: ${path}`);
    log(JSON.stringify(summary));
    if (broken.length > 0) {
      log(`GUARANTEES BROKEN:\n  - ${broken.join('\n  - ')}`);
      for (const c of checks.filter((x) => x.problems.length > 0).slice(0, 10)) log(`${c.name}: ${c.problems.slice(0, 5).join(' | ')}`);
      for (const op of replicas.all) log(`--- ${op.name} tail ---\n${op.tail(15)}`);
    } else log(`all guarantees held (${Math.round(summary.totalMs / 1000)} s)`);
    return broken.length === 0 ? 0 : 1;
  } finally {
    for (const step of cleanup) await step().catch((error: unknown) => { log(`cleanup: ${String(error)}`); });
    cpu.stop();
  }
}

main().then((code) => { process.exit(code); }, (error: unknown) => {
  log(`chaos failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exit(2);
});
