/**
 * Small helpers of the AgentRun reconciler: log fields, conflicts, resourceVersion order, tool
 * resolution, a last-resort status write.
 */
import type { AgentRun, AgentRunStatus } from '../api/agent-run.ts';
import type { AgentToolSpec } from '../api/agent-tool.ts';
import { ConflictError, type Logger } from '../controller/index.ts';
import type { Effect } from '../core/effects.ts';
import type { ResolvedTool } from '../api/journal-entry.ts';
import type { MCPServerObservation } from '../core/observed.ts';
import { resolveTools } from '../core/tools.ts';
import { isConflict, writeRejection } from '../port-errors.ts';
import { isFinished } from '../core/machine.ts';
import type { AgentRunObject, RunWriter } from '../ports.ts';

/** The step (and attempt) an effect belongs to, for its log lines. */
export function stepFields(effect: Effect): { step?: number; attempt?: number; pod?: string } {
  switch (effect.type) {
    case 'createPod':
      return { step: effect.stepId, pod: effect.pod.metadata?.name ?? '' };
    case 'startModelCall':
      return { step: effect.stepId, attempt: effect.attempt };
    case 'cancelModelCall':
      return { step: effect.stepId };
    case 'startMCPCall':
    case 'pollMCPTask':
      return { step: effect.stepId, attempt: effect.attempt };
    case 'writeJournal':
      return effect.stepId !== undefined ? { step: effect.stepId } : {};
    case 'deletePod':
    case 'releasePod':
      return { pod: effect.name };
    case 'deleteEndedPods':
      return {};
    case 'addFinalizer':
    case 'removeFinalizer':
    case 'deleteRun':
    case 'event':
      return {};
  }
}

/** Throws a ConflictError (requeue at once) for a stale write, else the error itself. */
export function rethrowConflict(error: unknown): never {
  if (isConflict(error)) {
    throw new ConflictError('the run changed since it was read', { retryAfterMs: 0, cause: error });
  }
  throw error;
}

/** resourceVersions are opaque, but etcd revisions are monotonic integers (Argo relies on the same). */
export function newer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  try {
    return BigInt(a) > BigInt(b);
  } catch {
    return false;
  }
}

/** A logger that adds `fields` to every line. */
export function childLog(log: Logger, fields: object): Logger {
  return {
    debug: (f, m) => {
      log.debug({ ...fields, ...f }, m);
    },
    info: (f, m) => {
      log.info({ ...fields, ...f }, m);
    },
    warn: (f, m) => {
      log.warn({ ...fields, ...f }, m);
    },
    error: (f, m) => {
      log.error({ ...fields, ...f }, m);
    },
  };
}

/** The run's tools when every toolRef resolves, else none yet (access is checked again once they do). */
export function resolvedOrNone(spec: AgentRun['spec'], agentTools: ReadonlyMap<string, AgentToolSpec | undefined>,
  mcpServers: ReadonlyMap<string, MCPServerObservation | undefined>): readonly ResolvedTool[] {
  const resolution = resolveTools(spec, agentTools, mcpServers);
  return resolution.ok ? resolution.tools : [];
}

/**
 * Writes the status; when the run has already been failed for a refused write and the failed
 * status is refused too, writes it without its step records (the journal keeps every step) so
 * that the run still ends instead of looping.
 */
export async function writeStatusEvenIfRefused(
  runs: RunWriter,
  run: AgentRunObject,
  status: AgentRunStatus,
  refusedBefore: boolean,
  log: Logger,
): Promise<string> {
  try {
    return await runs.writeStatus(run, status);
  } catch (error) {
    const rejected = writeRejection(error);
    if (!rejected || !refusedBefore || !isFinished(status)) throw error;
    log.warn({ status: rejected.status, err: rejected.message },
      'failed status refused; writing it without step records');
    return await runs.writeStatus(run, { ...status, steps: [] });
  }
}
