/**
 * A human-like approver: approves pending tool steps after seeded delays, as agentrun-approver.
 */
import * as k8s from '@kubernetes/client-node';
import { approveKey } from '../../src/api/approval.ts';
import { Kube } from '../../test/harness/own-cluster.ts';

/** Approves every pending tool step after a seeded human-like delay, as a user bound to agentrun-approver. */
export class Approver {
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
