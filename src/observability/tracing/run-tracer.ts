/**
 * The tracing port the reconciler calls, and its implementation over a span sink. It keeps no
 * state that matters for correctness: ids are derived (ids.ts), spans are derived from recorded
 * state (spans.ts), so a process that starts after a crash exports what its predecessor may have
 * lost, and the backend folds the byte-identical copies into one (Jaeger's span-hash deduper).
 */
import type { AgentRunStatus } from '../../api/agent-run.ts';
import type { JournalEntry } from '../../api/journal-entry.ts';
import { isFinished, isStepDone } from '../../core/machine.ts';
import { TRACEPARENT_ANNOTATION, formatTraceparent, parseTraceparent, runSpanId, runTraceId, stepSpanId,
  type RunTraceContext } from './ids.ts';
import { interruptedSpans, runSpans, type RetrySeen, type RunSpanInput, type SpanData } from './spans.ts';

/** What the tracer needs to know of a run. */
export interface TracedRun {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly creationTimestamp?: string | undefined;
    readonly annotations?: Readonly<Record<string, string>> | undefined;
  };
  readonly spec: { readonly model: { readonly name: string; readonly maxTokens: number } };
}

/** The reconciler's view of tracing. {@link NO_TRACING} when tracing is off: nothing is loaded. */
export interface RunTracer {
  /**
   * The status to write, with status.trace set when the run has none yet; `warning` says why a
   * traceparent annotation was ignored (the reconciler emits it as a Warning Event).
   */
  stamp(run: TracedRun, before: AgentRunStatus | undefined,
    status: AgentRunStatus): { status: AgentRunStatus; warning?: string };
  /** After a successful status write: exports the spans the recorded state ended. */
  observe(run: TracedRun, before: AgentRunStatus | undefined, after: AgentRunStatus,
    journal: ReadonlyMap<number, JournalEntry>): void;
  /** TRACEPARENT for the tool pod of `stepId`: its execute_tool span is the tool's parent. */
  podTraceparent(runUid: string, status: AgentRunStatus, stepId: number): string | undefined;
  /** The run is gone. */
  forget(runUid: string): void;
  /** Exports what is buffered. */
  shutdown(): Promise<void>;
}

/** Tracing off: every call is a no-op. */
export const NO_TRACING: RunTracer = {
  stamp: (_run, _before, status) => ({ status }),
  observe: () => undefined,
  podTraceparent: () => undefined,
  forget: () => undefined,
  shutdown: () => Promise.resolve(),
};

/** Where finished spans go (the OTLP exporter, or a test's array). */
export interface SpanSink {
  /** Whether a new run's trace is recorded (the sampler), given the caller's span when it has one. */
  sample(traceId: string, parent: { spanId: string; sampled: boolean } | undefined): boolean;
  export(spans: readonly SpanData[]): void;
  shutdown(): Promise<void>;
}

/** A run that finished longer ago than this when a process first sees it is not exported again. */
export const REEXPORT_WINDOW_MS = 15 * 60_000;

interface RunState {
  readonly exported: Set<string>;
  readonly retries: Map<number, RetrySeen[]>;
  readonly resumed: Set<number>;
}

/** The tracer over a sink; `now` is the clock (ms). */
export class SinkRunTracer implements RunTracer {
  private readonly runs = new Map<string, RunState>();
  private readonly sink: SpanSink;
  private readonly now: () => number;
  private readonly content: boolean;

  constructor(sink: SpanSink, options: { content: boolean; now?: () => number }) {
    this.sink = sink;
    this.content = options.content;
    this.now = options.now ?? Date.now;
  }

  stamp(run: TracedRun, before: AgentRunStatus | undefined,
    status: AgentRunStatus): { status: AgentRunStatus; warning?: string } {
    if (status.trace) return { status };
    // A run that ended before tracing was on gets no trace.
    if (before && isFinished(before)) return { status };
    const { uid } = run.metadata;
    const annotation = run.metadata.annotations?.[TRACEPARENT_ANNOTATION];
    const parsed = annotation === undefined ? undefined : parseTraceparent(annotation.trim());
    let warning: string | undefined;
    let context: RunTraceContext;
    if (parsed && !('error' in parsed)) {
      const sampled = this.sink.sample(parsed.traceId, { spanId: parsed.spanId, sampled: parsed.sampled });
      context = { traceId: parsed.traceId, spanId: runSpanId(uid, 'root'), parentSpanId: parsed.spanId, sampled };
    } else {
      if (parsed)
        warning = `Annotation ${TRACEPARENT_ANNOTATION} ${parsed.error}: ignored, the run has a trace of its own. `
          + 'Use a W3C traceparent such as 00-<32 hex>-<16 hex>-01.';
      const traceId = runTraceId(uid);
      context = { traceId, spanId: runSpanId(uid, 'root'), sampled: this.sink.sample(traceId, undefined) };
    }
    return { status: { ...status, trace: context }, ...(warning ? { warning } : {}) };
  }

  observe(run: TracedRun, before: AgentRunStatus | undefined, after: AgentRunStatus,
    journal: ReadonlyMap<number, JournalEntry>): void {
    const context = after.trace;
    if (!context?.sampled) return;
    const { uid } = run.metadata;
    const input = (status: AgentRunStatus, state: RunState): RunSpanInput => ({
      run: {
        name: run.metadata.name,
        namespace: run.metadata.namespace,
        uid,
        model: run.spec.model.name,
        maxTokens: run.spec.model.maxTokens,
        ...(run.metadata.creationTimestamp ? { creationTimestamp: run.metadata.creationTimestamp } : {}),
      },
      status,
      context,
      journal,
      content: this.content,
      retries: state.retries,
      resumed: state.resumed,
    });
    const spans: SpanData[] = [];
    let state = this.runs.get(uid);
    if (!state) {
      // First look in this process: the run may have been driven by one that stopped.
      state = { exported: new Set(), retries: new Map(), resumed: new Set() };
      this.runs.set(uid, state);
      if (before?.trace && !isFinished(before)) {
        for (const step of before.steps ?? []) if (!isStepDone(step)) state.resumed.add(step.id);
        spans.push(...interruptedSpans(input(before, state), this.now()));
      }
      const completed = before?.completionTime ? Date.parse(before.completionTime) : NaN;
      if (before && isFinished(before) && !(this.now() - completed < REEXPORT_WINDOW_MS)) {
        for (const span of runSpans(input(after, state))) state.exported.add(span.key);
      }
    }
    for (const step of after.steps ?? []) {
      // A failure with no retry due ends the step: spans.ts takes it from status.
      if (step.kind !== 'Model' || !step.retry?.nextRetryAt) continue;
      const seen = state.retries.get(step.id) ?? [];
      if (seen.some((r) => r.attempt === step.retry?.attempt)) continue;
      const atMs = Date.parse(step.retry.nextRetryAt);
      state.retries.set(step.id, [...seen, { attempt: step.retry.attempt, errorClass: step.retry.errorClass, atMs }]);
    }
    for (const span of runSpans({ ...input(after, state), skip: state.exported })) {
      if (state.exported.has(span.key)) continue;
      state.exported.add(span.key);
      spans.push(span);
    }
    if (spans.length > 0) this.sink.export(spans);
  }

  podTraceparent(runUid: string, status: AgentRunStatus, stepId: number): string | undefined {
    const context = status.trace;
    const step = status.steps?.find((s) => s.id === stepId);
    if (!context || !step) return undefined;
    return formatTraceparent(context.traceId, stepSpanId(runUid, stepId, step.attempt), context.sampled);
  }

  forget(runUid: string): void {
    this.runs.delete(runUid);
  }

  async shutdown(): Promise<void> {
    await this.sink.shutdown();
  }
}
