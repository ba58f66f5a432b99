/**
 * Work-queue keys for Kubernetes objects: `namespace/name`, or `name` for cluster-scoped objects
 * (client-go's MetaNamespaceKeyFunc format).
 */
import type { KubernetesObject } from '@kubernetes/client-node';

/** The namespace and name a key stands for; `namespace` is '' for cluster-scoped objects. */
export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

/** Returns the work-queue key of an object; throws if the object has no `metadata.name`. */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new TypeError(`cannot key a ${obj.kind ?? 'object'} without metadata.name`);
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by {@link objectKey} back into namespace and name. */
export function parseKey(key: string): ObjectRef {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
