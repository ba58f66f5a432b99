/**
 * Kubernetes API helpers of the emulator: conflict-retried writes, Node conditions, serving certificate.
 */
import * as k8s from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LOCALHOST, MAX_CONFLICT_RETRIES, UNREACHABLE_TAINT } from './constants.ts';
import { isConflict, isNotFound } from './util.ts';

const execFileAsync = promisify(execFile);

/** Read, change, write back with the read resourceVersion; on a conflict start over. */
async function readModifyWrite<T>(read: () => Promise<T>, change: (object: T) => boolean, write: (object: T) => Promise<unknown>): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const object = await read();
    if (!change(object)) return false;
    try {
      await write(object);
      return true;
    } catch (error) {
      if (!isConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
    }
  }
}

/** Changes the status of the pod with this uid in place and writes it; false if that pod no longer exists. */
export async function updatePodStatus(core: k8s.CoreV1Api, namespace: string, name: string, uid: string,
  change: (status: k8s.V1PodStatus) => void): Promise<boolean> {
  try {
    return await readModifyWrite(() => core.readNamespacedPod({ name, namespace }), (pod) => {
      if (pod.metadata?.uid !== uid) return false;
      change(pod.status ??= {});
      return true;
    }, (pod) => core.replaceNamespacedPodStatus({ name, namespace, body: pod }));
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/** Changes a Node (metadata and spec) with conflict retries. */
export async function updateNode(core: k8s.CoreV1Api, name: string, change: (node: k8s.V1Node) => void): Promise<void> {
  await readModifyWrite(() => core.readNode({ name }), (node) => { change(node); return true; }, (node) => core.replaceNode({ name, body: node }));
}

/** Changes a Node's status with conflict retries. */
export async function updateNodeStatus(core: k8s.CoreV1Api, name: string, change: (node: k8s.V1Node) => void): Promise<void> {
  await readModifyWrite(() => core.readNode({ name }), (node) => { change(node); return true; }, (node) => core.replaceNodeStatus({ name, body: node }));
}

/** The final delete of the kubelet: grace 0, only this uid (a recreated pod of the same name is not ours). */
export async function deletePodNow(core: k8s.CoreV1Api, namespace: string, name: string, uid: string): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
  } catch (error) {
    if (!isNotFound(error) && !isConflict(error)) throw error;
  }
}

/** Node conditions as the kubelet reports them (True = Ready), or as the node lifecycle controller marks a silent node (Unknown). */
export function nodeConditions(ready: 'True' | 'Unknown', now: Date): k8s.V1NodeCondition[] {
  const unknown = { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' };
  const condition = (type: string, status: string, reason: string, message: string): k8s.V1NodeCondition => ({
    type, ...(ready === 'Unknown' ? unknown : { status, reason, message }), lastHeartbeatTime: now, lastTransitionTime: now,
  });
  return [
    condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
    condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
    condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
    condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
  ];
}

/** A toleration without tolerationSeconds for unreachable:NoExecute keeps the taint manager away. */
export function toleratesUnreachableForever(pod: k8s.V1Pod): boolean {
  return (pod.spec?.tolerations ?? []).some((toleration) =>
    (toleration.key === UNREACHABLE_TAINT || (!toleration.key && toleration.operator === 'Exists'))
    && (!toleration.effect || toleration.effect === 'NoExecute')
    && typeof toleration.tolerationSeconds !== 'number');
}

/** Signs a serving certificate for 127.0.0.1 with the cluster CA (the apiserver verifies kubelets with it). */
export async function issueServingCertificate(dir: string, ca: { caCert: string; caKey: string }, nodeName: string): Promise<{ cert: Buffer; key: Buffer }> {
  await mkdir(dir, { recursive: true });
  const [key, csr, cert, ext] = ['kubelet.key', 'kubelet.csr', 'kubelet.crt', 'kubelet.ext'].map((file) => join(dir, file)) as [string, string, string, string];
  await writeFile(ext, `subjectAltName=IP:${LOCALHOST},DNS:localhost,DNS:${nodeName}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
  await execFileAsync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', csr, '-subj', `/O=system:nodes/CN=system:node:${nodeName}`]);
  // A random serial instead of -CAcreateserial: parallel test files must not race on the CA's serial file.
  await execFileAsync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey,
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '30', '-out', cert, '-extfile', ext]);
  return { cert: await readFile(cert), key: await readFile(key) };
}
