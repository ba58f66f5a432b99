/**
 * Reconciles one AgentRun: gather what is observable → decide() → execute the effects in the
 * durable order of core/execution-plan.ts (finalizer, journal, starts ‖ status, the rest).
 */
import { agentRun, type AgentRunStatus } from '../api/agent-run.ts';
import { agentToolSpec, type AgentToolSpec } from '../api/agent-tool.ts';
import { modelEndpointSpec } from '../api/model-endpoint.ts';
import type { JournalEntry, JournalRead, RecordedEntry } from '../api/journal-entry.ts';
import { FINALIZER, Reason } from '../api/conditions.ts';
import { ConflictError, TerminalError, parseKey, type Logger, type ReconcileResult } from '../controller/index.ts';
import { canonicalJson } from '../core/canonical.ts';
import { decide } from '../core/decide.ts';
import type { Effect } from '../core/effects.ts';
import { planExecution, STATUS_WAIT_MAX_MS } from '../core/execution-plan.ts';
import { isFinished, isStepDone } from '../core/machine.ts';
import { journalName, mcpTaskJournalName, toolsJournalName } from '../core/naming.ts';
import type { JournalProblem, Observed, ToolOutputObservation } from '../core/observed.ts';
import { sha256 } from '../api/journal-digest.ts';
import { describeError, isNotFound, writeRejection, WriteRejectedError } from '../port-errors.ts';
import type { AgentRunObject, JournalStore, RunOwner } from '../ports.ts';
import { CreatorAccess } from './memory/creator-access.ts';
import { CachedJournal } from './memory/journal-cache.ts';
import { ToolOutputReads, podLogReader } from './memory/tool-output-reads.ts';
import { CrashPoint, crashPoint, statusBehindDelay } from './crash-points.ts';
import { journalEntries, tracedStatus } from './tracing-hooks.ts';
import {
  childLog,
  newer,
  rethrowConflict,
  resolvedOrNone,
  stepFields,
  writeStatusEvenIfRefused,
} from './reconciler-helpers.ts';
import { mcpServersOf } from './mcp-observations.ts';
import type { ParsedRun, ReconcilerDeps } from './reconciler-deps.ts';
import { performEffects } from './perform-effects.ts';

/** The reconciler's dependencies (re-exported for the composition root). */
export type { ReconcilerDeps } from './reconciler-deps.ts';

/** What writing the status came to. */
type StatusWrite = { state: 'written'; run: AgentRunObject } | { state: 'unchanged' } | { state: 'refused' };

/** Steps past the last one status names that a first look reads (a status lags by a few decisions at most). */
const READ_AHEAD_MAX = 64;

/** Where a decision's status ended up: stored, waiting in memory for the next one's, or refused. */
type Executed = 'stored' | 'waiting' | 'behind' | 'refused';

/** Reconciles AgentRuns: gather → decide() → execute, one run key at a time. */
export class AgentRunReconciler {
  private readonly d: ReconcilerDeps;
  /** Access verdicts, for the requirements they were made for (a run's references never change). */
  private readonly access: CreatorAccess;
  private readonly outputs: ToolOutputReads;
  /** The journal port, verified entries remembered in the run memory. */
  private readonly journal: JournalStore;

  constructor(deps: ReconcilerDeps) {
    this.d = deps;
    // The tracer's spans of a run are part of what is forgotten with it.
    deps.memory.onForget((uid) => {
      deps.tracer?.forget(uid);
    });
    this.outputs = new ToolOutputReads(podLogReader(deps.pods), undefined, undefined, deps.memory);
    this.access = new CreatorAccess(deps.access, deps.requireCreatorIdentity !== false, deps.memory);
    this.journal = new CachedJournal(deps.journal, deps.memory);
  }

  /** The controller's reconcile function. */
  readonly reconcile = async (key: string): Promise<ReconcileResult> => {
    const { namespace, name } = parseKey(key);
    const raw = this.freshest(namespace, name);
    if (!raw) {
      // The run is gone (deleted without its finalizer, e.g. after it finished): let its pods go too.
      await Promise.all(this.d.podMemory.heldOrphans(key).map((pod) => this.d.pods.delete(namespace, pod.name)));
      this.forget(key);
      return;
    }
    this.d.memory.of(raw.metadata.uid, key);
    const log = childLog(this.d.log, { run: key });

    const parsed = agentRun.safeParse(raw);
    if (!parsed.success) {
      // Admission validates specs, so this is a run from an incompatible version of the API.
      const problem = parsed.error.message.slice(0, 500);
      throw new TerminalError(`AgentRun ${key} does not match the v1alpha1 schema: ${problem}`);
    }
    const stored = parsed.data as ParsedRun;
    const run = this.withUnstoredStatus(stored);
    const started = performance.now();
    const observed = await this.gather(run, raw);
    const gathered = performance.now();
    const decision = decide(observed);
    const decided = performance.now();
    const status = tracedStatus(this.d.tracer, this.d.events, run, decision.status, log);
    const journal = journalEntries(observed.journal, decision.effects);
    const executed = await this.execute(raw, run, stored.status, status, decision.effects, journal, log);
    log.debug({
      gatherMs: Math.round(gathered - started),
      decideMs: Math.round(decided - gathered),
      executeMs: Math.round(performance.now() - decided),
      effects: decision.effects.length,
    }, 'reconciled');
    const podsSettled = !decision.effects.some((e) => e.type === 'deletePod' || e.type === 'releasePod');
    if (isFinished(decision.status) && podsSettled) this.d.podMemory.forgetRun(run.metadata.uid);
    // A waiting status is written by the next decision: the call's end, or this requeue at the latest.
    const writeBy = this.d.memory.peek(run.metadata.uid)?.unstored?.writeBy;
    const requeueAfterMs = executed === 'waiting' && writeBy !== undefined
      ? Math.min(decision.requeueAfterMs ?? STATUS_WAIT_MAX_MS, Math.max(0, writeBy - this.d.clock.now()))
      : decision.requeueAfterMs;
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  };

  /**
   * The run as the last decision left it: with the newest status decided but maybe not stored yet,
   * while the stored status is one it may sit on. When someone else wrote status meanwhile, it is
   * dropped and the journal read again (what it said is journaled).
   */
  private withUnstoredStatus(stored: ParsedRun): ParsedRun {
    const memory = this.d.memory.peek(stored.metadata.uid);
    const unstored = memory?.unstored;
    if (!memory || !unstored) return stored;
    const storedNow = canonicalJson(stored.status ?? {});
    if (unstored.over.has(storedNow)) return { ...stored, status: unstored.status };
    if (storedNow === canonicalJson(unstored.status)) return stored; // it landed
    memory.unstored = undefined;
    memory.recovered = false;
    return stored;
  }

  /**
   * The stored statuses a status decided now may sit on: the one this reconcile read, the one being
   * written, and the one last written (it may have landed since this reconcile read the run).
   */
  private possiblyStored(uid: string, storedStatus: AgentRunStatus | undefined): Set<string> {
    const memory = this.d.memory.of(uid);
    const over = new Set([canonicalJson(storedStatus ?? {})]);
    if (memory.unstored?.writing) over.add(canonicalJson(memory.unstored.status));
    if (memory.written?.status) over.add(canonicalJson(memory.written.status));
    return over;
  }

  /** The cached run, unless this process wrote a newer version of it. */
  private freshest(namespace: string, name: string): AgentRunObject | undefined {
    const cached = this.d.caches.run(namespace, name);
    if (!cached) return undefined;
    const memory = this.d.memory.peek(cached.metadata.uid);
    const mine = memory?.written;
    if (mine && newer(mine.metadata.resourceVersion, cached.metadata.resourceVersion)) return mine;
    if (memory) memory.written = undefined;
    return cached;
  }

  /** Forgets a run that is gone: everything this process remembers of it, in one place. */
  private forget(key: string): void {
    const uid = this.d.memory.uidOf(key);
    if (uid) this.d.memory.forget(uid);
  }

  // ---- gather ----

  private async gather(run: ParsedRun, raw: AgentRunObject): Promise<Observed> {
    const { namespace, name, uid } = run.metadata;
    const steps = run.status?.steps ?? [];
    const agentTools = new Map<string, AgentToolSpec | undefined>();
    for (const tool of run.spec.tools ?? []) {
      if (!tool.toolRef) continue;
      const found = this.d.caches.agentTool(namespace, tool.toolRef.name);
      const spec = found ? agentToolSpec.safeParse(found.spec) : undefined;
      agentTools.set(tool.toolRef.name, spec?.success ? spec.data : undefined);
    }
    const finished = isFinished(run.status ?? {}) || Boolean(run.metadata.deletionTimestamp);
    const owner: RunOwner = run.metadata;
    const problems: JournalProblem[] = [];
    /** Reads and verifies one entry; `digest` is what status recorded, absent for an entry not yet recorded. */
    const verified = async (name: string, stepId: number, digest?: string): Promise<RecordedEntry | undefined> => {
      const expected = { runUid: uid, name, stepId, ...(digest !== undefined ? { digest } : {}) };
      const read = await this.journal.read(owner, expected);
      if (read.state === 'found') return read.recorded;
      if (read.state === 'untrusted') problems.push({ reason: read.reason, problem: read.problem });
      else if (digest !== undefined) {
        const problem = `AgentRunJournal ${name}, which status records for step ${stepId}, does not exist`;
        problems.push({ reason: Reason.JournalCorrupted, problem });
      }
      return undefined;
    };

    let toolSnapshot: Observed['toolSnapshot'];
    const journal = new Map<number, RecordedEntry>();
    const mcpTasks = new Map<number, RecordedEntry>();
    if (!finished) {
      const firstLook = !this.d.memory.of(uid).recovered;
      const toolsRef = run.status?.toolsJournal;
      // Until status records the tools entry, a previous process may have written it and died.
      const tools = await verified(toolsRef?.name ?? toolsJournalName(name), 0, toolsRef?.digest);
      if (tools?.entry.kind === 'Tools') toolSnapshot = { tools: tools.entry.tools, digest: tools.digest };
      await Promise.all(steps.map(async (step) => {
        if (step.journal) {
          const recorded = await verified(step.journal.name, step.id, step.journal.digest);
          if (recorded) journal.set(step.id, recorded);
        } else if (!isStepDone(step) && firstLook) {
          // A previous process (or another leader) may have journaled this step before recording it.
          const recorded = await verified(journalName(name, step.id), step.id, undefined);
          if (recorded) journal.set(step.id, recorded);
        }
        // The MCP task handle of a Running step's attempt: status records it, or (before it did) its name.
        if (step.mcpServer === undefined || isStepDone(step) || journal.has(step.id)) return;
        const task: { name: string; digest?: string } | undefined = step.mcpTask
          ?? (firstLook ? { name: mcpTaskJournalName(name, step.id, step.attempt) } : undefined);
        const recorded = task ? await verified(task.name, step.id, task.digest) : undefined;
        if (recorded?.entry.kind === 'MCPTask') mcpTasks.set(step.id, recorded);
      }));
      if (firstLook) await this.readAhead(owner, steps, journal, mcpTasks, verified);
      this.d.memory.of(uid).recovered = true;
    }

    const endpoint = this.d.caches.modelEndpoint(namespace, run.spec.model.endpointRef.name);
    const endpointSpec = endpoint ? modelEndpointSpec.safeParse(endpoint.spec) : undefined;
    const mcpServers = mcpServersOf(this.d.caches, namespace, run.spec);
    const tools = toolSnapshot?.tools ?? resolvedOrNone(run.spec, agentTools, mcpServers);
    const access = finished ? undefined : await this.access.of(run, tools);

    const pods = this.d.podMemory.ofRun(uid);
    const toolOutputs = new Map<number, ToolOutputObservation>();
    const key = `${namespace}/${name}`;
    for (const step of steps) {
      if (step.kind !== 'Tool' || step.phase !== 'Running' || !step.podName || journal.has(step.id)) continue;
      const pod = pods.get(step.podName);
      if (!pod?.exists || !pod.terminated) continue;
      const limit = run.spec.limits.maxToolOutputBytes;
      const output = this.outputs.observe(uid, namespace, step.podName, limit, () => {
        this.d.enqueue(key);
      });
      if (output) toolOutputs.set(step.id, output);
    }
    if (toolOutputs.size > 0) crashPoint(CrashPoint.beforeToolJournal);

    const writeRejected = this.d.memory.peek(uid)?.rejectedWrite;
    const rejectedPods = this.d.memory.peek(uid)?.rejectedPods;
    return {
      run: { ...run, metadata: { ...run.metadata, resourceVersion: raw.metadata.resourceVersion } },
      ...(writeRejected ? { writeRejected } : {}),
      ...(rejectedPods && rejectedPods.size > 0 ? { rejectedPods: new Map(rejectedPods) } : {}),
      now: this.d.clock.now(),
      hash: sha256,
      agentTools,
      ...(toolSnapshot ? { toolSnapshot } : {}),
      ...(endpointSpec?.success ? { modelEndpoint: endpointSpec.data } : {}),
      ...(access ? { access } : {}),
      ...(problems.length > 0 ? { journalProblems: problems } : {}),
      journal,
      pods,
      modelCalls: this.d.modelCalls.observe(uid),
      mcpCalls: this.d.mcpCalls.observe(uid),
      ...(mcpTasks.size > 0 ? { mcpTasks } : {}),
      mcpServers,
      toolOutputs,
      statusByteBudget: this.d.statusByteBudget,
      requireApproverIdentity: this.d.requireApproverIdentity,
      stepEvents: this.d.stepEvents ?? false,
    };
  }

  /**
   * Entries journaled for steps no stored status names yet (statuses wait or are written behind
   * their decisions, core/execution-plan.ts, and the process stopped): the steps after the last
   * one status names, one by one until one has none, and the calls a journaled answer names (they
   * end in any order). The next decision reads them back rather than call or ask again.
   */
  private async readAhead(
    owner: RunOwner,
    steps: readonly { id: number; journal?: unknown }[],
    journal: Map<number, RecordedEntry>,
    mcpTasks: Map<number, RecordedEntry>,
    verified: (name: string, stepId: number) => Promise<RecordedEntry | undefined>,
  ): Promise<void> {
    const named = new Set(steps.map((s) => s.id));
    // A decision status never recorded starts from an entry status does not record either: with
    // none found (the common case, a restart with status up to date) there is nothing to read ahead.
    const behind = steps.some((s) => s.journal === undefined && journal.has(s.id));
    const last = Math.max(0, ...named);
    for (let id = last + 1; behind && id <= last + READ_AHEAD_MAX; id++) {
      const recorded = await verified(journalName(owner.name, id), id);
      if (!recorded) break;
      journal.set(id, recorded);
    }
    const unnamed = [...journal.values()]
      .flatMap((r) => (r.entry.kind === 'ModelResponse' ? r.entry.mcpCallsStarted ?? [] : []))
      .filter((id) => !named.has(id) && !journal.has(id));
    await Promise.all(unnamed.map(async (id) => {
      const result = await verified(journalName(owner.name, id), id);
      if (result) {
        journal.set(id, result);
        return;
      }
      // An answer's calls start as attempt 1.
      const task = await verified(mcpTaskJournalName(owner.name, id, 1), id);
      if (task?.entry.kind === 'MCPTask') mcpTasks.set(id, task);
    }));
  }

  /** Carries out a decision in the durable order of core/execution-plan.ts; `journal` is for its spans. */
  private async execute(
    raw: AgentRunObject,
    run: ParsedRun,
    storedStatus: AgentRunStatus | undefined,
    status: AgentRunStatus,
    effects: readonly Effect[],
    journal: ReadonlyMap<number, JournalEntry>,
    log: Logger,
  ): Promise<Executed> {
    const owner: RunOwner = run.metadata;
    const plan = planExecution(effects);
    let current = raw;
    if (plan.addFinalizer) {
      let resourceVersion: string;
      try {
        resourceVersion = await this.d.runs.addFinalizer(current, FINALIZER);
      } catch (error) {
        rethrowConflict(error);
      }
      const finalizers = [...(current.metadata.finalizers ?? []), FINALIZER];
      current = { ...current, metadata: { ...current.metadata, resourceVersion, finalizers } };
    }

    const key = `${owner.namespace}/${owner.name}`;
    let stored: JournalRead[];
    try {
      stored = await Promise.all(plan.journal.map(async (e) => {
        return await this.journal.write(owner, e.name, e.entry);
      }));
    } catch (error) {
      if (!(error instanceof WriteRejectedError)) throw error;
      // Never retried: the next decision ends the run with what the apiserver said.
      this.rejectWrite(owner.uid, key, 'a journal entry', error, log);
      return 'refused';
    }
    const displaced = plan.journal.find((e, i) => {
      const s = stored[i];
      return s?.state !== 'found' || s.recorded.digest !== e.digest;
    });
    if (displaced) {
      // Another entry holds the name (written by a leader that lost its lease, or by someone else):
      // nothing of this decision may happen. Read the journal again: the operator's own stored
      // entry wins, anything else fails the run as tampered.
      this.d.memory.of(owner.uid).recovered = false;
      throw new ConflictError(`journal ${displaced.name} already holds another entry; reading it again`, {
        retryAfterMs: 0,
      });
    }
    if (plan.journal.some((e) => e.entry.kind === 'ModelResponse')) crashPoint(CrashPoint.afterModelJournal);
    if (plan.journal.some((e) => e.entry.kind === 'ToolResult')) crashPoint(CrashPoint.afterToolJournal);

    // Pods and model calls start before status: the journal entry is the durable record. (Not
    // beside the status write: on a loaded apiserver the two requests slow each other.)
    const startFailures = await performEffects(this.d, plan.start, run, status, () => current, log);
    if (plan.start.length > 0) crashPoint(CrashPoint.afterStartBeforeStatus);
    if (plan.start.some((e) => e.type === 'startMCPCall')) crashPoint(CrashPoint.afterAnswerCallsStarted);
    const memory = this.d.memory.of(owner.uid);
    // Left behind only with nothing to settle after it (the plan says so) and nothing unusual.
    const mayLeave = startFailures.length === 0 && !memory.rejectedWrite && !run.metadata.deletionTimestamp;
    if (mayLeave && plan.statusMayWait && !(memory.unstored && !memory.unstored.writing)) {
      const writeBy = this.d.clock.now() + STATUS_WAIT_MAX_MS;
      memory.unstored = { status, over: this.possiblyStored(owner.uid, storedStatus), writing: false, writeBy };
      return 'waiting';
    }
    // Nothing new (a wake-up by the informer, say): the status decided last goes on waiting until
    // its time is up, or is being written behind its decision already.
    const unstored = memory.unstored;
    if (unstored && unstored.status === run.status && effects.length === 0 &&
      canonicalJson(status) === canonicalJson(run.status)) {
      if (unstored.writing) return 'behind';
      if (this.d.clock.now() < unstored.writeBy) return 'waiting';
    }
    // One status write at a time, in decision order: one written behind its decision lands first.
    if (memory.statusWrite) {
      await memory.statusWrite;
      const landed = memory.written;
      if (landed && newer(landed.metadata.resourceVersion, current.metadata.resourceVersion)) {
        current = landed;
        storedStatus = landed.status;
      }
    }
    if (mayLeave && plan.statusInBackground && !memory.statusWriteFailed) {
      const over = this.possiblyStored(owner.uid, storedStatus);
      memory.unstored = { status, over, writing: true, writeBy: this.d.clock.now() };
      memory.statusWrite = this.writeBehind(current, storedStatus, run, status, journal, log);
      return 'behind';
    }
    const written = await this.writeStatusIfChanged(current, storedStatus, run, status, log);
    // Written, unchanged or refused, an unstored status is now stored or superseded.
    memory.unstored = undefined;
    if (written.state === 'refused') return 'refused'; // the next decision ends the run with the apiserver's reason
    memory.statusWriteFailed = false;
    // Spans come from what is stored: a refused, waiting or unwritten status ends nothing.
    this.d.tracer?.observe(run, storedStatus, status, journal);
    if (written.state === 'written') current = written.run;
    if (plan.start.some((e) => e.type === 'createPod')) crashPoint(CrashPoint.afterToolIntent);

    // Events are best effort and tell about what is already in status: they do not hold a worker.
    for (const effect of plan.settle) {
      if (effect.type !== 'event') continue;
      this.d.onEffect?.(effect);
      this.d.events.emit(owner, effect.eventType, effect.reason, effect.message)
        .catch((error: unknown) => {
          log.warn({ effect: 'event', reason: effect.reason, err: describeError(error) }, 'effect failed');
        });
    }
    const settle = plan.settle.filter((e) => e.type !== 'event');
    const settleFailures = await performEffects(this.d, settle, run, status, () => current, log);
    this.forgetRecorded(owner.uid, status);

    const failures = [...startFailures, ...settleFailures];
    for (const f of failures) {
      log.warn({ effect: f.effect.type, ...stepFields(f.effect), err: describeError(f.error) }, 'effect failed');
    }
    if (failures.length > 0) {
      throw new Error(`${failures.length} effects failed, first: ${describeError(failures[0]?.error)}`);
    }
    return 'stored';
  }

  /**
   * Writes a status behind its decision (the run's worker goes on to the next one). When it lands
   * and nothing was decided since, the run has no unstored status; when it fails, the newest
   * decided status is written by the next reconcile, in the reconcile and with its retries.
   */
  private async writeBehind(
    current: AgentRunObject,
    storedStatus: AgentRunStatus | undefined,
    run: ParsedRun,
    status: AgentRunStatus,
    journal: ReadonlyMap<number, JournalEntry>,
    log: Logger,
  ): Promise<void> {
    const owner: RunOwner = run.metadata;
    const memory = this.d.memory.of(owner.uid);
    let landed = false;
    try {
      await statusBehindDelay();
      // A refused write is recorded by writeStatusIfChanged: the next decision ends the run.
      landed = (await this.writeStatusIfChanged(current, storedStatus, run, status, log)).state !== 'refused';
      if (landed) {
        this.d.tracer?.observe(run, storedStatus, status, journal);
        this.forgetRecorded(owner.uid, status);
      }
    } catch (error) {
      log.warn({ err: describeError(error) }, 'status write behind its decision failed; writing it again');
      memory.statusWriteFailed = true;
      this.d.enqueue(`${owner.namespace}/${owner.name}`);
    } finally {
      memory.statusWrite = undefined;
      // Landed with nothing decided since: nothing is unstored. Not landed: the next reconcile writes it.
      const unstored = memory.unstored;
      if (landed && unstored?.status === status) memory.unstored = undefined;
      else if (unstored?.writing) memory.unstored = { ...unstored, writing: false };
    }
  }

  /** Forgets model calls, MCP calls and tool outputs whose outcome the stored status now records. */
  private forgetRecorded(uid: string, status: AgentRunStatus): void {
    for (const step of status.steps ?? []) {
      if (!isStepDone(step)) continue;
      if (step.kind === 'Model') this.d.modelCalls.forget(uid, step.id);
      else if (step.mcpServer) this.d.mcpCalls.forget(uid, step.id);
      else if (step.podName) this.outputs.forget(uid, step.podName);
    }
  }

  /**
   * Writes the status when it differs from the stored one (not for a run being deleted). A refused
   * write is recorded for the next decision; a run that is gone counts as unchanged; conflicts throw.
   */
  private async writeStatusIfChanged(
    current: AgentRunObject,
    storedStatus: AgentRunStatus | undefined,
    run: ParsedRun,
    status: AgentRunStatus,
    log: Logger,
  ): Promise<StatusWrite> {
    // Compared canonically: the apiserver returns keys in its own order, and zod in the schema's.
    const same = canonicalJson(status) === canonicalJson(storedStatus ?? {});
    if (same || run.metadata.deletionTimestamp) return { state: 'unchanged' };
    const owner: RunOwner = run.metadata;
    const key = `${owner.namespace}/${owner.name}`;
    if (isFinished(status)) crashPoint(CrashPoint.beforeFinalStatus);
    let resourceVersion: string;
    const refusedBefore = this.d.memory.peek(owner.uid)?.rejectedWrite !== undefined;
    try {
      resourceVersion = await writeStatusEvenIfRefused(this.d.runs, current, status, refusedBefore, log);
    } catch (error) {
      if (isNotFound(error)) return { state: 'unchanged' };
      const rejected = writeRejection(error);
      if (rejected && !refusedBefore) {
        this.rejectWrite(owner.uid, key, "the run's status", rejected, log);
        return { state: 'refused' };
      }
      rethrowConflict(error);
    }
    const written = { ...current, metadata: { ...current.metadata, resourceVersion }, status };
    this.d.memory.of(owner.uid, key).written = written;
    this.d.onStatusWritten?.(JSON.stringify(status).length);
    log.debug({ phase: status.phase, steps: status.steps?.length ?? 0 }, 'status written');
    return { state: 'written', run: written };
  }

  /** Records a refused write; the run is enqueued so that decide() ends it at once. */
  private rejectWrite(uid: string, key: string, what: string, error: WriteRejectedError, log: Logger): void {
    this.d.memory.of(uid).rejectedWrite = { what, message: error.message };
    log.warn({ what, status: error.status, err: error.message }, 'write refused by the apiserver; not retried');
    this.d.enqueue(key);
  }
}
