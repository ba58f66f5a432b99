/**
 * Dev mode's console narration: one line whenever an AgentRun of the dev namespace changes phase
 * or starts waiting for something else, so the terminal shows what `kubectl get agentruns -w`
 * would, plus the command to type when a run waits for approval.
 */
import * as k8s from '@kubernetes/client-node';

interface RunView {
  metadata?: { name?: string };
  status?: { phase?: string; currentStep?: string; waitingFor?: string; message?: string; result?: string; usage?: { totalTokens?: number } };
}

const POLL_MS = 1_000;

export class RunProgress {
  private readonly api: k8s.CustomObjectsApi;
  private readonly namespace: string;
  private readonly say: (line: string) => void;
  private readonly seen = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;

  constructor(kubeconfig: string, namespace: string, say: (line: string) => void) {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
    this.namespace = namespace;
    this.say = say;
  }

  start(): void { void this.tick(); }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    try {
      const list = await this.api.listNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace: this.namespace }) as { items: RunView[] };
      this.failures = 0;
      for (const run of list.items) this.report(run);
    } catch (error) {
      if (++this.failures === 5) this.say(`(cannot list AgentRuns: ${error instanceof Error ? error.message : String(error)})`);
    }
    if (!this.stopped) this.timer = setTimeout(() => { void this.tick(); }, POLL_MS);
  }

  private report(run: RunView): void {
    const name = run.metadata?.name ?? '?';
    const s = run.status ?? {};
    const key = `${s.phase ?? ''}|${s.waitingFor ?? ''}|${s.currentStep ?? ''}`;
    if (!s.phase || this.seen.get(name) === key) return;
    this.seen.set(name, key);
    const parts = [`run ${name}: ${s.phase}`];
    if (s.currentStep) parts.push(`step ${s.currentStep}`);
    if (s.waitingFor) parts.push(`waiting for ${s.waitingFor}`);
    if (s.usage?.totalTokens) parts.push(`${s.usage.totalTokens} tokens`);
    this.say(parts.join(' · '));
    if (s.phase === 'AwaitingApproval') this.say(`  → decide: kubectl agentrun describe ${name}, then kubectl agentrun approve ${name} (or reject ${name} STEP --reason ...)`);
    if (s.phase === 'Succeeded' && s.result) this.say(`  → result: ${s.result.split('\n').join(' ')}`);
    if ((s.phase === 'Failed' || s.phase === 'Cancelled') && s.message) this.say(`  → ${s.message}`);
  }
}
