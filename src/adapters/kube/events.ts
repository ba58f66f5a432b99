/** Records Kubernetes Events on a run or an MCPServer, as `kubectl describe` shows them. */
import type { CoreV1Api } from '@kubernetes/client-node';
import { API_VERSION } from '../../api/group.ts';
import type { EventSink, EventSubject } from '../../ports.ts';
import { kubeCall } from './errors.ts';

/** Records Kubernetes Events on a run or an MCPServer (core/v1 Events, best effort). */
export class KubeEventSink implements EventSink {
  private readonly core: CoreV1Api;
  private readonly component: string;
  private readonly host: string;
  constructor(core: CoreV1Api, component = 'agentrun-operator', host = process.env.HOSTNAME ?? 'local') {
    this.core = core;
    this.component = component;
    this.host = host;
  }

  async emit(run: EventSubject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await kubeCall(() => this.core.createNamespacedEvent({
      namespace: run.namespace,
      body: {
        metadata: { generateName: `${run.name}.`, namespace: run.namespace },
        involvedObject: {
          apiVersion: API_VERSION,
          kind: run.kind ?? 'AgentRun',
          name: run.name,
          namespace: run.namespace,
          uid: run.uid,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        firstTimestamp: now,
        lastTimestamp: now,
        eventTime: undefined,
        count: 1,
        source: { component: this.component, host: this.host },
        reportingComponent: `agentrun.dev/${this.component}`,
        reportingInstance: this.host,
      },
    }));
  }
}
