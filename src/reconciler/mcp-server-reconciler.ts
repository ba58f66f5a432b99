/**
 * Reconciles one MCPServer: keeps a session open to it (the leader only: controllers run only
 * while leading), lists its tools with tools/list on spec.refreshInterval and whenever the server
 * sends notifications/tools/list_changed, and writes status: the Ready condition with a reason and
 * a message that says what to fix, serverInfo and the bounded discoveredTools. Runs read that
 * status (through the informer) when they resolve their tools at start.
 */
import { mcpServerSpec, MCPReason, type MCPServerSpec, type MCPServerStatus } from '../api/mcp-server.ts';
import type { Condition } from '../api/primitives.ts';
import { parseDurationMs } from '../api/primitives.ts';
import { ConflictError, TerminalError, parseKey, type Logger, type ReconcileResult } from '../controller/index.ts';
import { canonicalJson } from '../core/canonical.ts';
import { boundDiscovery } from '../core/mcp-discovery.ts';
import { MCPUnreachableError, describeError, isConflict, isNotFound } from '../port-errors.ts';
import type { EventSink, EventSubject, ManagedObjectsClient, MCPDiscovery, MCPDiscoverySession, MCPServerStatusWriter,
  WallClock } from '../ports.ts';
import { MANAGED_POLL_MS, reconcileManaged, type ManagedSettings } from './mcp-managed-reconcile.ts';

/** An MCPServer as the informer caches it. */
export interface MCPServerObject {
  metadata: { name: string; namespace: string; uid?: string; generation?: number; resourceVersion?: string };
  spec: unknown;
  status?: MCPServerStatus;
}

/** The ports an MCPServerReconciler works through. */
export interface MCPServerReconcilerDeps {
  readonly get: (namespace: string, name: string) => MCPServerObject | undefined;
  readonly status: MCPServerStatusWriter;
  /** Opens the sessions tools are listed on (adapters/mcp/discovery.ts). */
  readonly discovery: MCPDiscovery;
  readonly clock: WallClock;
  readonly log: Logger;
  readonly enqueue: (key: string) => void;
  /** Records Events on the MCPServer: Ready turning, owned objects created or restored. */
  readonly events: EventSink;
  /** Managed servers: the objects' client and where the operator's pods are. */
  readonly managed?: { readonly client: ManagedObjectsClient; readonly settings: ManagedSettings };
}

/** How soon a server that could not be reached is tried again (at most; its refreshInterval if shorter). */
export const MCP_RETRY_MS = 15_000;

interface Watch {
  fingerprint: string;
  session: Promise<MCPDiscoverySession>;
  listedAt: number;
  changed: boolean;
}

/** Reconciles an MCPServer: its managed objects, a session, tools/list into status and Ready. */
export class MCPServerReconciler {
  private readonly d: MCPServerReconcilerDeps;
  private readonly watches = new Map<string, Watch>();
  constructor(deps: MCPServerReconcilerDeps) {
    this.d = deps;
  }

  readonly reconcile = async (key: string): Promise<ReconcileResult> => {
    const { namespace, name } = parseKey(key);
    const obj = this.d.get(namespace, name);
    if (!obj) {
      this.close(key);
      return;
    }
    const parsed = mcpServerSpec.safeParse(obj.spec);
    if (!parsed.success)
      throw new TerminalError(
        `MCPServer ${key} does not match the v1alpha1 schema: ${parsed.error.message.slice(0, 500)}`,
      );
    const current = obj.status ?? {};
    const now = this.d.clock.now();
    let spec = parsed.data;
    if (spec.managed) {
      if (!this.d.managed)
        throw new TerminalError(`MCPServer ${key} is managed, but this controller runs no managed servers`);
      const managed = await reconcileManaged(this.d.managed.client, { name, namespace, uid: obj.metadata.uid ?? '' },
        spec.managed, this.d.managed.settings);
      const subject: EventSubject = { kind: 'MCPServer', name, namespace, uid: obj.metadata.uid ?? '' };
      for (const change of managed.changes) {
        this.d.log.info({ mcpServer: key, change: change.description }, 'managed MCP server object changed');
        const created = change.action === 'created';
        await this.emit(subject, created ? 'Normal' : 'Warning', created ? 'ObjectCreated' : 'DriftReverted',
          `${change.description}.`);
      }
      if (managed.kind === 'not-ready') {
        this.close(key);
        const next: MCPServerStatus = { ...current, observedGeneration: obj.metadata.generation ?? 0,
          conditions: [condition(current, 'False', managed.reason, managed.message, obj.metadata.generation, now)] };
        if (canonicalJson(next) !== canonicalJson(current)) {
          if (managed.reason !== 'Deploying')
            this.d.log.warn({ mcpServer: key, reason: managed.reason }, managed.message);
          await this.write(obj, next);
        }
        // Deploying is polled (pods are not watched); a failure is looked at less often: the pod
        // becoming available changes the Deployment, whose informer reconciles at once.
        return { requeueAfterMs: managed.reason === 'Deploying' ? MANAGED_POLL_MS : MCP_RETRY_MS };
      }
      spec = { ...spec, url: managed.url };
    }
    const refreshMs = parseDurationMs(spec.refreshInterval);
    const watch = this.watch(key, namespace, spec);
    const upToDate = current.observedGeneration === obj.metadata.generation && ready(current) !== undefined;
    if (upToDate && !watch.changed && now - watch.listedAt < refreshMs)
      return { requeueAfterMs: watch.listedAt + refreshMs - now };

    let next: MCPServerStatus;
    let requeueAfterMs = refreshMs;
    try {
      const session = await watch.session;
      watch.changed = false;
      const listed = await session.listTools(parseDurationMs(spec.timeouts.connect));
      watch.listedAt = this.d.clock.now();
      const discovery = boundDiscovery(listed, session.server.toolTasks === true);
      next = {
        observedGeneration: obj.metadata.generation ?? 0,
        serverInfo: {
          ...(session.server.name ? { name: session.server.name.slice(0, 256) } : {}),
          ...(session.server.version ? { version: session.server.version.slice(0, 128) } : {}),
          ...(session.server.protocolVersion ? { protocolVersion: session.server.protocolVersion.slice(0, 64) } : {}),
        },
        toolCount: discovery.total,
        discoveredTools: discovery.tools,
        lastRefreshTime: new Date(watch.listedAt).toISOString(),
        ...(spec.url ? { url: spec.url } : {}),
        conditions: [
          condition(current, 'True', MCPReason.Connected,
            `${discovery.total} tools listed; refreshed every ${spec.refreshInterval} `
              + 'and on notifications/tools/list_changed.'
              + (discovery.notes.length > 0 ? ` Note: ${discovery.notes.join('; ')}.` : ''), obj.metadata.generation,
            now),
        ],
      };
    } catch (error) {
      // The session is opened again next time; the tools listed before stay (runs already resolved keep theirs anyway).
      this.close(key);
      const unreachable = error instanceof MCPUnreachableError ? error : undefined;
      const secret = unreachable?.reason === 'secret';
      const reason = secret
        ? MCPReason.SecretUnavailable
        : unreachable
        ? MCPReason.ConnectFailed
        : MCPReason.ListToolsFailed;
      const what = unreachable ? unreachable.message : `${spec.url ?? ''}: ${describeError(error).slice(0, 500)}`;
      const fix = secret ?
        'create the Secret (and list it in the chart value mcpServerSecrets)'
        : spec.managed ?
        'check that the image serves MCP Streamable HTTP on spec.managed.port at spec.managed.path'
        : 'check that the server runs and spec.url is its Streamable HTTP endpoint (path included, e.g. /mcp)';
      next = { ...current, observedGeneration: obj.metadata.generation ?? 0,
        conditions: [
          condition(current, 'False', reason, `${what}. Fix: ${fix}. Retrying.`, obj.metadata.generation, now),
        ] };
      requeueAfterMs = Math.min(refreshMs, MCP_RETRY_MS);
      this.d.log.warn({ mcpServer: key, reason, err: what }, 'MCP server not ready');
    }
    // A successful refresh is written (lastRefreshTime); a failure repeating itself is not.
    if (canonicalJson(next) !== canonicalJson(current)) {
      await this.write(obj, next);
    }
    return { requeueAfterMs };
  };

  /** Writes status, then tells `kubectl describe mcpserver` when Ready turned or its reason changed. */
  private async write(obj: MCPServerObject, status: MCPServerStatus): Promise<void> {
    const { name, namespace, resourceVersion, uid } = obj.metadata;
    const before = ready(obj.status ?? {});
    try {
      await this.d.status.write(namespace, name, resourceVersion, status);
    } catch (error) {
      if (isNotFound(error)) return;
      if (isConflict(error))
        throw new ConflictError('the MCPServer changed since it was read', { retryAfterMs: 200, cause: error });
      throw error;
    }
    const after = ready(status);
    if (after && (after.status !== before?.status || after.reason !== before.reason)) {
      const subject: EventSubject = { kind: 'MCPServer', name, namespace, uid: uid ?? '' };
      await this.emit(subject, after.status === 'True' ? 'Normal' : 'Warning', after.reason, after.message);
    }
  }

  /** Events are best effort: a failure is logged, never fails the reconcile. */
  private async emit(on: EventSubject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.d.events.emit(on, type, reason, message).catch((error: unknown) => {
      this.d.log.warn({ mcpServer: `${on.namespace}/${on.name}`, reason, err: describeError(error) },
        'could not record an Event');
    });
  }

  /** The session for the server's current spec; a spec change (URL, headers) opens a new one. */
  private watch(key: string, namespace: string, spec: MCPServerSpec): Watch {
    const fingerprint = JSON.stringify(spec);
    const existing = this.watches.get(key);
    if (existing?.fingerprint === fingerprint) return existing;
    this.close(key);
    const watch: Watch = {
      fingerprint,
      listedAt: 0,
      changed: true,
      session: this.d.discovery.open(namespace, spec, {
        onToolsChanged: () => {
          watch.changed = true;
          this.d.enqueue(key);
        },
        onClose: () => {
          if (this.watches.get(key) === watch) {
            this.watches.delete(key);
            this.d.enqueue(key);
          }
        },
        // The server's stream broke (it restarted or went away): list again on a new session, or say it is down.
        onError: () => {
          if (this.watches.get(key) === watch) {
            this.close(key);
            this.d.enqueue(key);
          }
        },
      }),
    };
    watch.session.catch(() => undefined);
    this.watches.set(key, watch);
    return watch;
  }

  private close(key: string): void {
    const watch = this.watches.get(key);
    this.watches.delete(key);
    watch?.session.then((s) => s.close(), () => undefined).catch(() => undefined);
  }

  /** Closes every session (the operator stops). */
  closeAll(): void {
    for (const key of [...this.watches.keys()]) this.close(key);
  }
}

function ready(status: MCPServerStatus): Condition | undefined {
  return status.conditions?.find((c) => c.type === 'Ready');
}

function condition(current: MCPServerStatus, status: Condition['status'], reason: string, message: string,
  generation: number | undefined, now: number): Condition {
  const existing = ready(current);
  return {
    type: 'Ready',
    status,
    reason,
    message: message.slice(0, 4096),
    lastTransitionTime: existing && existing.status === status
      ? existing.lastTransitionTime
      : new Date(now).toISOString(),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}
