/**
 * Tiny builders of decide()'s input, for pure unit tests: an Observed assembled from a spec
 * (parsed by agentRunSpec, defaults applied), a status, journal entries and what was seen of pods,
 * model calls and tool outputs, with a fixed clock and a fake hash. No I/O anywhere.
 *
 * `advance()` is a one-tick world: it applies a decision's durable effects (finalizer, journal,
 * status) and its obvious consequences (a started call is in flight, a created pod is Pending),
 * so a test can walk a run forward with decide() itself and change only what it is about.
 */
import type { ModelEndpointSpec } from '../../src/api/model-endpoint.ts';
import { agentRunSpec, type AgentRun, type AgentRunSpec, type AgentRunStatus, type StepRecord } from '../../src/api/agent-run.ts';
import type { AgentToolSpec } from '../../src/api/agent-tool.ts';
import { FINALIZER } from '../../src/api/conditions.ts';
import type { Decision, Effect } from '../../src/core/effects.ts';
import { serializeEntry, type JournalEntry, type ModelResponse, type ModelResponseEntry, type ResolvedTool, type ToolResultEntry, type WireBlock } from '../../src/api/journal-entry.ts';
import { isStepDone } from '../../src/core/machine.ts';
import { journalName, shortHash } from '../../src/core/naming.ts';
import type { ModelCallObservation, Observed, PodObservation, ToolOutputObservation } from '../../src/core/observed.ts';
import type { RecordedEntry } from '../../src/api/journal-entry.ts';
import type { ModelFailure } from '../../src/core/policies.ts';
import { resolveTools } from '../../src/core/tools.ts';
import { merge } from '../fixtures/invalid-manifests.ts';

// ---- clock, names, hash ----

/** The fixed start of every test's clock. */
export const T0 = Date.parse('2030-01-01T00:00:00.000Z');
/** T0 plus `seconds`. */
export const at = (seconds: number): number => T0 + seconds * 1000;
export const iso = (ms: number): string => new Date(ms).toISOString();

export const RUN_NAME = 'research';
export const NAMESPACE = 'agents';
export const RUN_UID = '7d0c2a4e-run-uid';

/** Deterministic stand-in for sha256 hex: 64 hex characters, different for different texts. */
export function fakeHash(text: string): string {
  let out = '';
  for (let i = 0; i < 8; i++) out += shortHash(`${i}:${text}`);
  return out;
}

/** The digest decide() records for an entry under the fake hash. */
export function digestOf(entry: JournalEntry): string {
  return `sha256:${fakeHash(serializeEntry(entry))}`;
}

// ---- spec ----

export const WEB_FETCH_SCHEMA = {
  type: 'object',
  properties: { url: { type: 'string', pattern: '^https?://' } },
  required: ['url'],
  additionalProperties: false,
} as const;

/**
 * The spec every test starts from: two inline tools, web_fetch (idempotent, 2 retries, 2m)
 * and shell (not idempotent, default retries and timeout).
 */
export function specInput(): Record<string, unknown> {
  return {
    model: { name: 'claude-test', maxTokens: 1024, endpointRef: { name: 'anthropic' } },
    systemPrompt: 'You are a careful research agent.',
    prompt: 'When was Kubernetes 1.0 released?',
    tools: [
      {
        name: 'web_fetch', description: 'Fetch a web page.', inputSchema: WEB_FETCH_SCHEMA,
        idempotent: true, retries: 2, timeout: '2m',
        container: { image: 'curlimages/curl', command: ['sh', '-c', 'curl -fsSL "$URL"'] },
      },
      {
        name: 'shell', description: 'Run a shell command.',
        inputSchema: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] },
        container: { image: 'busybox', command: ['sh', '-c'] },
      },
    ],
  };
}

/** The base spec with `patch` deep-merged (arrays replaced, undefined deletes), parsed. */
export function spec(patch: Record<string, unknown> = {}): AgentRunSpec {
  return agentRunSpec.parse(merge(specInput(), patch));
}

/** The run's tools as decide() resolves and journals them. */
export function resolvedTools(s: AgentRunSpec, agentTools: ReadonlyMap<string, AgentToolSpec | undefined> = new Map()): ResolvedTool[] {
  const r = resolveTools(s, agentTools);
  if (!r.ok) throw new Error(`tools do not resolve: missing ${r.missing.join(', ')}`);
  return r.tools;
}

// ---- model responses and journal entries ----

export const text = (t: string): WireBlock => ({ type: 'text', text: t });
export const toolUse = (id: string, name: string, input: unknown): WireBlock => ({ type: 'tool_use', id, name, input });

export function response(stopReason: string | null, content: WireBlock[], usage: { input: number; output: number } = { input: 100, output: 20 }, id = 'msg_1'): ModelResponse {
  return { id, model: 'claude-test', content, stop_reason: stopReason, usage: { input_tokens: usage.input, output_tokens: usage.output } };
}

export function modelEntry(stepId: number, turn: number, r: ModelResponse, attempt = 1): ModelResponseEntry {
  return { kind: 'ModelResponse', stepId, turn, attempt, response: r };
}

export function toolResultEntry(stepId: number, tool: string, toolUseId: string, output: string, extra: Partial<ToolResultEntry> = {}): ToolResultEntry {
  return { kind: 'ToolResult', stepId, tool, toolUseId, attempt: 1, output, isError: false, outcome: 'Completed', truncated: false, ...extra };
}

// ---- step records and statuses ----

export function modelStep(id: number, turn: number, patch: Partial<StepRecord> = {}): StepRecord {
  return { id, kind: 'Model', turn, phase: 'Running', attempt: 1, startedAt: iso(T0), ...patch };
}

export function toolStep(id: number, turn: number, tool: string, toolUseId: string, patch: Partial<StepRecord> = {}): StepRecord {
  return { id, kind: 'Tool', turn, phase: 'Pending', tool, toolUseId, attempt: 1, ...patch };
}

/** A step record that points at its journaled entry, as decide() leaves a finished step. */
export function journaled(step: StepRecord, entry: JournalEntry, patch: Partial<StepRecord> = {}): StepRecord {
  return { ...step, phase: 'Succeeded', outcome: 'Completed', finishedAt: iso(T0), journal: { name: journalName(RUN_NAME, step.id), digest: digestOf(entry) }, ...patch };
}

/** The status of a started run with these steps. */
export function runningStatus(steps: StepRecord[], patch: Partial<AgentRunStatus> = {}): AgentRunStatus {
  return {
    phase: 'Running', startTime: iso(T0), currentTurn: Math.max(0, ...steps.filter((s) => s.kind === 'Model' && isStepDone(s)).map((s) => s.turn)),
    usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, totalTokens: 0 },
    steps, ...patch,
  };
}

/** A finished status (completionTime `finishedAt`). */
export function finishedStatus(phase: 'Succeeded' | 'Failed' | 'Cancelled', finishedAt: number, patch: Partial<AgentRunStatus> = {}): AgentRunStatus {
  return {
    phase, startTime: iso(T0), completionTime: iso(finishedAt), steps: [], message: `ended ${phase}`,
    conditions: [{ type: 'Succeeded', status: phase === 'Succeeded' ? 'True' : 'False', reason: phase === 'Succeeded' ? 'Completed' : phase, message: 'x', lastTransitionTime: iso(finishedAt) }],
    ...patch,
  };
}

// ---- pods ----

const podBase = (name: string): PodObservation => ({ name, exists: true, phase: 'Pending', started: false, deleting: false, finalizerHeld: true });

export const pod = {
  pending: (name: string, patch: Partial<PodObservation> = {}): PodObservation => ({ ...podBase(name), ...patch }),
  running: (name: string, patch: Partial<PodObservation> = {}): PodObservation => ({ ...podBase(name), phase: 'Running', started: true, ...patch }),
  /** The container ran and exited. */
  exited: (name: string, exitCode: number, finishedAt: number, patch: Partial<PodObservation> & { reason?: string; terminationReason?: string; terminationMessage?: string } = {}): PodObservation => {
    const { terminationReason, terminationMessage, ...rest } = patch;
    return {
      ...podBase(name), phase: exitCode === 0 ? 'Succeeded' : 'Failed', started: true,
      terminated: { exitCode, finishedAt: iso(finishedAt), ...(terminationReason ? { reason: terminationReason } : {}), ...(terminationMessage ? { message: terminationMessage } : {}) },
      ...rest,
    };
  },
  /** The container never ran (image, config or start failure). */
  neverStarted: (name: string, reason = 'StartError'): PodObservation => ({ ...podBase(name), phase: 'Failed', reason, message: `container could not start: ${reason}` }),
  /** Gone from the cluster; `started` says whether it was seen running. */
  vanished: (name: string, started: boolean): PodObservation => ({ ...podBase(name), exists: false, phase: started ? 'Running' : 'Pending', started }),
};

// ---- model calls ----

export const call = {
  inFlight: (attempt = 1): ModelCallObservation => ({ state: 'in-flight', attempt }),
  succeeded: (r: ModelResponse, attempt = 1): ModelCallObservation => ({ state: 'succeeded', attempt, response: r }),
  failed: (failure: ModelFailure, attempt = 1): ModelCallObservation => ({ state: 'failed', attempt, failure }),
};

export const failure = {
  http: (status: number, extra: { retryAfterMs?: number; errorType?: string; message?: string } = {}): ModelFailure =>
    ({ kind: 'http', status, message: extra.message ?? `HTTP ${status}`, ...(extra.errorType ? { errorType: extra.errorType } : {}), ...(extra.retryAfterMs !== undefined ? { retryAfterMs: extra.retryAfterMs } : {}) }),
  timeout: (): ModelFailure => ({ kind: 'timeout', message: 'request timed out after 600s' }),
  connection: (): ModelFailure => ({ kind: 'connection', message: 'ECONNRESET' }),
};

// ---- the Observed ----

export interface ObservedInit {
  /** Deep-merged over specInput(). */
  readonly spec?: Record<string, unknown>;
  readonly status?: AgentRunStatus;
  readonly now?: number;
  readonly name?: string;
  readonly uid?: string;
  /** Default: the operator's finalizer is already there. */
  readonly finalizers?: string[];
  readonly deletionTimestamp?: string;
  readonly generation?: number;
  readonly agentTools?: Record<string, AgentToolSpec | undefined>;
  /** Default: the resolved tools once the run has started (status.startTime), else none. `null`: none. */
  readonly toolSnapshot?: readonly ResolvedTool[] | null;
  /** Entries the journal holds, keyed by their stepId; digests by the fake hash. */
  readonly journal?: readonly JournalEntry[];
  readonly pods?: readonly PodObservation[];
  readonly modelCalls?: Readonly<Record<number, ModelCallObservation>>;
  readonly toolOutputs?: Readonly<Record<number, ToolOutputObservation>>;
  readonly statusByteBudget?: number;
  readonly stepEvents?: boolean;
  /** Default: an endpoint that allows every model. `null`: it does not exist. */
  readonly modelEndpoint?: ModelEndpointSpec | null;
}

/** The ModelEndpoint observed() uses unless told otherwise. */
export const ANY_MODEL_ENDPOINT: ModelEndpointSpec = { provider: 'anthropic', baseURL: 'https://api.anthropic.com', models: ['*'] };

export function observed(init: ObservedInit = {}): Observed {
  const parsed = spec(init.spec);
  const agentTools = new Map(Object.entries(init.agentTools ?? {}));
  const resolution = resolveTools(parsed, agentTools);
  const defaultSnapshot = init.status?.startTime && resolution.ok ? resolution.tools : undefined;
  const snapshot = init.toolSnapshot === null ? undefined : init.toolSnapshot ?? defaultSnapshot;
  const journal = new Map<number, RecordedEntry>();
  for (const entry of init.journal ?? []) {
    if (entry.kind === 'Tools') continue;
    journal.set(entry.stepId, { entry, digest: digestOf(entry) });
  }
  const run: Observed['run'] = {
    apiVersion: 'agentrun.dev/v1alpha1',
    kind: 'AgentRun',
    metadata: {
      name: init.name ?? RUN_NAME, namespace: NAMESPACE, uid: init.uid ?? RUN_UID, generation: init.generation ?? 1,
      resourceVersion: '100', creationTimestamp: iso(T0),
      finalizers: init.finalizers ?? [FINALIZER],
      ...(init.deletionTimestamp ? { deletionTimestamp: init.deletionTimestamp } : {}),
    },
    spec: parsed,
    ...(init.status ? { status: structuredClone(init.status) } : {}),
  } satisfies AgentRun;
  return {
    run,
    now: init.now ?? T0,
    hash: fakeHash,
    agentTools,
    ...(snapshot ? { toolSnapshot: { tools: snapshot, digest: digestOf({ kind: 'Tools', tools: [...snapshot] }) } } : {}),
    journal,
    pods: new Map((init.pods ?? []).map((p) => [p.name, p])),
    modelCalls: new Map(Object.entries(init.modelCalls ?? {}).map(([k, v]) => [Number(k), v])),
    toolOutputs: new Map(Object.entries(init.toolOutputs ?? {}).map(([k, v]) => [Number(k), v])),
    statusByteBudget: init.statusByteBudget ?? 1_000_000,
    ...(init.modelEndpoint === null ? {} : { modelEndpoint: init.modelEndpoint ?? ANY_MODEL_ENDPOINT }),
    ...(init.stepEvents !== undefined ? { stepEvents: init.stepEvents } : {}),
  };
}

// ---- one tick of a world ----

export interface Tick {
  readonly now?: number;
  /** Replace the spec's mutable fields. */
  readonly suspend?: boolean;
  readonly cancel?: boolean;
  readonly deletionTimestamp?: string;
  /** Replace (not merge) what is observed; by default calls and pods follow the effects. */
  readonly modelCalls?: Readonly<Record<number, ModelCallObservation>>;
  readonly pods?: readonly PodObservation[];
  /** Pods to add or replace by name. */
  readonly podUpdates?: readonly PodObservation[];
  readonly toolOutputs?: Readonly<Record<number, ToolOutputObservation>>;
}

/**
 * The Observed after `decision` was executed: finalizer, journal and status written, started
 * calls in flight, created pods Pending, deleted pods deleting, calls of done steps forgotten
 * (as the reconciler does). `tick` then overrides what the test is about.
 */
export function advance(o: Observed, decision: Decision, tick: Tick = {}): Observed {
  let finalizers = [...(o.run.metadata.finalizers ?? [])];
  const journal = new Map(o.journal);
  let toolSnapshot = o.toolSnapshot;
  const calls = new Map(o.modelCalls);
  const mcpCalls = new Map(o.mcpCalls ?? []);
  const pods = new Map(o.pods);
  for (const e of decision.effects) {
    switch (e.type) {
      case 'addFinalizer': if (!finalizers.includes(FINALIZER)) finalizers.push(FINALIZER); break;
      case 'removeFinalizer': finalizers = finalizers.filter((f) => f !== FINALIZER); break;
      case 'writeJournal':
        if (e.entry.kind === 'Tools') toolSnapshot ??= { tools: e.entry.tools, digest: e.digest };
        else if (e.stepId !== undefined && !journal.has(e.stepId)) journal.set(e.stepId, { entry: e.entry, digest: e.digest });
        break;
      case 'startModelCall': calls.set(e.stepId, { state: 'in-flight', attempt: e.attempt }); break;
      case 'cancelModelCall': calls.delete(e.stepId); break;
      case 'startMCPCall': mcpCalls.set(e.stepId, { state: 'in-flight', attempt: e.attempt }); break;
      case 'pollMCPTask':
        if (mcpCalls.get(e.stepId)?.attempt !== e.attempt) mcpCalls.set(e.stepId, { state: 'task', attempt: e.attempt, handle: e.handle });
        break;
      case 'createPod': {
        const name = e.pod.metadata?.name ?? '';
        if (!pods.get(name)?.exists) pods.set(name, pod.pending(name));
        break;
      }
      case 'deletePod': {
        const p = pods.get(e.name);
        if (p) pods.set(e.name, { ...p, deleting: true, finalizerHeld: false });
        break;
      }
      case 'releasePod': {
        const p = pods.get(e.name);
        // Released while deleting: nothing holds it any more, it is gone.
        if (p) pods.set(e.name, p.deleting ? { ...p, exists: false, finalizerHeld: false } : { ...p, finalizerHeld: false });
        break;
      }
      case 'deleteEndedPods':
        for (const [name, p] of pods) if (p.exists) pods.set(name, p.finalizerHeld === true ? { ...p, deleting: true } : { ...p, deleting: true, exists: false });
        break;
      case 'event': case 'deleteRun': break;
    }
  }
  for (const step of decision.status.steps ?? []) if (step.kind === 'Model' && isStepDone(step)) calls.delete(step.id);
  for (const p of tick.podUpdates ?? []) pods.set(p.name, p);
  const specNow: AgentRunSpec = {
    ...o.run.spec,
    ...(tick.suspend !== undefined ? { suspend: tick.suspend } : {}),
    ...(tick.cancel !== undefined ? { cancel: tick.cancel } : {}),
  };
  const deletionTimestamp = tick.deletionTimestamp ?? o.run.metadata.deletionTimestamp;
  return {
    ...o,
    run: {
      ...o.run,
      metadata: { ...o.run.metadata, finalizers, ...(deletionTimestamp ? { deletionTimestamp } : {}) },
      spec: specNow,
      status: structuredClone(decision.status),
    },
    now: tick.now ?? o.now,
    ...(toolSnapshot ? { toolSnapshot } : {}),
    journal,
    modelCalls: tick.modelCalls ? new Map(Object.entries(tick.modelCalls).map(([k, v]) => [Number(k), v])) : calls,
    ...(o.mcpCalls || mcpCalls.size > 0 ? { mcpCalls } : {}),
    pods: tick.pods ? new Map(tick.pods.map((p) => [p.name, p])) : pods,
    toolOutputs: new Map(Object.entries(tick.toolOutputs ?? {}).map(([k, v]) => [Number(k), v])),
  };
}

// ---- reading decisions ----

export type EffectOf<T extends Effect['type']> = Extract<Effect, { type: T }>;

export function effectsOf<T extends Effect['type']>(decision: Decision, type: T): EffectOf<T>[] {
  return decision.effects.filter((e): e is EffectOf<T> => e.type === type);
}

export function effectTypes(decision: Decision): Effect['type'][] {
  return decision.effects.map((e) => e.type);
}

export function stepOf(decision: Decision, id: number): StepRecord {
  const step = decision.status.steps?.find((s) => s.id === id);
  if (!step) throw new Error(`no step ${id} in ${JSON.stringify(decision.status.steps?.map((s) => s.id))}`);
  return step;
}

export function succeededCondition(decision: Decision): { status: string; reason: string; message: string; lastTransitionTime: string } {
  const c = decision.status.conditions?.find((x) => x.type === 'Succeeded');
  if (!c) throw new Error('no Succeeded condition');
  return c;
}

/** The journal entries of writeJournal effects that belong to a step. */
export function journaledEntries(decision: Decision): JournalEntry[] {
  return effectsOf(decision, 'writeJournal').filter((e) => e.stepId !== undefined).map((e) => e.entry);
}

/** The env of a createPod effect's tool container, as a record. */
export function podEnv(e: EffectOf<'createPod'>): Record<string, string | undefined> {
  return Object.fromEntries((e.pod.spec?.containers[0]?.env ?? []).map((v) => [v.name, v.value]));
}
