/**
 * A real Jaeger v2 (built by scripts/cluster/jaeger.sh into the cache) for tracing tests: memory
 * storage, OTLP HTTP in, query API out, every port on 127.0.0.1 and chosen free at start.
 * Starting fails (never skips) when the binary is missing or Jaeger does not become ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const JAEGER_VERSION = process.env.JAEGER_VERSION ?? '1.75.0';

/** Where scripts/cluster/jaeger.sh caches the binary. */
export function jaegerBinary(): string {
  const root = process.env.AGENTRUN_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'agentrun-operator');
  return join(root, 'jaeger', `v${JAEGER_VERSION}`, 'jaeger');
}

/** One span as the query API returns it, flattened. */
export interface QueriedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Record<string, unknown>;
  readonly events: { name: string; attributes: Record<string, unknown> }[];
  readonly status: { code?: number | string; message?: string };
  readonly serviceName: string;
}

export interface Jaeger {
  /** OTLP HTTP base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly otlpUrl: string;
  readonly queryUrl: string;
  /**
   * Every span of the trace; [] when unknown. By default with Jaeger's adjusters (identical copies
   * folded into one); `raw` skips them. The memory store hands its own spans to the adjusters, which
   * write warnings into them: query adjusted only once every copy has arrived, or a later identical
   * copy no longer matches the stored (now annotated) one.
   */
  trace(traceId: string, options?: { raw?: boolean }): Promise<QueriedSpan[]>;
  /** The trace as stored, without Jaeger's adjusters (OTLP JSON text). */
  raw(traceId: string): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => { resolve(port); });
    });
  });
}

function config(ports: { otlp: number; http: number; grpc: number }): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:${ports.http}
    grpc:
      endpoint: 127.0.0.1:${ports.grpc}
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${ports.otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`;
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number; arrayValue?: { values?: AnyValue[] } };
const value = (v: AnyValue | undefined): unknown => {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
};
const attrs = (list: { key: string; value?: AnyValue }[] | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));

/** The ids of the OTLP JSON Jaeger returns: hex, or base64 from some encoders. */
const hexId = (id: string | undefined): string => {
  if (!id) return '';
  return /^[0-9a-f]+$/.test(id) ? id : Buffer.from(id, 'base64').toString('hex');
};

export async function startJaeger(): Promise<Jaeger> {
  const binary = jaegerBinary();
  if (!existsSync(binary)) throw new Error(`Jaeger is not built at ${binary}: run \`bash scripts/cluster/jaeger.sh\` (or npm run cluster:install)`);
  const ports = { otlp: await freePort(), http: await freePort(), grpc: await freePort() };
  const dir = await mkdtemp(join(tmpdir(), 'agentrun-jaeger-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(ports));
  const lines: string[] = [];
  const child: ChildProcess = spawn(binary, ['--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.setEncoding('utf8').on('data', (c: string) => { lines.push(c); });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => { lines.push(c); });
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve(); }); });
  const queryUrl = `http://127.0.0.1:${ports.http}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Jaeger exited at start:\n${lines.join('').slice(-3000)}`);
    const ready = await fetch(`${queryUrl}/api/services`).then((r) => r.ok, () => false);
    const otlp = await fetch(`http://127.0.0.1:${ports.otlp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      .then((r) => r.ok, () => false);
    if (ready && otlp) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`Jaeger not ready in 30 s:\n${lines.join('').slice(-3000)}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    otlpUrl: `http://127.0.0.1:${ports.otlp}`,
    queryUrl,
    output: () => lines.join(''),
    raw: async (traceId) => (await fetch(`${queryUrl}/api/v3/traces/${traceId}?raw_traces=true`)).text(),
    trace: async (traceId, options = {}) => {
      const res = await fetch(`${queryUrl}/api/v3/traces/${traceId}${options.raw ? '?raw_traces=true' : ''}`);
      if (res.status === 404) return [];
      if (!res.ok) throw new Error(`GET /api/v3/traces/${traceId}: ${res.status} ${await res.text()}`);
      const body = await res.json() as { result?: { resourceSpans?: {
        resource?: { attributes?: { key: string; value?: AnyValue }[] };
        scopeSpans?: { spans?: {
          traceId?: string; spanId?: string; parentSpanId?: string; name?: string; startTimeUnixNano?: string; endTimeUnixNano?: string;
          attributes?: { key: string; value?: AnyValue }[]; events?: { name?: string; attributes?: { key: string; value?: AnyValue }[] }[];
          status?: { code?: number | string; message?: string };
        }[] }[];
      }[] } };
      return (body.result?.resourceSpans ?? []).flatMap((rs) => {
        const name = attrs(rs.resource?.attributes)['service.name'];
        const serviceName = typeof name === 'string' ? name : '';
        return (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((s): QueriedSpan => ({
          traceId: hexId(s.traceId), spanId: hexId(s.spanId), parentSpanId: hexId(s.parentSpanId), name: s.name ?? '',
          startMs: Number(BigInt(s.startTimeUnixNano ?? '0') / 1_000_000n), endMs: Number(BigInt(s.endTimeUnixNano ?? '0') / 1_000_000n),
          attributes: attrs(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name ?? '', attributes: attrs(e.attributes) })),
          status: s.status ?? {}, serviceName,
        })));
      });
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, 5000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
