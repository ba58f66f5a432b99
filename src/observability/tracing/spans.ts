/**
 * The spans of a run, derived only from what the run records (status, journal) and its trace
 * context: any operator process, including one that took over after a crash, derives the same
 * spans with the same ids and times. Pure: no clock, no I/O.
 */
import type { AgentRunStatus, StepRecord } from '../../api/agent-run.ts';
import type { JournalEntry } from '../../api/journal-entry.ts';
import { isFinished, isStepDone } from '../../core/machine.ts';
import { runSpanId, stepSpanId, type RunTraceContext } from './ids.ts';

/** A span attribute value, as OpenTelemetry allows it. */
export type AttributeValue = string | number | boolean | string[];

/** One finished span, ready to export. */
export interface SpanData {
  /** Unique within the run: a span is exported once per process under this key. */
  readonly key: string;
  readonly name: string;
  readonly kind: 'internal' | 'client';
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly events: readonly { name: string; timeMs: number; attributes: Record<string, AttributeValue> }[];
  /** Set when the span ended in error: its description. */
  readonly error?: string;
}

/** A failed model attempt the operator saw (status keeps only the last one). */
export interface RetrySeen {
  readonly attempt: number;
  readonly errorClass: string;
  readonly atMs: number;
}

/** What a run's spans are derived from. */
export interface RunSpanInput {
  readonly run: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly creationTimestamp?: string;
    readonly model: string;
    readonly maxTokens: number;
  };
  readonly status: AgentRunStatus;
  readonly context: RunTraceContext;
  /** Journaled entries by step id. */
  readonly journal: ReadonlyMap<number, JournalEntry>;
  /** Record prompts, tool inputs and outputs (opt-in). */
  readonly content: boolean;
  readonly retries?: ReadonlyMap<number, readonly RetrySeen[]>;
  /** Steps that were in flight when this process took the run over from one that stopped. */
  readonly resumed?: ReadonlySet<number>;
  /** Keys of spans already exported: not derived again (keeps a status write O(new spans)). */
  readonly skip?: ReadonlySet<string>;
}

/** Longest recorded content attribute (a tool output, a model answer), in characters. */
export const MAX_CONTENT_CHARS = 16_384;
const PROVIDER = 'anthropic';

const ms = (t: string | undefined): number | undefined => {
  const v = t === undefined ? NaN : Date.parse(t);
  return Number.isFinite(v) ? v : undefined;
};
const clip = (s: string): string => s.length > MAX_CONTENT_CHARS ? `${s.slice(0, MAX_CONTENT_CHARS)}…[truncated]` : s;

/**
 * Every span the recorded state of the run ends: finished steps, decided approvals, and the root once
 * the run ended.
 */
export function runSpans(input: RunSpanInput): SpanData[] {
  const spans: SpanData[] = [];
  const skip = input.skip ?? new Set<string>();
  for (const step of input.status.steps ?? []) {
    const approval = skip.has(`approval/${step.id}`) ? undefined : approvalSpan(input, step);
    if (approval) spans.push(approval);
    if (!isStepDone(step) || skip.has(`step/${step.id}`)) continue;
    const span = step.kind === 'Model' ? modelSpan(input, step) : toolSpan(input, step);
    if (span) spans.push(span);
  }
  const root = skip.has('root') ? undefined : rootSpan(input);
  if (root) spans.push(root);
  return spans;
}

/**
 * The model calls that were in flight when the previous process stopped (the call died with it,
 * and the step's attempt is made again): each ends when this process took over, marked interrupted.
 */
export function interruptedSpans(input: RunSpanInput, takenOverAtMs: number): SpanData[] {
  return (input.status.steps ?? []).flatMap((step) => {
    if (step.kind !== 'Model' || step.phase !== 'Running') return [];
    // A later attempt starts when its retry is due, not when the step started.
    const start = (step.attempt > 1 ? ms(step.retry?.nextRetryAt) : undefined) ?? ms(step.startedAt);
    if (start === undefined || start > takenOverAtMs) return [];
    const base = modelAttributes(input, step);
    return [{
      key: `interrupted/${step.id}/${step.attempt}`,
      name: `chat ${input.run.model}`,
      kind: 'client' as const,
      traceId: input.context.traceId,
      spanId: runSpanId(input.run.uid, 'interrupted', step.id, step.attempt),
      parentSpanId: input.context.spanId,
      startMs: start,
      endMs: takenOverAtMs,
      attributes: { ...base, 'agentrun.interrupted': true, 'error.type': 'OperatorRestarted' },
      events: [],
      error: 'interrupted: the operator stopped while this call was in flight; the attempt was made again',
    }];
  });
}

function modelAttributes(input: RunSpanInput, step: StepRecord): Record<string, AttributeValue> {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': PROVIDER,
    'gen_ai.request.model': input.run.model,
    'gen_ai.request.max_tokens': input.run.maxTokens,
    'gen_ai.conversation.id': input.run.uid,
    'agentrun.step.id': step.id,
    'agentrun.step.attempt': step.attempt,
    'agentrun.turn': step.turn,
  };
}

function modelSpan(input: RunSpanInput, step: StepRecord): SpanData | undefined {
  const start = ms(step.startedAt);
  const end = ms(step.finishedAt) ?? start;
  if (start === undefined || end === undefined) return undefined;
  const entry = input.journal.get(step.id);
  const response = entry?.kind === 'ModelResponse' ? entry.response : undefined;
  const attributes: Record<string, AttributeValue> = { ...modelAttributes(input, step) };
  if (step.outcome) attributes['agentrun.step.outcome'] = step.outcome;
  if (response) {
    attributes['gen_ai.response.id'] = response.id;
    attributes['gen_ai.response.model'] = response.model;
    if (input.content)
      attributes['gen_ai.output.messages'] = clip(JSON.stringify([{ role: 'assistant', content: response.content }]));
  }
  if (step.stopReason) attributes['gen_ai.response.finish_reasons'] = [step.stopReason];
  if (step.usage) {
    attributes['gen_ai.usage.input_tokens'] = step.usage.inputTokens;
    attributes['gen_ai.usage.output_tokens'] = step.usage.outputTokens;
    attributes['gen_ai.usage.cache_read.input_tokens'] = step.usage.cacheReadInputTokens;
    attributes['gen_ai.usage.cache_creation.input_tokens'] = step.usage.cacheCreationInputTokens;
  }
  const retries = new Map((input.retries?.get(step.id) ?? []).map((r) => [r.attempt, r]));
  if (step.retry && !retries.has(step.retry.attempt)) {
    const at = ms(step.retry.nextRetryAt) ?? end;
    retries.set(step.retry.attempt, { attempt: step.retry.attempt, errorClass: step.retry.errorClass, atMs: at });
  }
  const failed = step.phase === 'Failed';
  if (retries.size > 0) attributes['agentrun.retry.failed_attempts'] = retries.size;
  if (failed) attributes['error.type'] = step.retry?.errorClass ?? step.outcome ?? 'Failed';
  if (input.resumed?.has(step.id)) attributes['agentrun.operator_restarted'] = true;
  return {
    ...stepSpanBase(input, step, `chat ${input.run.model}`, 'client', start, end),
    attributes,
    events: [...retries.values()].sort((a, b) => a.attempt - b.attempt).map((r) => ({
      name: 'retry',
      timeMs: Math.min(Math.max(r.atMs, start), Math.max(start, end)),
      attributes: { 'agentrun.retry.attempt': r.attempt, 'error.type': r.errorClass },
    })),
    ...(failed ? { error: step.message ?? step.retry?.errorMessage ?? 'the model call failed' } : {}),
  };
}

function toolSpan(input: RunSpanInput, step: StepRecord): SpanData | undefined {
  const start = ms(step.startedAt) ?? ms(step.approval?.at) ?? ms(step.finishedAt);
  const end = ms(step.finishedAt) ?? start;
  if (start === undefined || end === undefined) return undefined;
  const entry = input.journal.get(step.id);
  const result = entry?.kind === 'ToolResult' ? entry : undefined;
  const attributes: Record<string, AttributeValue> = {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': step.tool ?? '',
    'gen_ai.conversation.id': input.run.uid,
    'agentrun.step.id': step.id,
    'agentrun.step.attempt': step.attempt,
    'agentrun.turn': step.turn,
    'k8s.namespace.name': input.run.namespace,
  };
  if (step.toolUseId) attributes['gen_ai.tool.call.id'] = step.toolUseId;
  if (step.podName) attributes['k8s.pod.name'] = step.podName;
  if (step.mcpServer) {
    // MCP semantic conventions: the JSON-RPC method; the server is the MCPServer object it was called on.
    attributes['mcp.method.name'] = 'tools/call';
    attributes['agentrun.mcp.server'] = step.mcpServer;
  }
  if (step.outcome) attributes['agentrun.step.outcome'] = step.outcome;
  if (result?.exitCode !== undefined) attributes['agentrun.tool.exit_code'] = result.exitCode;
  if (result?.truncated) attributes['agentrun.tool.output_truncated'] = true;
  if (input.resumed?.has(step.id)) attributes['agentrun.operator_restarted'] = true;
  if (input.content) {
    if (result) attributes['gen_ai.tool.call.result'] = clip(result.output);
    const args = toolArguments(input.journal, step.toolUseId);
    if (args !== undefined) attributes['gen_ai.tool.call.arguments'] = clip(args);
  }
  const failed = step.phase === 'Failed' || result?.isError === true;
  if (failed) attributes['error.type'] = step.outcome ?? 'ToolError';
  return {
    ...stepSpanBase(input, step, `execute_tool ${step.tool ?? ''}`.trim(), 'internal', start, end),
    attributes,
    events: [],
    ...(failed ? { error: step.message ?? `the tool step ended ${step.outcome ?? 'in error'}` } : {}),
  };
}

/** What every step span has: its key, name and kind, the run's trace, the step's own span id, its times. */
function stepSpanBase(input: RunSpanInput, step: StepRecord, name: string, kind: SpanData['kind'], start: number,
  end: number) {
  return {
    key: `step/${step.id}`,
    name,
    kind,
    traceId: input.context.traceId,
    spanId: stepSpanId(input.run.uid, step.id, step.attempt),
    parentSpanId: input.context.spanId,
    startMs: start,
    endMs: Math.max(start, end),
  };
}

/** The tool_use input the model sent for `toolUseId`, as JSON, from the journaled model responses. */
function toolArguments(journal: ReadonlyMap<number, JournalEntry>, toolUseId: string | undefined): string | undefined {
  if (!toolUseId) return undefined;
  for (const entry of journal.values()) {
    if (entry.kind !== 'ModelResponse') continue;
    const block = entry.response.content.find((b) => b.type === 'tool_use' && (b as { id?: unknown }).id === toolUseId);
    if (block) return JSON.stringify((block as { input?: unknown }).input ?? null);
  }
  return undefined;
}

function approvalSpan(input: RunSpanInput, step: StepRecord): SpanData | undefined {
  const a = step.approval;
  const start = ms(a?.requestedAt);
  const end = ms(a?.at);
  if (!a || start === undefined || end === undefined) return undefined;
  const attributes: Record<string, AttributeValue> = {
    'agentrun.step.id': step.id,
    'agentrun.approval.decision': a.decision,
    'agentrun.approval.wait_ms': Math.max(0, end - start),
  };
  if (step.tool) attributes['gen_ai.tool.name'] = step.tool;
  if (a.by) attributes['agentrun.approval.by'] = a.by;
  if (input.content && a.comment) attributes['agentrun.approval.comment'] = a.comment;
  return {
    key: `approval/${step.id}`,
    name: step.kind === 'Tool' ? `await_approval ${step.tool ?? ''}`.trim() : 'await_approval budget',
    kind: 'internal',
    traceId: input.context.traceId,
    spanId: runSpanId(input.run.uid, 'approval', step.id),
    parentSpanId: input.context.spanId,
    startMs: start,
    endMs: Math.max(start, end),
    attributes,
    events: [],
  };
}

function rootSpan(input: RunSpanInput): SpanData | undefined {
  const { status, run } = input;
  if (!isFinished(status)) return undefined;
  const start = ms(run.creationTimestamp) ?? ms(status.startTime);
  const end = ms(status.completionTime) ?? start;
  if (start === undefined || end === undefined) return undefined;
  const attributes: Record<string, AttributeValue> = {
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.provider.name': PROVIDER,
    'gen_ai.agent.name': run.name,
    'gen_ai.agent.id': run.uid,
    'gen_ai.conversation.id': run.uid,
    'gen_ai.request.model': run.model,
    'k8s.namespace.name': run.namespace,
    'agentrun.run.phase': status.phase ?? '',
    'agentrun.steps': status.steps?.length ?? 0,
  };
  const reason = status.conditions?.find((c) => c.type === 'Succeeded')?.reason;
  if (reason) attributes['agentrun.run.reason'] = reason;
  if (status.usage) {
    attributes['gen_ai.usage.input_tokens'] = status.usage.inputTokens;
    attributes['gen_ai.usage.output_tokens'] = status.usage.outputTokens;
    attributes['gen_ai.usage.cache_read.input_tokens'] = status.usage.cacheReadInputTokens;
    attributes['gen_ai.usage.cache_creation.input_tokens'] = status.usage.cacheCreationInputTokens;
  }
  if (input.content && status.result) attributes['agentrun.result'] = clip(status.result);
  const failed = status.phase === 'Failed';
  if (failed) attributes['error.type'] = reason ?? 'Failed';
  return {
    key: 'root',
    name: `invoke_agent ${run.name}`,
    kind: 'internal',
    traceId: input.context.traceId,
    spanId: input.context.spanId,
    ...(input.context.parentSpanId ? { parentSpanId: input.context.parentSpanId } : {}),
    startMs: start,
    endMs: Math.max(start, end),
    attributes,
    events: [],
    ...(failed ? { error: status.message ?? 'the run failed' } : {}),
  };
}
