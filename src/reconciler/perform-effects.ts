/**
 * Carries out the side effects of a decision (pods, calls, finalizer, deletion) concurrently,
 * recording in the run memory what this process just did so that a reconcile before the
 * informers catch up does not send the same request twice.
 */
import type { AgentRunStatus } from '../api/agent-run.ts';
import { FINALIZER } from '../api/conditions.ts';
import type { Logger } from '../controller/index.ts';
import type { Effect } from '../core/effects.ts';
import { writeRejection } from '../port-errors.ts';
import type { AgentRunObject, RunOwner } from '../ports.ts';
import type { StartCall } from './memory/model-calls.ts';
import { mcpServerSpecOf } from './mcp-observations.ts';
import { endpointCredentials } from './model-credentials.ts';
import type { ParsedRun, ReconcilerDeps } from './reconciler-deps.ts';
import { stepFields } from './reconciler-helpers.ts';
import { withTraceparent } from './tracing-hooks.ts';

/** Performs side effects concurrently; returns the ones that failed (never throws). */
export async function performEffects(
  d: ReconcilerDeps,
  effects: readonly Effect[],
  run: ParsedRun,
  status: AgentRunStatus,
  current: () => AgentRunObject,
  log: Logger,
): Promise<{ effect: Effect; error: unknown }[]> {
  const owner: RunOwner = run.metadata;
  const key = `${owner.namespace}/${owner.name}`;
  // What every MCP call of the run is started with: the run, its server's current spec, and a
  // reconcile of the run when the call ends.
  const mcpCallContext = (server: string) => ({
    runUid: owner.uid,
    namespace: owner.namespace,
    spec: () => mcpServerSpecOf(d.caches, owner.namespace, server),
    onDone: () => {
      d.enqueue(key);
    },
  });
  const results = await Promise.allSettled(effects.map(async (effect) => {
    d.onEffect?.(effect);
    log.debug({ effect: effect.type, ...stepFields(effect) }, 'effect');
    switch (effect.type) {
      case 'createPod': {
        let created;
        try {
          const traceparent = d.tracer?.podTraceparent(owner.uid, status, effect.stepId);
          created = await d.pods.create(withTraceparent(effect.pod, traceparent));
        } catch (error) {
          const rejected = writeRejection(error);
          if (!rejected) throw error;
          // Creating it again would be refused again: the next decision fails the step instead.
          const name = effect.pod.metadata?.name ?? '';
          d.memory.of(owner.uid).rejectedPods.set(name, rejected.message);
          log.warn({ pod: name, status: rejected.status, err: rejected.message },
            'pod refused by the apiserver; not retried');
          d.enqueue(key);
          return;
        }
        // Known from now on: a reconcile before the informer shows it must not create it again.
        if (created) d.podMemory.recordCreated(created);
        return;
      }
      case 'deletePod':
        await d.pods.delete(owner.namespace, effect.name);
        d.podMemory.settled(owner.uid, effect.name, { released: true, deleting: true });
        return;
      case 'releasePod':
        await d.pods.release(owner.namespace, effect.name);
        d.podMemory.settled(owner.uid, effect.name, { released: true });
        return;
      case 'deleteEndedPods':
        await d.pods.deleteAll(owner.namespace, effect.labelSelector);
        d.podMemory.sweptRun(owner.uid);
        return;
      case 'startModelCall':
        startModelCall(d, run, key, effect.stepId, effect.attempt, effect.request);
        return;
      case 'cancelModelCall':
        d.modelCalls.cancel(owner.uid, effect.stepId);
        return;
      case 'startMCPCall':
        d.mcpCalls.start({ ...effect, ...mcpCallContext(effect.server) });
        return;
      case 'pollMCPTask':
        d.mcpCalls.poll({ ...effect, ...mcpCallContext(effect.server) });
        return;
      case 'removeFinalizer': {
        const before = current();
        const resourceVersion = await d.runs.removeFinalizer(before, FINALIZER);
        // Remember the patched run: a reconcile before the informer sees the patch must not
        // remove the finalizer again.
        if (resourceVersion) {
          const finalizers = (before.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
          const metadata = { ...before.metadata, resourceVersion, finalizers };
          d.memory.of(owner.uid, key).written = { ...before, metadata };
        }
        return;
      }
      case 'deleteRun':
        await d.runs.delete(owner);
        return;
      case 'addFinalizer':
      case 'writeJournal':
      case 'event':
        return; // phases of their own
    }
  }));
  return results.flatMap((r, i) => {
    const effect = effects[i];
    return r.status === 'rejected' && effect ? [{ effect, error: r.reason as unknown }] : [];
  });
}

function startModelCall(
  d: ReconcilerDeps,
  run: ParsedRun,
  key: string,
  stepId: number,
  attempt: number,
  request: StartCall['request'],
): void {
  d.modelCalls.start({
    runUid: run.metadata.uid,
    stepId,
    attempt,
    request,
    credentials: endpointCredentials(
      d.caches,
      d.secrets,
      run.metadata.namespace,
      run.spec.model.endpointRef.name,
    ),
    onDone: () => {
      d.enqueue(key);
    },
  });
}
