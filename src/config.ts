/**
 * The operator's configuration: flags, each with an environment variable, parsed once with zod
 * into a frozen Config. `--help` prints them all.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseDurationMs, DURATION_PATTERN } from './api/primitives.ts';

interface FlagSpec {
  readonly env: string;
  readonly help: string;
  readonly default?: string;
  readonly boolean?: true;
}

/** Every flag, its environment variable, help text and default. */
export const FLAGS = {
  kubeconfig: { env: 'KUBECONFIG', help: 'Kubeconfig file; default: in-cluster config, else ~/.kube/config' },
  namespaces: { env: 'AGENTRUN_NAMESPACES', help: 'Comma-separated namespaces to watch; empty watches all' },
  workers: { env: 'AGENTRUN_WORKERS', help: 'Runs reconciled concurrently', default: '8' },
  'model-timeout': { env: 'AGENTRUN_MODEL_TIMEOUT', help: 'Timeout of one model call (a duration, e.g. 10m)',
    default: '10m' },
  'max-model-response-bytes': { env: 'AGENTRUN_MAX_MODEL_RESPONSE_BYTES',
    help: 'Largest model API response the operator reads, in bytes; a larger one fails the run '
      + '(ModelResponseTooLarge) without being buffered', default: '4194304' },
  'max-concurrent-model-calls': { env: 'AGENTRUN_MAX_CONCURRENT_MODEL_CALLS',
    help: 'Model calls on the wire at once (more wait for a slot); with --max-model-response-bytes it bounds the '
      + 'memory response bodies take', default: '32' },
  'status-byte-budget': { env: 'AGENTRUN_STATUS_BYTE_BUDGET',
    help: 'Largest status a run may have, in bytes (etcd refuses objects over 1.5 MiB)', default: '786432' },
  'log-level': { env: 'AGENTRUN_LOG_LEVEL', help: 'debug, info, warn or error', default: 'info' },
  'drain-timeout': { env: 'AGENTRUN_DRAIN_TIMEOUT', help: 'How long SIGTERM waits for reconciles in flight',
    default: '20s' },
  'require-approver-identity': { env: 'AGENTRUN_REQUIRE_APPROVER_IDENTITY',
    help: 'Ignore approvals whose approver the admission policy did not record (true/false)', default: 'true' },
  'require-creator-identity': { env: 'AGENTRUN_REQUIRE_CREATOR_IDENTITY',
    help: 'Check that the recorded creator of a run may use every Secret, ModelEndpoint and ServiceAccount it '
      + 'references; fail runs with no recorded creator (true/false)', default: 'true' },
  'step-events': { env: 'AGENTRUN_STEP_EVENTS',
    help: 'Also emit a Normal Event for every step that succeeds (ModelResponded, ToolSucceeded); each is one more '
      + 'etcd write per step (true/false)', default: 'false' },
  'metrics-port': { env: 'AGENTRUN_METRICS_PORT',
    help: 'Port of /metrics, /healthz and /readyz (all interfaces); 0 disables the server', default: '8080' },
  tracing: { env: 'AGENTRUN_TRACING',
    help: 'Export one OpenTelemetry trace per run over OTLP HTTP/protobuf, configured by the standard OTEL_* '
      + 'variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER...; docs/tracing.md) (true/false)',
    default: 'false' },
  'trace-content': { env: 'AGENTRUN_TRACE_CONTENT',
    help: 'Also record model answers, tool inputs and outputs and the final result in spans (may hold sensitive '
      + 'data) (true/false)', default: 'false' },
  'leader-elect': { env: 'AGENTRUN_LEADER_ELECT',
    help: 'Run the controllers only while holding a Lease, so replicas can stand by (env: true/false)', boolean: true },
  'leader-election-namespace': { env: 'AGENTRUN_LEADER_ELECTION_NAMESPACE',
    help: "Namespace of the Lease; default: the pod's namespace (service account), else default" },
  'leader-election-id': { env: 'AGENTRUN_LEADER_ELECTION_ID', help: 'Name of the Lease', default: 'agentrun-operator' },
  'leader-election-lease-duration': { env: 'AGENTRUN_LEADER_ELECTION_LEASE_DURATION',
    help: 'How long standbys wait after the last renewal before taking over', default: '15s' },
  'leader-election-renew-deadline': { env: 'AGENTRUN_LEADER_ELECTION_RENEW_DEADLINE',
    help: 'How long the leader tries to renew before it gives up and exits', default: '10s' },
  'leader-election-retry-period': { env: 'AGENTRUN_LEADER_ELECTION_RETRY_PERIOD',
    help: 'How often candidates try to acquire and the leader renews', default: '2s' },
  'mcp-operator-namespace': { env: 'AGENTRUN_MCP_OPERATOR_NAMESPACE',
    help: "Namespace of the operator's pods, the only peers a managed MCP server's NetworkPolicy admits; default: "
      + "the pod's namespace, else default" },
  'mcp-operator-pod-labels': { env: 'AGENTRUN_MCP_OPERATOR_POD_LABELS',
    help: "Labels (k=v,...) of the operator's pods, for the same NetworkPolicy",
    default: 'app.kubernetes.io/name=agentrun-operator' },
  'mcp-address': { env: 'AGENTRUN_MCP_ADDRESS',
    help: "How the operator reaches managed MCP servers: service (the Service's DNS name), endpoints (a ready pod "
      + 'address from its EndpointSlices; for clusters without kube-proxy or DNS) or auto (service in a pod, '
      + 'else endpoints)', default: 'auto' },
} as const satisfies Record<string, FlagSpec>;

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const duration = z.string().regex(new RegExp(DURATION_PATTERN), 'must be a duration such as 30s or 10m').transform(
  parseDurationMs,
);

const configSchema = z.object({
  kubeconfig: z.string().optional(),
  namespaces: z.string().default('').transform((s) => s.split(',').map((n) => n.trim()).filter(Boolean)),
  workers: z.coerce.number().int().min(1).max(256),
  modelTimeoutMs: duration,
  maxModelResponseBytes: z.coerce.number().int().min(65_536).max(64 * 1024 * 1024),
  maxConcurrentModelCalls: z.coerce.number().int().min(1).max(1024),
  statusByteBudget: z.coerce.number().int().min(16_384).max(1_400_000),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']),
  drainTimeoutMs: duration,
  requireApproverIdentity: z.enum(['true', 'false']).transform((v) => v === 'true'),
  requireCreatorIdentity: z.enum(['true', 'false']).transform((v) => v === 'true'),
  stepEvents: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
  metricsPort: z.coerce.number().int().min(0).max(65_535),
  tracing: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
  traceContent: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
  leaderElect: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false').transform((v) =>
    v === 'true'
  ),
  leaderElectionNamespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name')
    .optional(),
  leaderElectionId: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
    'must be a DNS subdomain (the Lease name)'),
  leaderElectionLeaseDurationMs: duration,
  leaderElectionRenewDeadlineMs: duration,
  leaderElectionRetryPeriodMs: duration,
  mcpOperatorNamespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name').optional(),
  mcpOperatorPodLabels: z.string().transform((s, ctx) => {
    const pairs = s.split(',').map((p) => p.trim()).filter(Boolean).map((p) => p.split('='));
    if (pairs.length === 0 ||
      pairs.some((p) => p.length !== 2 || !LABEL_KEY.test(p[0] ?? '') || !LABEL_VALUE.test(p[1] ?? ''))) {
      ctx.addIssue({ code: 'custom', message: 'must be one or more key=value labels, comma-separated' });
      return z.NEVER;
    }
    return Object.fromEntries(pairs) as Record<string, string>;
  }),
  mcpAddress: z.enum(['auto', 'service', 'endpoints'], { error: 'must be auto, service or endpoints' }),
}).superRefine((c, ctx) => {
  if (!(c.leaderElectionLeaseDurationMs > c.leaderElectionRenewDeadlineMs)) {
    ctx.addIssue({ code: 'custom', path: ['leaderElectionLeaseDurationMs'],
      message: 'must be longer than --leader-election-renew-deadline' });
  }
  if (!(c.leaderElectionRenewDeadlineMs > 1.2 * c.leaderElectionRetryPeriodMs)) {
    ctx.addIssue({ code: 'custom', path: ['leaderElectionRenewDeadlineMs'],
      message: 'must be longer than 1.2 × --leader-election-retry-period' });
  }
  if (c.leaderElectionRetryPeriodMs <= 0) {
    ctx.addIssue({ code: 'custom', path: ['leaderElectionRetryPeriodMs'], message: 'must be positive' });
  }
});
/** The operator's settings, parsed and checked from flags and environment. */
export type Config = Readonly<z.infer<typeof configSchema>>;

/** A flag or environment variable the operator cannot start with; the message says which and why. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses argv and the environment; throws ConfigError with what to fix. Returns undefined for --help. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config | undefined {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map((
      [f, spec]: [string, FlagSpec],
    ) => [f, { type: spec.boolean ? 'boolean' as const : 'string' as const }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true }));
  } catch (error) {
    throw new ConfigError(`${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
  }
  if (values.help) return undefined;
  const pick = (flag: keyof typeof FLAGS): string | undefined => {
    const spec: FlagSpec = FLAGS[flag];
    const value = values[flag];
    if (value === true) return 'true';
    return typeof value === 'string' ? value : env[spec.env] || spec.default;
  };
  const result = configSchema.safeParse({
    kubeconfig: pick('kubeconfig'),
    namespaces: pick('namespaces'),
    workers: pick('workers'),
    modelTimeoutMs: pick('model-timeout'),
    maxModelResponseBytes: pick('max-model-response-bytes'),
    maxConcurrentModelCalls: pick('max-concurrent-model-calls'),
    statusByteBudget: pick('status-byte-budget'),
    logLevel: pick('log-level'),
    drainTimeoutMs: pick('drain-timeout'),
    requireApproverIdentity: pick('require-approver-identity'),
    requireCreatorIdentity: pick('require-creator-identity'),
    stepEvents: pick('step-events'),
    metricsPort: pick('metrics-port'),
    tracing: pick('tracing'),
    traceContent: pick('trace-content'),
    leaderElect: pick('leader-elect'),
    leaderElectionNamespace: pick('leader-election-namespace'),
    leaderElectionId: pick('leader-election-id'),
    leaderElectionLeaseDurationMs: pick('leader-election-lease-duration'),
    leaderElectionRenewDeadlineMs: pick('leader-election-renew-deadline'),
    leaderElectionRetryPeriodMs: pick('leader-election-retry-period'),
    mcpOperatorNamespace: pick('mcp-operator-namespace'),
    mcpOperatorPodLabels: pick('mcp-operator-pod-labels'),
    mcpAddress: pick('mcp-address'),
  });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `--${kebab(String(i.path[0]))}: ${i.message}`).join('\n'));
  }
  return Object.freeze(result.data);
}

/** The --help text: every flag with its environment variable and default. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([flag, spec]: [string, FlagSpec]) =>
    `  --${flag.padEnd(32)} ${spec.help}${spec.default ? ` (default ${spec.default})` : ''}\n  ${
      ' '.repeat(34)
    } env ${spec.env}`
  );
  const head = 'agentrun-operator: reconciles AgentRun resources (agentrun.dev/v1alpha1).\n\n'
    + 'Usage: node dist/main.js [flags]\n\n';
  return `${head}${lines.join('\n')}\n  --help                             Show this help\n`;
}

function kebab(key: string): string {
  return key.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
