/**
 * Wires the MCPServer controller: an informer per watched namespace feeds a controller (the
 * generic runtime in src/controller/) whose reconcile is MCPServerReconciler. Controllers start
 * only with leadership, so only the leader holds sessions to MCP servers and writes their status.
 */
import type * as k8s from '@kubernetes/client-node';
import { MCP_SERVER_PLURAL } from '../api/mcp-server.ts';
import { Controller, Informer, objectKey, type Logger, type Manager, type ReconcileOutcome, type Selectors } from '../controller/index.ts';
import type { MCPServerStatusWriter, SecretReader } from '../ports.ts';
import { MCPServerReconciler, type MCPServerObject } from './mcp-server-reconciler.ts';

type Obj = k8s.KubernetesObject;

export interface MCPServerControllerOptions {
  readonly manager: Manager;
  readonly kc: k8s.KubeConfig;
  readonly log: Logger;
  readonly namespaces: readonly (string | undefined)[];
  readonly customPath: (plural: string, ns: string | undefined) => string;
  readonly customList: (plural: string, ns: string | undefined) => (s: Selectors) => Promise<k8s.KubernetesListObject<Obj>>;
  /** Writes MCPServer status (the Kubernetes adapter, wired in src/operator.ts). */
  readonly status: MCPServerStatusWriter;
  readonly secrets: SecretReader;
  readonly workers: number;
  /** An MCPServer in `namespace` changed (runs waiting for it may go on). */
  readonly onChange: (namespace: string | undefined) => void;
  readonly onReconcileDone: (durationMs: number, outcome: ReconcileOutcome) => void;
}

export interface MCPServerController {
  readonly reconciler: MCPServerReconciler;
  readonly controller: Controller;
  get(namespace: string, name: string): MCPServerObject | undefined;
}

export function addMCPServerController(o: MCPServerControllerOptions): MCPServerController {
  const ref: { controller?: Controller } = {};
  const informers = o.namespaces.map((ns) => o.manager.addInformer(new Informer<Obj>({
    kc: o.kc, log: o.log, name: `${MCP_SERVER_PLURAL}${ns ? `/${ns}` : ''}`,
    path: o.customPath(MCP_SERVER_PLURAL, ns), list: o.customList(MCP_SERVER_PLURAL, ns),
    onEvent: (_type, obj) => { ref.controller?.enqueue(objectKey(obj)); o.onChange(obj.metadata?.namespace); },
  })));
  const get = (namespace: string, name: string): MCPServerObject | undefined => {
    for (const inf of informers) {
      const hit = inf.get(namespace, name);
      if (hit) return hit as MCPServerObject;
    }
    return undefined;
  };
  const reconciler = new MCPServerReconciler({
    get, status: o.status, secrets: o.secrets, clock: { now: () => Date.now() }, log: o.log,
    enqueue: (key) => { ref.controller?.enqueue(key); },
  });
  const controller = o.manager.addController(new Controller({
    name: 'mcpserver', reconcile: reconciler.reconcile, workers: Math.min(o.workers, 4), log: o.log,
    queue: { baseDelayMs: 500, maxDelayMs: 60_000 },
    onReconcileDone: (_key, durationMs, outcome) => { o.onReconcileDone(durationMs, outcome); },
  }));
  ref.controller = controller;
  return { reconciler, controller, get };
}
