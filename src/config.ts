/**
 * The operator's configuration: flags, each with an environment variable, parsed once with zod
 * into a frozen Config. `--help` prints them all.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseDurationMs, DURATION_PATTERN } from './api/primitives.ts';

interface FlagSpec { readonly env: string; readonly help: string; readonly default?: string }

/** Every flag, its environment variable, help text and default. */
export const FLAGS = {
  kubeconfig: { env: 'KUBECONFIG', help: 'Kubeconfig file; default: in-cluster config, else ~/.kube/config' },
  namespaces: { env: 'AGENTRUN_NAMESPACES', help: 'Comma-separated namespaces to watch; empty watches all' },
  workers: { env: 'AGENTRUN_WORKERS', help: 'Runs reconciled concurrently', default: '8' },
  'model-timeout': { env: 'AGENTRUN_MODEL_TIMEOUT', help: 'Timeout of one model call (a duration, e.g. 10m)', default: '10m' },
  'status-byte-budget': { env: 'AGENTRUN_STATUS_BYTE_BUDGET', help: 'Largest status a run may have, in bytes (etcd refuses objects over 1.5 MiB)', default: '786432' },
  'log-level': { env: 'AGENTRUN_LOG_LEVEL', help: 'debug, info, warn or error', default: 'info' },
  'drain-timeout': { env: 'AGENTRUN_DRAIN_TIMEOUT', help: 'How long SIGTERM waits for reconciles in flight', default: '20s' },
} as const satisfies Record<string, FlagSpec>;

const duration = z.string().regex(new RegExp(DURATION_PATTERN), 'must be a duration such as 30s or 10m').transform(parseDurationMs);

const configSchema = z.object({
  kubeconfig: z.string().optional(),
  namespaces: z.string().default('').transform((s) => s.split(',').map((n) => n.trim()).filter(Boolean)),
  workers: z.coerce.number().int().min(1).max(256),
  modelTimeoutMs: duration,
  statusByteBudget: z.coerce.number().int().min(16_384).max(1_400_000),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']),
  drainTimeoutMs: duration,
});
export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses argv and the environment; throws ConfigError with what to fix. Returns undefined for --help. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config | undefined {
  const options = Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (error) {
    throw new ConfigError(`${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
  }
  if (values.help) return undefined;
  const pick = (flag: keyof typeof FLAGS): string | undefined => {
    const spec: FlagSpec = FLAGS[flag];
    const value = values[flag];
    return typeof value === 'string' ? value : env[spec.env] ?? spec.default;
  };
  const result = configSchema.safeParse({
    kubeconfig: pick('kubeconfig'),
    namespaces: pick('namespaces'),
    workers: pick('workers'),
    modelTimeoutMs: pick('model-timeout'),
    statusByteBudget: pick('status-byte-budget'),
    logLevel: pick('log-level'),
    drainTimeoutMs: pick('drain-timeout'),
  });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `--${kebab(String(i.path[0]))}: ${i.message}`).join('\n'));
  }
  return Object.freeze(result.data);
}

/** The --help text: every flag with its environment variable and default. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([flag, spec]: [string, FlagSpec]) =>
    `  --${flag.padEnd(20)} ${spec.help}${spec.default ? ` (default ${spec.default})` : ''}\n  ${' '.repeat(22)} env ${spec.env}`);
  return `agentrun-operator: reconciles AgentRun resources (agentrun.dev/v1alpha1).\n\nUsage: node dist/main.js [flags]\n\n${lines.join('\n')}\n  --help                 Show this help\n`;
}

function kebab(key: string): string {
  return key.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
