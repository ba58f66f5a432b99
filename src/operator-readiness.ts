/**
 * What /readyz says and what the gauges show at each scrape: part of the composition root
 * (src/operator.ts), reading the manager, the leader elector and the informers.
 */
import type { Controller, LeaderElector, Manager } from './controller/index.ts';
import type { Readiness } from './observability/http-server.ts';
import type { ObservedRun, OperatorMetrics } from './observability/metrics.ts';

/** What readiness and the gauges read. */
export interface ReadinessSources {
  readonly manager: Manager;
  readonly elector: LeaderElector | undefined;
  /** True once stop() began. */
  readonly stopping: () => boolean;
}

/** Ready once the caches are synced, whether leading or standing by; not while stopping. */
export function readinessOf(s: ReadinessSources): Readiness {
  if (s.stopping() || s.manager.isStopping()) return { ready: false, reason: 'stopping' };
  if (!s.manager.hasSynced()) return { ready: false, reason: 'caches not synced yet' };
  const elector = s.elector;
  if (!elector) return { ready: true, reason: 'ok' };
  if (elector.isLeader()) return { ready: true, reason: `ok: leader (${elector.identity})` };
  return { ready: true, reason: `ok: standby, caches synced (leader: ${elector.leader() || 'none yet'})` };
}

/** Whether this process reconciles now: it leads, or (without leader election) its controllers run. */
export function isReconciling(manager: Manager, elector: LeaderElector | undefined): boolean {
  return elector === undefined ? manager.hasStartedControllers() : elector.isLeader();
}

/** Sets the gauges that are read rather than counted: queue depth, calls in flight, leadership, runs by phase. */
export function refreshGauges(metrics: OperatorMetrics, s: ReadinessSources & {
  readonly controller: Controller;
  readonly modelCallsInFlight: () => number;
  readonly runInformers: readonly { list(): readonly object[] }[];
}): void {
  metrics.queueDepth.set({ controller: 'agentrun' }, s.controller.queueDepth());
  metrics.modelCallsInFlight.set(s.modelCallsInFlight());
  metrics.leader.set(isReconciling(s.manager, s.elector) ? 1 : 0);
  metrics.ready.set(readinessOf(s).ready ? 1 : 0);
  const phases = new Map<string, number>();
  for (const inf of s.runInformers) {
    for (const run of inf.list() as readonly ObservedRun[]) {
      const phase = run.status?.phase ?? 'Pending';
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
    }
  }
  metrics.runs.reset();
  for (const [phase, n] of phases) metrics.runs.set({ phase }, n);
}
