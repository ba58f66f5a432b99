/**
 * Tracing of runs (OpenTelemetry, OTLP HTTP/protobuf): off by default. {@link createRunTracer}
 * loads the SDK only when it is on; off, the reconciler gets {@link NO_TRACING}.
 */
import { EventOnlyReason } from '../../api/conditions.ts';
import { NO_TRACING, SinkRunTracer, type RunTracer } from './run-tracer.ts';

export { NO_TRACING, type RunTracer } from './run-tracer.ts';
export { TRACEPARENT_ANNOTATION } from './ids.ts';

/** The Warning Event of a run whose traceparent annotation is not W3C (the run gets a trace of its own). */
export const INVALID_TRACEPARENT_REASON = EventOnlyReason.InvalidTraceparent;

/** The tracer the configuration asks for. */
export async function createRunTracer(options: { enabled: boolean; content: boolean },
  env: NodeJS.ProcessEnv = process.env): Promise<RunTracer> {
  // OTEL_SDK_DISABLED=true turns every OpenTelemetry SDK off, ours included.
  if (!options.enabled || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return NO_TRACING;
  const { createOtlpSink } = await import('./otlp.ts');
  return new SinkRunTracer(createOtlpSink({ env }), { content: options.content });
}
