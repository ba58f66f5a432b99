/**
 * Two supervised operator replicas with leader election; a replica that exits is restarted.
 */
import { sleep } from '../../test/harness/measure.ts';
import { Kube } from '../../test/harness/own-cluster.ts';
import { OperatorProcess, type Exit } from '../../test/harness/operator-process.ts';
import { log } from './log.ts';
import type { Options } from './options.ts';

/**
 * `at`: when the process stopped serving — the SIGKILL for our kills (the exit event comes later,
 * when Node reaps the child, up to hundreds of ms on a loaded machine), else the exit itself.
 */
export interface ReplicaExit { replica: string; at: number; exitedAt: number; code: number | null; signal: string | null; killedByUs: boolean; wasLeader: boolean }

/** Two operator replicas with leader election; a replica that exits is started again after 1 s. */
export class Replicas {
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
