/**
 * Runs the Messages API stand-in (mock-model-server.ts) as a process, for local dev and demos.
 * TEST/DEV ONLY: it is a scripted fake, not a model.
 *
 *   node test/harness/mock-model-server-cli.ts [--port 8787] [--scripts scripts.json]
 *        [--api-key KEY]... [--latency-ms 200]
 *
 * Environment fallbacks: MOCK_MODEL_PORT, MOCK_MODEL_SCRIPTS, MOCK_MODEL_API_KEYS (comma-separated),
 * MOCK_MODEL_LATENCY_MS. Prints the base URL (for ANTHROPIC_BASE_URL) as the only line on stdout,
 * then one line per request on stderr. Stops on SIGINT/SIGTERM.
 *
 * Scripts file: { "scripts": { "<marker>": [ScriptedTurn, ...] }, "defaultTurn"?: ScriptedTurn }
 * where ScriptedTurn is { "content": [{ "type": "text", "text": "…" } | { "type": "tool_use",
 * "name": "…", "input": {…} }], "stopReason"?: "end_turn" | … }. `defaultTurn` answers every
 * request that matches no marker (e.g. a demo agent that finishes at once).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startMockModelServer, type MockModelServer, type RecordedRequest, type ScriptedTurn } from './mock-model-server.ts';

const scriptedTurn = z.object({
  content: z.array(z.discriminatedUnion('type', [
    z.object({ type: z.literal('text'), text: z.string() }),
    z.object({ type: z.literal('tool_use'), name: z.string(), input: z.record(z.string(), z.unknown()), id: z.string().optional() }),
  ])),
  stopReason: z.enum(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'pause_turn', 'refusal', 'model_context_window_exceeded']).optional(),
  stopSequence: z.string().optional(),
  latencyMs: z.number().nonnegative().optional(),
  usage: z.object({
    input_tokens: z.number().int().nonnegative().optional(),
    output_tokens: z.number().int().nonnegative().optional(),
    cache_creation_input_tokens: z.number().int().nonnegative().optional(),
    cache_read_input_tokens: z.number().int().nonnegative().optional(),
  }).optional(),
}) satisfies z.ZodType<ScriptedTurn>;

const scriptsFile = z.object({
  scripts: z.record(z.string().min(1), z.array(scriptedTurn)).default({}),
  defaultTurn: scriptedTurn.optional(),
});

interface CliConfig {
  port: number;
  scriptsPath: string | undefined;
  apiKeys: string[] | undefined;
  latencyMs: number | undefined;
}

function readConfig(): CliConfig {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      scripts: { type: 'string' },
      'api-key': { type: 'string', multiple: true },
      'latency-ms': { type: 'string' },
    },
  });
  const env = process.env;
  const apiKeys = values['api-key'] ?? env.MOCK_MODEL_API_KEYS?.split(',').map((k) => k.trim()).filter((k) => k !== '');
  return {
    port: toNumber(values.port ?? env.MOCK_MODEL_PORT, '--port') ?? 0,
    scriptsPath: values.scripts ?? env.MOCK_MODEL_SCRIPTS,
    apiKeys: apiKeys && apiKeys.length > 0 ? apiKeys : undefined,
    latencyMs: toNumber(values['latency-ms'] ?? env.MOCK_MODEL_LATENCY_MS, '--latency-ms'),
  };
}

function toNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new Error(`${flag} must be a non-negative integer, got ${value}`);
  return number;
}

async function loadScripts(server: MockModelServer, path: string): Promise<void> {
  const parsed = scriptsFile.parse(JSON.parse(await readFile(path, 'utf8')));
  for (const [key, turns] of Object.entries(parsed.scripts)) server.script(key, turns);
  const { defaultTurn } = parsed;
  if (defaultTurn) server.defaultScript(() => defaultTurn);
}

function logLine(request: RecordedRequest): string {
  return `${new Date(request.receivedAt).toISOString()} ${String(request.status)} script=${request.scriptKey ?? '-'} turn=${String(request.turnIndex ?? '-')} ${request.requestId}`;
}

async function main(): Promise<void> {
  const config = readConfig();
  const server = await startMockModelServer({
    port: config.port,
    apiKeys: config.apiKeys,
    latencyMs: config.latencyMs,
    onResponse: (request) => { process.stderr.write(`${logLine(request)}\n`); },
  });
  if (config.scriptsPath !== undefined) await loadScripts(server, config.scriptsPath);
  process.stdout.write(`${server.url}\n`);
  const stop = (): void => { void server.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`mock-model-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
