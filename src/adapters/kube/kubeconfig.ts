/**
 * A KubeConfig whose requests share one connection pool. client-node 2.0.1 builds a new undici
 * Agent for every request, so no TLS connection is ever reused: every call pays a handshake, which
 * on two cores made a reconcile of four writes take half a second. The first Agent is kept and
 * every later request is sent through it (same cluster, same TLS credentials).
 */
import * as k8s from '@kubernetes/client-node';

type RequestContext = Parameters<k8s.KubeConfig['applySecurityAuthentication']>[0];
type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** A KubeConfig whose requests share one pooled HTTP dispatcher (keep-alive connections). */
export class PooledKubeConfig extends k8s.KubeConfig {
  private pooled: Dispatcher | undefined;
  private pooledFor: string | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return;
    // The pool is only valid for the context it was made for (kubeconfigs can switch context).
    const key = `${this.getCurrentContext()}\u0000${this.getCurrentCluster()?.server ?? ''}`;
    if (this.pooled === undefined || this.pooledFor !== key) {
      this.pooled = fresh;
      this.pooledFor = key;
      return;
    }
    context.setDispatcher(this.pooled);
    void fresh.close();
  }
}

/** Loads a kubeconfig file, or the default (in-cluster, then ~/.kube/config), with pooled connections. */
export function loadPooledKubeConfig(path: string | undefined): k8s.KubeConfig {
  const kc = new PooledKubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}
