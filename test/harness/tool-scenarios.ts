/**
 * Helpers for the tool-failure scenarios: per-run execution logs and gate files (outside every
 * tool sandbox), the tool_result blocks the model received, a full-object pod history, and a
 * proxy that makes the scripted model call a tool the request does not define.
 */
import * as k8s from '@kubernetes/client-node';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AgentRun, StepRecord } from '../../src/api/agent-run.ts';
import { hostScratchDir } from './control-plane.ts';
import { clients, eventually } from './kube.ts';
import type { MockModelServer } from './mock-model-server.ts';
import { waitForFileSnippet } from './test-node.ts';

/**
 * Files of one scenario, under hostScratchDir(tool-scenarios/<namespace>): never
 * under /tmp, which is an emptyDir mount in tool pods and rewritten by the node emulator.
 */
export interface ScenarioFiles {
  /** One line per real execution: "<AGENTRUN_IDEMPOTENCY_KEY> <AGENTRUN_ATTEMPT>". */
  readonly execLog: string;
  /** A tool started with {@link gated} blocks until this file exists. */
  readonly gate: string;
}

export async function scenarioFiles(namespace: string, run: string): Promise<ScenarioFiles> {
  const dir = hostScratchDir('tool-scenarios', namespace);
  await mkdir(dir, { recursive: true });
  const execLog = join(dir, `${run}.exec.log`);
  await writeFile(execLog, '');
  return { execLog, gate: join(dir, `${run}.gate`) };
}

/** A shell snippet that waits for `gate` to exist (on this machine, seen from a container too), then runs `then`. */
export function gated(gate: string, then: string): string {
  return `${waitForFileSnippet(gate)}; ${then}`;
}

export async function openGate(gate: string): Promise<void> {
  await writeFile(gate, '');
}

/** Lines of an execution log. */
export async function executionsOf(execLog: string): Promise<string[]> {
  return (await readFile(execLog, 'utf8')).split('\n').filter(Boolean);
}

/** Waits until the execution log has at least `count` lines, and returns them. */
export async function waitForExecutions(execLog: string, count: number, timeoutMs = 30_000): Promise<string[]> {
  return eventually(`${count} execution(s) in ${execLog}`, async () => {
    const lines = await executionsOf(execLog);
    return lines.length >= count ? lines : undefined;
  }, timeoutMs);
}

/** A tool_result block as the model received it. */
export interface ReceivedToolResult {
  readonly tool_use_id: string;
  readonly content: string;
  readonly is_error?: boolean;
}

/** The tool_result blocks of the last user message of model call `callIndex` (0-based) of a script. */
export function toolResultsSent(model: MockModelServer, key: string, callIndex: number): ReceivedToolResult[] {
  const request = model.requests(key)[callIndex];
  if (!request) throw new Error(`model call ${callIndex} of ${key} never arrived (${model.requests(key).length} did)`);
  const messages = (request.body as { messages?: { role: string; content: unknown }[] } | undefined)?.messages ?? [];
  const last = messages.at(-1);
  if (last?.role !== 'user' || !Array.isArray(last.content)) return [];
  return (last.content as { type: string; tool_use_id: string; content: unknown; is_error?: boolean }[])
    .filter((block) => block.type === 'tool_result')
    .map((block) => {
      return {
        tool_use_id: block.tool_use_id,
        content: typeof block.content === 'string' ? block.content : JSON.stringify(block.content),
        ...(block.is_error !== undefined ? { is_error: block.is_error } : {}),
      };
    });
}

/** The step with id `id`, or a failure that shows every step. */
export function stepOf(run: AgentRun, id: number): StepRecord {
  const step = run.status?.steps?.find((s) => s.id === id);
  if (!step) throw new Error(`run ${run.metadata.name ?? ''} has no step ${id}: ${JSON.stringify(run.status?.steps ?? [])}`);
  return step;
}

/** Every version of every pod seen in a namespace, by name (pod names are unique per attempt). */
export class PodHistory {
  private readonly versions = new Map<string, k8s.V1Pod[]>();
  private abort: AbortController | undefined;
  private constructor() { /* use watch() */ }

  static async watch(namespace: string): Promise<PodHistory> {
    const history = new PodHistory();
    const watch = new k8s.Watch(clients().kc);
    history.abort = await watch.watch(`/api/v1/namespaces/${namespace}/pods`, {}, (_type, pod: k8s.V1Pod) => {
      const name = pod.metadata?.name;
      if (!name) return;
      const seen = history.versions.get(name) ?? [];
      seen.push(pod);
      history.versions.set(name, seen);
    }, () => undefined);
    return history;
  }

  /** Names of the pods seen whose name starts with `prefix`, sorted. */
  names(prefix = ''): string[] {
    return [...this.versions.keys()].filter((n) => n.startsWith(prefix)).sort();
  }

  /** The newest version seen of a pod. */
  last(name: string): k8s.V1Pod | undefined {
    return this.versions.get(name)?.at(-1);
  }

  /** Every version seen of a pod, oldest first. */
  all(name: string): k8s.V1Pod[] {
    return [...(this.versions.get(name) ?? [])];
  }

  stop(): void { this.abort?.abort(); }
}

/**
 * A Messages API proxy in front of the mock model server that renames tool_use blocks by id in
 * the responses: a model that calls a tool the request does not define, which the mock refuses
 * to script (its scripts may only name defined tools). Requests still reach the mock unchanged,
 * so `model.requests(key)` shows what the operator sent.
 */
export interface ToolRenamingProxy {
  readonly url: string;
  close(): Promise<void>;
}

export async function startToolRenamingProxy(target: string, renames: Readonly<Record<string, string>>): Promise<ToolRenamingProxy> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { chunks.push(c); });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = httpRequest({
        host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
        headers: { ...withoutHopHeaders(req.headers), 'accept-encoding': 'identity', 'content-length': String(body.length) },
      }, (upRes) => {
        const parts: Buffer[] = [];
        upRes.on('data', (c: Buffer) => { parts.push(c); });
        upRes.on('end', () => {
          const out = Buffer.from(rename(Buffer.concat(parts).toString('utf8'), renames));
          res.writeHead(upRes.statusCode ?? 502, { ...withoutHopHeaders(upRes.headers), 'content-length': String(out.length) });
          res.end(out);
        });
      });
      forward.on('error', (error) => { res.writeHead(502).end(`proxy: ${error.message}`); });
      forward.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve(); }); }),
  };
}

function rename(text: string, renames: Readonly<Record<string, string>>): string {
  let json: unknown;
  try { json = JSON.parse(text); } catch { return text; }
  const content = (json as { content?: unknown }).content;
  if (!Array.isArray(content)) return text;
  for (const block of content as { type?: string; id?: string; name?: string }[]) {
    const to = block.type === 'tool_use' && block.id !== undefined ? renames[block.id] : undefined;
    if (to !== undefined) block.name = to;
  }
  return JSON.stringify(json);
}

function withoutHopHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || ['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k)) continue;
    out[k] = v;
  }
  return out;
}
