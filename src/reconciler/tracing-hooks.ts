/** Where the reconciler meets tracing: the trace context in status, the tool pods' TRACEPARENT. */
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentRun, AgentRunStatus } from '../api/agent-run.ts';
import { describeError } from '../port-errors.ts';
import type { Logger } from '../controller/index.ts';
import type { Effect } from '../core/effects.ts';
import type { JournalEntry, RecordedEntry } from '../api/journal-entry.ts';
import { INVALID_TRACEPARENT_REASON, type RunTracer } from '../observability/tracing/index.ts';
import type { EventSink } from '../ports.ts';

type Run = AgentRun & { metadata: { name: string; namespace: string; uid: string } };

/** The status with the run's trace context recorded; a bad traceparent annotation is a Warning Event. */
export function tracedStatus(
  tracer: RunTracer | undefined,
  events: EventSink,
  run: Run,
  status: AgentRunStatus,
  log: Logger,
): AgentRunStatus {
  if (!tracer || run.metadata.deletionTimestamp) return status;
  const stamped = tracer.stamp(run, run.status, status);
  if (stamped.warning) {
    // Best effort, like every Event: the trace context is in status either way, so this happens once.
    events.emit(run.metadata, 'Warning', INVALID_TRACEPARENT_REASON, stamped.warning)
      .catch((error: unknown) => {
        log.warn({ effect: 'event', reason: INVALID_TRACEPARENT_REASON, err: describeError(error) }, 'effect failed');
      });
  }
  return stamped.status;
}

/** The run's journal by step: what was read plus what this reconcile wrote. */
export function journalEntries(
  read: ReadonlyMap<number, RecordedEntry>,
  effects: readonly Effect[],
): Map<number, JournalEntry> {
  const entries = new Map<number, JournalEntry>([...read].map(([id, r]) => [id, r.entry]));
  for (const e of effects) if (e.type === 'writeJournal' && e.stepId !== undefined) entries.set(e.stepId, e.entry);
  return entries;
}

/**
 * The pod with TRACEPARENT (the W3C environment-variable carrier OpenTelemetry SDKs read) in every
 * container, naming the step's execute_tool span as parent; one the tool defines itself is replaced.
 */
export function withTraceparent(pod: V1Pod, traceparent: string | undefined): V1Pod {
  if (!traceparent || !pod.spec) return pod;
  const copy = structuredClone(pod);
  for (const c of copy.spec?.containers ?? []) {
    c.env = [...(c.env ?? []).filter((e) => e.name !== 'TRACEPARENT'), { name: 'TRACEPARENT', value: traceparent }];
  }
  return copy;
}
