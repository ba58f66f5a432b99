/**
 * Seeded faults (leader kills, pod deletions, control-plane restarts, outages, node loss) and a journal watch.
 */
import * as k8s from '@kubernetes/client-node';
import type { MockModelServer } from '../../test/harness/mock-model-server.ts';
import { readRealNodes, restartKubelet, stopKubelet, stopRealNodes } from '../../test/harness/real-node.ts';
import { sleep } from '../../test/harness/measure.ts';
import { Kube, restartComponent, until, type OwnCluster, type RestartRecord } from '../../test/harness/own-cluster.ts';
import { JOURNALS, execLines } from './checks.ts';
import { log } from './log.ts';
import type { Options } from './options.ts';
import { Replicas } from './replicas.ts';

/** The kinds of fault the chaos suite injects. */
export type FaultKind = 'leader-kill' | 'pod-deletion' | 'apiserver-restart' | 'etcd-restart' | 'model-outage' | 'kubelet-restart' | 'node-loss';

/** The group of the real node that may be lost (the cluster's own node stays). */
export const LOSABLE_GROUP = 'chaos-b';

/** One fault: when, what, and how the cluster took it (or why it was not injected). */
export interface FaultRecord {
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

/** Injects the seeded faults one after another and records each (or why it was skipped). */
export class FaultInjector {
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
export class JournalWatch {
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
