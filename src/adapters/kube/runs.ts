/** Writes to AgentRuns: status under a resourceVersion lock, finalizers, deletion. */
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import type { AgentRunStatus } from '../../api/agent-run.ts';
import { GROUP, VERSION } from '../../api/group.ts';
import type { AgentRunObject, RunOwner, RunWriter } from '../../ports.ts';
import { isNotFound } from '../../port-errors.ts';
import { kubeCall } from './errors.ts';

const PLURAL = 'agentruns';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Writes a run's status (compare-and-swap), finalizers, and deletes runs. */
export class KubeRunWriter implements RunWriter {
  private readonly api: CustomObjectsApi;
  constructor(api: CustomObjectsApi) {
    this.api = api;
  }

  async writeStatus(run: AgentRunObject, status: AgentRunStatus): Promise<string> {
    // The resourceVersion makes this a compare-and-swap: our status is not derivable from the
    // cluster, so a write based on a stale read must fail (409) rather than lose history.
    const written = await kubeCall(() => this.api.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: run.metadata.namespace,
      name: run.metadata.name,
      body: {
        apiVersion: run.apiVersion,
        kind: run.kind,
        metadata: {
          name: run.metadata.name,
          namespace: run.metadata.namespace,
          resourceVersion: run.metadata.resourceVersion,
        },
        status,
      },
    })) as { metadata: { resourceVersion: string } };
    return written.metadata.resourceVersion;
  }

  async addFinalizer(run: AgentRunObject, finalizer: string): Promise<string> {
    return this.patchFinalizers(run, [...(run.metadata.finalizers ?? []).filter((f) => f !== finalizer), finalizer]);
  }

  /** Returns the run's new resourceVersion, or undefined when the run is already gone. */
  async removeFinalizer(run: AgentRunObject, finalizer: string): Promise<string | undefined> {
    try {
      return await this.patchFinalizers(run, (run.metadata.finalizers ?? []).filter((f) => f !== finalizer));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return undefined;
    }
  }

  async delete(run: RunOwner): Promise<void> {
    await kubeCall(() => this.api.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: run.namespace,
      name: run.name,
      propagationPolicy: 'Background',
    })).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
  }

  private async patchFinalizers(run: AgentRunObject, finalizers: string[]): Promise<string> {
    const patched = await kubeCall(() =>
      this.api.patchNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: run.metadata.namespace,
        name: run.metadata.name,
        body: { metadata: { finalizers, resourceVersion: run.metadata.resourceVersion } },
      }, mergePatch)
    ) as { metadata: { resourceVersion: string } };
    return patched.metadata.resourceVersion;
  }
}
