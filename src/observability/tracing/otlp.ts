/**
 * The OTLP (HTTP/protobuf) span sink, built on the official OpenTelemetry SDK. Loaded only when
 * tracing is on (index.ts imports it dynamically), so an operator with tracing off loads none of it.
 *
 * Spans are handed to the SDK's BatchSpanProcessor as finished ReadableSpans with the ids and times
 * the run recorded: the SDK's Tracer would invent ids and take the clock's time, and a span of a
 * run must be the same whichever operator process exports it.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type HrTime,
  type SpanContext } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { SpanSink } from './run-tracer.ts';
import type { SpanData } from './spans.ts';

/** The instrumentation scope of every span (fixed: Jaeger deduplicates only identical copies). */
export const SCOPE = { name: 'agentrun-operator', version: '1' } as const;

/**
 * The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name (the spec's values); default
 * parentbased_always_on.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      throw new Error(
        `OTEL_TRACES_SAMPLER=${name} is not supported: use always_on, always_off, traceidratio or parentbased_*`,
      );
  }
}

/**
 * service.name agentrun-operator, then OTEL_RESOURCE_ATTRIBUTES (key=value,... percent-encoded), then
 * OTEL_SERVICE_NAME.
 */
export function resourceAttributes(env: NodeJS.ProcessEnv): Record<string, string> {
  const attributes: Record<string, string> = { [ATTR_SERVICE_NAME]: 'agentrun-operator' };
  for (const pair of (env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    try {
      attributes[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch { /* not percent-encoded properly: skipped, as the SDK's detector does */ }
  }
  if (env.OTEL_SERVICE_NAME?.trim()) attributes[ATTR_SERVICE_NAME] = env.OTEL_SERVICE_NAME.trim();
  return attributes;
}

const hr = (ms: number): HrTime => {
  const whole = Math.floor(ms);
  return [Math.floor(whole / 1000), (whole % 1000) * 1_000_000];
};

/** A finished SDK span from a derived span. */
export function toReadableSpan(span: SpanData, resource: Resource): ReadableSpan {
  const context: SpanContext = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED };
  const parent: SpanContext | undefined = span.parentSpanId
    ? { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }
    : undefined;
  return {
    name: span.name,
    kind: span.kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL,
    spanContext: () => context,
    ...(parent ? { parentSpanContext: parent } : {}),
    startTime: hr(span.startMs),
    endTime: hr(span.endMs),
    duration: hr(span.endMs - span.startMs),
    status: span.error
      ? { code: SpanStatusCode.ERROR, message: span.error.slice(0, 1024) }
      : { code: SpanStatusCode.UNSET },
    attributes: { ...span.attributes },
    links: [],
    events: span.events.map((e) => ({ name: e.name, time: hr(e.timeMs), attributes: e.attributes })),
    ended: true,
    resource,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/**
 * The sink over the OTLP exporter; endpoint, headers, timeout, batching and the sampler come from
 * the standard OTEL_* variables (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_BSP_*, OTEL_TRACES_SAMPLER...).
 */
export function createOtlpSink(options: { env?: NodeJS.ProcessEnv; exporter?: SpanExporter } = {}): SpanSink {
  const env = options.env ?? process.env;
  const sampler = samplerFromEnv(env);
  // No host or process attributes: every operator process must export byte-identical copies.
  const resource = resourceFromAttributes(resourceAttributes(env));
  const processor = new BatchSpanProcessor(options.exporter ?? new OTLPTraceExporter());
  return {
    sample: (traceId, parent) => {
      const ctx = parent
        ? trace.setSpanContext(ROOT_CONTEXT, {
          traceId,
          spanId: parent.spanId,
          isRemote: true,
          traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
        })
        : ROOT_CONTEXT;
      return sampler.shouldSample(ctx, traceId, 'invoke_agent', SpanKind.INTERNAL, {}, []).decision ===
        SamplingDecision.RECORD_AND_SAMPLED;
    },
    export: (spans) => {
      for (const span of spans) processor.onEnd(toReadableSpan(span, resource));
    },
    shutdown: () => processor.shutdown(),
  };
}
