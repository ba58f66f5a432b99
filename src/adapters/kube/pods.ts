/** Tool pod I/O: create (AlreadyExists = adopt), delete (NotFound = done), live existence, logs. */
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { TOOL_POD_FINALIZER } from '../../api/conditions.ts';
import type { PodClient } from '../../ports.ts';
import { isAlreadyExists, isNotFound } from '../../port-errors.ts';
import { kubeCall } from './errors.ts';

const strategicMerge = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/** Creates, releases and deletes tool pods and reads their logs through the apiserver. */
export class KubePodClient implements PodClient {
  private readonly core: CoreV1Api;
  constructor(core: CoreV1Api) {
    this.core = core;
  }

  async create(pod: V1Pod): Promise<V1Pod | undefined> {
    try {
      const namespace = pod.metadata?.namespace ?? '';
      return await kubeCall(() => this.core.createNamespacedPod({ namespace, body: pod }));
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      return undefined;
    }
  }

  /** Deletes the pod and releases the operator's finalizer on it (both are idempotent). */
  async delete(namespace: string, name: string): Promise<void> {
    try {
      await kubeCall(() => this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 5 }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    await this.release(namespace, name);
  }

  async release(namespace: string, name: string): Promise<void> {
    try {
      // Strategic merge: removes only our finalizer, whatever else is on the pod.
      await kubeCall(() =>
        this.core.patchNamespacedPod(
          { namespace, name, body: { metadata: { '$deleteFromPrimitiveList/finalizers': [TOOL_POD_FINALIZER] } } },
          strategicMerge,
        )
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async deleteAll(namespace: string, labelSelector: string): Promise<void> {
    await kubeCall(() => this.core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 5 }));
  }

  async readLog(
    namespace: string,
    name: string,
    container: string,
    limitBytes: number,
  ): Promise<{ text: string; truncated: boolean }> {
    // One byte more than the limit tells "exactly at the limit" from "cut off".
    const text = await kubeCall(() => this.core.readNamespacedPodLog({
      namespace,
      name,
      container,
      limitBytes: limitBytes + 1,
    }));
    // A real kubelet whose container is gone (removed with its pod, garbage-collected) answers 200
    // with this sentence as the "log": it is a failed read, never the tool's output.
    if (KUBELET_LOGS_GONE.test(text)) throw new Error(text.trim());
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length <= limitBytes) return { text, truncated: false };
    return { text: bytes.subarray(0, limitBytes).toString('utf8'), truncated: true };
  }
}

/** What a kubelet writes instead of the log of a container it no longer has (pkg/kubelet/kubelet_pods.go). */
export const KUBELET_LOGS_GONE = /^unable to retrieve container logs for \S+\s*$/;
