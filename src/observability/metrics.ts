/**
 * The operator's Prometheus metrics (prom-client, one registry per operator so tests and several
 * operators in one process do not share counters). Names follow Prometheus conventions: base units
 * (seconds, bytes), `_total` for counters, low-cardinality labels only (never a run name).
 *
 * Where the reconciler has a hook (onEffect, onStatusWritten), the Controller (onReconcileDone) or
 * ModelCalls (onCallFinished), the metric is fed from it. Step outcomes, tokens and approval waits
 * are derived from the statuses the informer delivers ({@link RunStatusObserver}), counted only
 * while this process is the one reconciling, so that replicas do not double count.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentRunStatus, StepRecord } from '../api/agent-run.ts';
import type { Logger } from '../controller/index.ts';

const PREFIX = 'agentrun_';

/** Everything the operator exports; create one per operator. */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration: Histogram<'controller' | 'outcome'>;
  readonly reconcileErrors: Counter<'controller' | 'outcome'>;
  readonly queueDepth: Gauge<'controller'>;
  readonly effects: Counter<'type'>;
  readonly steps: Counter<'kind' | 'phase' | 'outcome'>;
  readonly modelCallDuration: Histogram<'outcome'>;
  readonly modelCallRetries: Counter<'error_class'>;
  /** MCP tool calls by server (namespace/name) and outcome: result, tool-error, timeout, transport-error... */
  readonly mcpCallDuration: Histogram<'server' | 'outcome'>;
  readonly modelCallsInFlight: Gauge;
  readonly tokens: Counter<'type'>;
  readonly approvalWait: Histogram<'decision'>;
  readonly statusBytes: Histogram;
  readonly runs: Gauge<'phase'>;
  readonly leader: Gauge;
  readonly ready: Gauge;

  constructor(options: { readonly defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.reconcileDuration = new Histogram({
      name: `${PREFIX}reconcile_duration_seconds`,
      help: 'Time one reconcile took, by outcome (success, requeue, error, terminal).',
      labelNames: ['controller', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: `${PREFIX}reconcile_errors_total`,
      help: 'Reconciles that failed: error (retried with backoff) or terminal (not retried).',
      labelNames: ['controller', 'outcome'],
      registers,
    });
    this.queueDepth = new Gauge({
      name: `${PREFIX}workqueue_depth`,
      help: 'Keys waiting for a worker.',
      labelNames: ['controller'],
      registers,
    });
    this.effects = new Counter({
      name: `${PREFIX}effects_total`,
      help: 'Side effects the reconciler executed, by type (createPod, startModelCall, deletePod, event, ...).',
      labelNames: ['type'],
      registers,
    });
    this.steps = new Counter({
      name: `${PREFIX}steps_total`,
      help: 'Steps that finished, by kind (Model, Tool), final phase and outcome.',
      labelNames: ['kind', 'phase', 'outcome'],
      registers,
    });
    this.modelCallDuration = new Histogram({
      name: `${PREFIX}model_call_duration_seconds`,
      help: 'Latency of one model API call, by outcome (succeeded, failed).',
      labelNames: ['outcome'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.modelCallRetries = new Counter({
      name: `${PREFIX}model_call_retries_total`,
      help:
        'Transient model call failures that were scheduled for a retry, by error class (rate_limit, overloaded, ...).',
      labelNames: ['error_class'],
      registers,
    });
    this.mcpCallDuration = new Histogram({
      name: `${PREFIX}mcp_call_duration_seconds`,
      help: 'Latency of one MCP tool call, by MCPServer (namespace/name) and outcome '
        + '(result, tool-error, unknown-tool, protocol-error, timeout, not-sent, transport-error, task-lost); '
        + 'an MCP task resumed after a restart counts from its resumption.',
      labelNames: ['server', 'outcome'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    });
    this.modelCallsInFlight = new Gauge({ name: `${PREFIX}model_calls_in_flight`, help: 'Model calls running now.',
      registers });
    this.tokens = new Counter({
      name: `${PREFIX}tokens_total`,
      help: 'Tokens used by finished model steps, by type (input, output, cache_read, cache_creation).',
      labelNames: ['type'],
      registers,
    });
    this.approvalWait = new Histogram({
      name: `${PREFIX}approval_wait_seconds`,
      help: 'How long a step waited for a human decision, by decision.',
      labelNames: ['decision'],
      buckets: [1, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    });
    this.statusBytes = new Histogram({
      name: `${PREFIX}status_size_bytes`,
      help: 'Size of each status the reconciler wrote (JSON bytes); compare with --status-byte-budget.',
      buckets: [1024, 4096, 16_384, 65_536, 131_072, 262_144, 524_288, 786_432, 1_048_576],
      registers,
    });
    this.runs = new Gauge({ name: `${PREFIX}runs`, help: 'AgentRuns in the cache, by phase.', labelNames: ['phase'],
      registers });
    this.leader = new Gauge({ name: `${PREFIX}leader`,
      help: '1 while this process holds the leader lease (or runs without leader election), else 0.', registers });
    this.ready = new Gauge({ name: `${PREFIX}ready`, help: '1 when /readyz answers 200.', registers });
  }

  /** Text exposition of every metric (what GET /metrics returns). */
  async expose(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const DONE_PHASES = new Set(['Succeeded', 'Failed', 'Skipped']);

/** A run as the informer delivers it (only the fields the observer reads). */
export interface ObservedRun {
  readonly metadata?: { readonly uid?: string; readonly namespace?: string; readonly name?: string };
  readonly status?: AgentRunStatus;
}

interface RunMemory {
  readonly done: Set<number>;
  readonly approvals: Set<number>;
  /** The highest failed attempt of each model step already counted as a retry. */
  readonly retries: Map<number, number>;
}

/**
 * Derives step, token, retry and approval metrics (and one structured log line per finished step, with
 * run, step, attempt) from the statuses the informer delivers. Each step is counted once per
 * process: runs seen during the initial list are a baseline, and nothing is counted while
 * `counting()` is false (a standby replica).
 */
export class RunStatusObserver {
  private readonly memory = new Map<string, RunMemory>();
  private readonly metrics: OperatorMetrics;
  private readonly log: Logger;
  private readonly counting: () => boolean;
  private live = false;

  constructor(metrics: OperatorMetrics, log: Logger, counting: () => boolean) {
    this.metrics = metrics;
    this.log = log;
    this.counting = counting;
  }

  /** From now on, runs seen for the first time are new (not part of the initial list). */
  markSynced(): void {
    this.live = true;
  }

  observe(run: ObservedRun): void {
    const uid = run.metadata?.uid;
    if (!uid) return;
    let memory = this.memory.get(uid);
    const baseline = memory === undefined && !this.live;
    if (memory === undefined) {
      memory = { done: new Set(), approvals: new Set(), retries: new Map() };
      this.memory.set(uid, memory);
    }
    const count = !baseline && this.counting();
    const key = `${run.metadata.namespace ?? ''}/${run.metadata.name ?? ''}`;
    for (const step of run.status?.steps ?? []) {
      if (step.approval && !memory.approvals.has(step.id)) {
        memory.approvals.add(step.id);
        if (count) this.countApproval(step);
      }
      const retry = step.kind === 'Model' && step.retry?.nextRetryAt ? step.retry : undefined;
      if (retry && retry.attempt > (memory.retries.get(step.id) ?? 0)) {
        memory.retries.set(step.id, retry.attempt);
        if (count) this.metrics.modelCallRetries.inc({ error_class: retry.errorClass });
      }
      if (DONE_PHASES.has(step.phase) && !memory.done.has(step.id)) {
        memory.done.add(step.id);
        if (count) this.countStep(key, step);
      }
    }
  }

  forget(uid: string | undefined): void {
    if (uid) this.memory.delete(uid);
  }

  private countStep(run: string, step: StepRecord): void {
    const outcome = step.outcome ?? 'None';
    this.metrics.steps.inc({ kind: step.kind, phase: step.phase, outcome });
    if (step.kind === 'Model' && step.usage) {
      this.metrics.tokens.inc({ type: 'input' }, step.usage.inputTokens);
      this.metrics.tokens.inc({ type: 'output' }, step.usage.outputTokens);
      this.metrics.tokens.inc({ type: 'cache_read' }, step.usage.cacheReadInputTokens);
      this.metrics.tokens.inc({ type: 'cache_creation' }, step.usage.cacheCreationInputTokens);
    }
    const durationMs = step.startedAt && step.finishedAt
      ? Date.parse(step.finishedAt) - Date.parse(step.startedAt)
      : undefined;
    this.log.info({
      run,
      step: step.id,
      attempt: step.attempt,
      kind: step.kind,
      ...(step.tool ? { tool: step.tool } : {}),
      phase: step.phase,
      outcome,
      ...(step.podName ? { pod: step.podName } : {}),
      ...(durationMs !== undefined && Number.isFinite(durationMs) ? { durationMs } : {}),
      ...(step.usage ? { tokens: step.usage.totalTokens } : {}),
    }, 'step finished');
  }

  private countApproval(step: StepRecord): void {
    const approval = step.approval;
    if (!approval?.requestedAt) return;
    const waitedMs = Date.parse(approval.at) - Date.parse(approval.requestedAt);
    if (Number.isFinite(waitedMs) && waitedMs >= 0)
      this.metrics.approvalWait.observe({ decision: approval.decision }, waitedMs / 1000);
  }
}
