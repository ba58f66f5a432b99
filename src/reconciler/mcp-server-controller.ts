/**
 * Wires the MCPServer controller: an informer per watched namespace feeds a controller (the
 * generic runtime in src/controller/) whose reconcile is MCPServerReconciler. Controllers start
 * only with leadership, so only the leader holds sessions to MCP servers and writes their status.
 */
import * as k8s from '@kubernetes/client-node';
import { MCP_SERVER_PLURAL } from '../api/mcp-server.ts';
import { Controller, Informer, objectKey, type Logger, type Manager, type ReconcileOutcome,
  type Selectors } from '../controller/index.ts';
import type { EventSink, ManagedObjectsClient, MCPDiscovery, MCPServerStatusWriter } from '../ports.ts';
import { MCPServerReconciler, type MCPServerObject } from './mcp-server-reconciler.ts';
import { MCP_COMPONENT } from '../core/mcp-managed.ts';
import { Label, MANAGED_BY } from '../api/conditions.ts';
import { MCP_SERVER_KIND } from '../api/mcp-server.ts';
import type { ManagedSettings } from './mcp-managed-reconcile.ts';

type Obj = k8s.KubernetesObject;

/** What the MCPServer controller is wired with (src/operator.ts). */
export interface MCPServerControllerOptions {
  readonly manager: Manager;
  readonly kc: k8s.KubeConfig;
  readonly log: Logger;
  readonly namespaces: readonly (string | undefined)[];
  readonly customPath: (plural: string, ns: string | undefined) => string;
  readonly customList: (plural: string,
    ns: string | undefined) => (s: Selectors) => Promise<k8s.KubernetesListObject<Obj>>;
  /** Lists Deployments in a namespace (all when undefined): the apps/v1 adapter, wired in src/operator.ts. */
  readonly listDeployments: (ns: string | undefined) => (s: Selectors) => Promise<k8s.V1DeploymentList>;
  /** Writes MCPServer status (the Kubernetes adapter, wired in src/operator.ts). */
  readonly status: MCPServerStatusWriter;
  /** Opens MCP discovery sessions (the SDK adapter, wired in src/operator.ts). */
  readonly discovery: MCPDiscovery;
  /** Records Events on MCPServers (the Kubernetes adapter, wired in src/operator.ts). */
  readonly events: EventSink;
  readonly workers: number;
  /** An MCPServer in `namespace` changed (runs waiting for it may go on). */
  readonly onChange: (namespace: string | undefined) => void;
  readonly onReconcileDone: (durationMs: number, outcome: ReconcileOutcome) => void;
  /** Managed servers: who may reach them and how the operator does (flags --mcp-*). */
  readonly managed: ManagedSettings;
  /** Managed servers' owned objects (the Kubernetes adapter, wired in src/operator.ts). */
  readonly managedObjects: ManagedObjectsClient;
}

/** The wired MCPServer controller: its reconciler, its runtime controller and the informers' view. */
export interface MCPServerController {
  readonly reconciler: MCPServerReconciler;
  readonly controller: Controller;
  get(namespace: string, name: string): MCPServerObject | undefined;
}

/** Adds the MCPServer informers and controller to the manager (they run only while leading). */
export function addMCPServerController(o: MCPServerControllerOptions): MCPServerController {
  const informers = o.namespaces.map((ns) => o.manager.addInformer(new Informer<Obj>({
    kc: o.kc,
    log: o.log,
    name: `${MCP_SERVER_PLURAL}${ns ? `/${ns}` : ''}`,
    path: o.customPath(MCP_SERVER_PLURAL, ns),
    list: o.customList(MCP_SERVER_PLURAL, ns),
    onEvent: (_type, obj) => {
      o.onChange(obj.metadata?.namespace);
    },
  })));
  const get = (namespace: string, name: string): MCPServerObject | undefined => {
    for (const inf of informers) {
      const hit = inf.get(namespace, name);
      if (hit) return hit as MCPServerObject;
    }
    return undefined;
  };
  // Managed servers' Deployments: an availability change or a tenant's edit reconciles the owner.
  const selector = `${Label.managedBy}=${MANAGED_BY},${Label.component}=${MCP_COMPONENT}`;
  const deployments = o.namespaces.map((ns) => o.manager.addInformer(new Informer<k8s.V1Deployment>({
    kc: o.kc,
    log: o.log,
    name: `mcp-deployments${ns ? `/${ns}` : ''}`,
    labelSelector: selector,
    path: ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments',
    list: o.listDeployments(ns),
  })));
  const reconciler: MCPServerReconciler = new MCPServerReconciler({
    get,
    status: o.status,
    discovery: o.discovery,
    events: o.events,
    clock: { now: () => Date.now() },
    log: o.log,
    enqueue: (key) => {
      controller.enqueue(key);
    },
    managed: { client: o.managedObjects, settings: o.managed },
  });
  const controller = o.manager.addController(new Controller({
    name: 'mcpserver',
    reconcile: reconciler.reconcile,
    workers: Math.min(o.workers, 4),
    log: o.log,
    queue: { baseDelayMs: 500, maxDelayMs: 60_000 },
    onReconcileDone: (_key, durationMs, outcome) => {
      o.onReconcileDone(durationMs, outcome);
    },
  }));
  for (const inf of informers) controller.watch(inf, (obj) => [objectKey(obj)]);
  for (const inf of deployments) controller.watch(inf, managedOwnerKeys);
  return { reconciler, controller, get };
}

/** The MCPServer that controls a managed Deployment (none for any other Deployment). */
function managedOwnerKeys(deployment: k8s.V1Deployment): string[] {
  const owner = deployment.metadata?.ownerReferences?.find((r) => r.kind === MCP_SERVER_KIND && r.controller);
  const namespace = deployment.metadata?.namespace;
  return owner && namespace ? [`${namespace}/${owner.name}`] : [];
}
