/**
 * Replay tests of recorded histories, Temporal-style.
 *
 * A history is the sequence of snapshots decide() saw during one simulated run — the status it
 * was given plus everything observed (journal, pods, model calls, tool outputs) — each with the
 * decision it made. Replaying feeds every snapshot to today's decide() and fails when it chooses
 * differently: other effects, another model request, another pod, another next status.
 *
 * The histories in ./histories/*.json were made by the simulated world below, which runs decide()
 * in a loop and applies its effects in the reconciler's plan (core/execution-plan.ts: finalizer →
 * journal → pods and calls with the status → the rest), with pods that run and finish, a scripted model API, people who suspend, cancel or
 * delete, and process crashes that lose the in-memory model calls and pod memory. They are
 * recorded ONCE and committed:
 *
 *     AGENTRUN_RECORD_REPLAY=1 npx vitest run test/replay
 *
 * Re-record only when decide() is meant to behave differently, and say why in the commit.
 *
 * The simulated world writes every decision's status before the next decision, the conservative
 * case of the plan: a status that waits or is written behind its decision (statusMayWait,
 * statusInBackground) and is then lost is what its 'afterStart' crash models for one decision;
 * a status several decisions behind is covered by test/unit/mcp.test.ts and the MCP integration tests.
 *
 * Besides the replay, the whole simulated run is checked for invariants: no step id is reused, a
 * (step, attempt) has at most one pod name and a pod name is never run twice, a journaled model
 * call is never issued again, journal entries never change, and status only points at entries
 * that are already journaled.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentRunSpec, type AgentRunSpec, type AgentRunStatus, type StepRecord } from '../../src/api/agent-run.ts';
import { FINALIZER } from '../../src/api/conditions.ts';
import { decide } from '../../src/core/decide.ts';
import type { Decision, Effect } from '../../src/core/effects.ts';
import { planExecution } from '../../src/core/execution-plan.ts';
import type { ModelResponse } from '../../src/api/journal-entry.ts';
import { isFinished, isStepDone, isStepMove } from '../../src/core/machine.ts';
import { journalName, toolPodName, toolsJournalName } from '../../src/core/naming.ts';
import type { ModelCallObservation, Observed, PodObservation, ToolOutputObservation } from '../../src/core/observed.ts';
import type { RecordedEntry } from '../../src/api/journal-entry.ts';
import type { ModelFailure } from '../../src/core/policies.ts';
import { fakeHash, failure, iso, NAMESPACE, response, RUN_UID, spec, T0, text, toolUse, ANY_MODEL_ENDPOINT } from '../harness/builders.ts';

const HISTORIES = join(import.meta.dirname, 'histories');
const RECORD = process.env.AGENTRUN_RECORD_REPLAY === '1';
const MAX_DECISIONS = 400;
/** A status write, pod or call change echoes back through the informers this fast. */
const ECHO_MS = 100;
const RESTART_MS = 1000;
const POD_DELETE_GRACE_MS = 1000;
const STATUS_BYTE_BUDGET = 256 * 1024;

// ---- the recorded format ----

/** What the process dies after, while executing a decision. */
type CrashPoint = 'lost' | 'afterJournal' | 'afterStart' | 'afterStatus';

type EffectSummary =
  | { type: 'addFinalizer' | 'removeFinalizer' | 'deleteRun' }
  | { type: 'writeJournal'; name: string; stepId?: number; kind: string; digest: string }
  | { type: 'createPod'; stepId: number; name: string }
  | { type: 'deletePod' | 'releasePod'; name: string }
  | { type: 'deleteEndedPods'; labelSelector: string }
  | { type: 'startModelCall'; stepId: number; attempt: number; request: string }
  | { type: 'cancelModelCall'; stepId: number }
  | { type: 'startMCPCall' | 'pollMCPTask'; stepId: number; attempt: number }
  | { type: 'event'; eventType: string; reason: string };

interface DecisionSummary {
  effects: EffectSummary[];
  requeueAfterMs?: number;
  /** `phase reason`, and one `id:kind:phase:aN` per step: readable in a diff. */
  phase: string;
  steps: string[];
}

interface HistoryRecord {
  now: number;
  metadata: { finalizers: string[]; deletionTimestamp?: string };
  spec: { suspend: boolean; cancel: boolean };
  status?: AgentRunStatus;
  toolSnapshot: boolean;
  /** [stepId, journal ConfigMap name] of what the gatherer read; entries are in History.journal. */
  journal: [number, string][];
  pods: PodObservation[];
  modelCalls: [number, ModelCallObservation][];
  toolOutputs: [number, ToolOutputObservation][];
  decision: DecisionSummary;
  crash?: CrashPoint;
}

interface History {
  name: string;
  description: string;
  recordWith: string;
  run: { name: string; namespace: string; uid: string };
  spec: AgentRunSpec;
  statusByteBudget: number;
  /** The journal store at the end of the run, by ConfigMap name (entries are immutable). */
  journal: Record<string, RecordedEntry>;
  records: HistoryRecord[];
}

function summarizeEffect(e: Effect): EffectSummary {
  switch (e.type) {
    case 'addFinalizer': case 'removeFinalizer': case 'deleteRun': return { type: e.type };
    case 'writeJournal': return { type: e.type, name: e.name, ...(e.stepId !== undefined ? { stepId: e.stepId } : {}), kind: e.entry.kind, digest: e.digest };
    case 'createPod': return { type: e.type, stepId: e.stepId, name: e.pod.metadata?.name ?? '' };
    case 'deletePod': case 'releasePod': return { type: e.type, name: e.name };
    case 'deleteEndedPods': return { type: e.type, labelSelector: e.labelSelector };
    case 'startModelCall': return { type: e.type, stepId: e.stepId, attempt: e.attempt, request: fakeHash(JSON.stringify(e.request)).slice(0, 16) };
    case 'cancelModelCall': return { type: e.type, stepId: e.stepId };
    case 'startMCPCall': case 'pollMCPTask': return { type: e.type, stepId: e.stepId, attempt: e.attempt };
    case 'event': return { type: e.type, eventType: e.eventType, reason: e.reason };
  }
}

function summarize(d: Decision): DecisionSummary {
  const condition = d.status.conditions?.find((c) => c.type === 'Succeeded');
  return {
    effects: d.effects.map(summarizeEffect),
    ...(d.requeueAfterMs !== undefined ? { requeueAfterMs: d.requeueAfterMs } : {}),
    phase: `${d.status.phase ?? '-'} ${condition?.reason ?? '-'}`,
    steps: (d.status.steps ?? []).map((s) => `${s.id}:${s.kind}${s.tool ? `/${s.tool}` : ''}:${s.phase}:a${s.attempt}${s.outcome && s.outcome !== 'Completed' ? `:${s.outcome}` : ''}`),
  };
}

/** The Observed a record describes. */
function observedOf(h: History, r: HistoryRecord): Observed {
  const journal = new Map<number, RecordedEntry>();
  for (const [stepId, name] of r.journal) {
    const recorded = h.journal[name];
    if (!recorded) throw new Error(`history ${h.name}: journal ${name} is not in the history`);
    journal.set(stepId, recorded);
  }
  const tools = h.journal[toolsJournalName(h.run.name)];
  return {
    run: {
      apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun',
      metadata: { ...h.run, generation: 1, ...r.metadata },
      spec: { ...h.spec, ...r.spec },
      ...(r.status ? { status: structuredClone(r.status) } : {}),
    },
    now: r.now,
    hash: fakeHash,
    agentTools: new Map(),
    ...(r.toolSnapshot && tools?.entry.kind === 'Tools' ? { toolSnapshot: { tools: tools.entry.tools, digest: tools.digest } } : {}),
    journal,
    pods: new Map(r.pods.map((p) => [p.name, p])),
    modelCalls: new Map(r.modelCalls),
    toolOutputs: new Map(r.toolOutputs),
    statusByteBudget: h.statusByteBudget,
    modelEndpoint: ANY_MODEL_ENDPOINT,
  };
}

// ---- the simulated world ----

interface ModelScriptItem { readonly latencyMs?: number; readonly respond?: ModelResponse; readonly fail?: ModelFailure; readonly hang?: true }

interface PodScript {
  /** Pending for this long after creation (default 500 ms). */
  readonly startMs?: number;
  /** The container never starts: the pod fails with this reason. */
  readonly neverStarts?: string;
  /** Runs this long (default 1500 ms), then exits. */
  readonly runMs?: number;
  readonly exitCode?: number;
  readonly terminationReason?: string;
  readonly output?: string;
  /** The pod disappears (node lost) this long after creation. */
  readonly vanishAtMs?: number;
}

type Action = 'suspend' | 'unsuspend' | 'cancel' | 'delete';

interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly runName: string;
  readonly spec: Record<string, unknown>;
  /** Consumed one per model call this world receives (a re-sent call of the same attempt by the same process is not a new call). */
  readonly model: readonly ModelScriptItem[];
  /** By pod name; a pod without a script exits 0 after 2 s. */
  readonly pods: Readonly<Record<string, PodScript>>;
  /** Each fires at most once: the process dies at the returned point while executing this decision. */
  readonly crashes?: readonly ((d: Decision, w: World) => CrashPoint | undefined)[];
  /** Each fires at most once: what a person does, this long after this decision. */
  readonly people?: readonly ((d: Decision, w: World) => { inMs: number; action: Action } | undefined)[];
}

interface SimPod { readonly name: string; readonly stepId: number; readonly attempt: number; readonly createdAt: number; readonly script: PodScript; deletingSince?: number; removedAt?: number; released?: boolean }
interface SimCall { readonly attempt: number; readonly issuedAt: number; readonly item: ModelScriptItem }
interface Proc { readonly startedAt: number; readonly calls: Map<number, SimCall>; recovered: boolean }

interface Run {
  metadata: { name: string; namespace: string; uid: string; finalizers: string[]; deletionTimestamp?: string };
  spec: AgentRunSpec;
  status?: AgentRunStatus;
}

class World {
  now = T0;
  run: Run | undefined;
  readonly journal = new Map<string, RecordedEntry>();
  readonly pods = new Map<string, SimPod>();
  proc: Proc = { startedAt: T0, calls: new Map(), recovered: false };
  readonly scenario: Scenario;
  readonly records: HistoryRecord[] = [];
  readonly violations: string[] = [];
  /** Every call the model API received (what was paid for). */
  readonly issued: { stepId: number; attempt: number; at: number }[] = [];
  private modelIndex = 0;
  private readonly fired = new Set<string>();
  private readonly scheduled: { at: number; action: Action }[] = [];
  private restartAt: number | undefined;

  constructor(scenario: Scenario) {
    this.scenario = scenario;
    this.run = { metadata: { name: scenario.runName, namespace: NAMESPACE, uid: RUN_UID, finalizers: [] }, spec: spec(scenario.spec) };
  }

  simulate(): History {
    let decisions = 0;
    while (this.run) {
      if (++decisions > MAX_DECISIONS) throw new Error(`${this.scenario.name}: no end after ${MAX_DECISIONS} decisions`);
      const run = this.applyDue();
      if (!run) break;
      const { observed, record } = this.gather(run);
      const d = decide(observed);
      const crash = this.firstFiring('crash', this.scenario.crashes ?? [], d);
      const changed = this.execute(d, crash);
      this.records.push({ ...record, decision: summarize(d), ...(crash ? { crash } : {}) });
      const person = this.firstFiring('person', this.scenario.people ?? [], d);
      if (person) this.scheduled.push({ at: this.now + person.inMs, action: person.action });
      const next = this.nextTime(d, changed);
      if (next === undefined) break;
      this.now = Math.max(this.now, next);
    }
    return this.history();
  }

  history(): History {
    return {
      name: this.scenario.name,
      description: this.scenario.description,
      recordWith: 'AGENTRUN_RECORD_REPLAY=1 npx vitest run test/replay',
      run: { name: this.scenario.runName, namespace: NAMESPACE, uid: RUN_UID },
      spec: spec(this.scenario.spec),
      statusByteBudget: STATUS_BYTE_BUDGET,
      journal: Object.fromEntries([...this.journal].sort(([a], [b]) => a.localeCompare(b))),
      records: this.records,
    };
  }

  callInFlight(stepId: number): boolean {
    const c = this.proc.calls.get(stepId);
    return c !== undefined && this.callObservation(c).state === 'in-flight';
  }

  private firstFiring<T>(kind: string, rules: readonly ((d: Decision, w: World) => T | undefined)[], d: Decision): T | undefined {
    for (const [i, rule] of rules.entries()) {
      const id = `${kind}${i}`;
      if (this.fired.has(id)) continue;
      const out = rule(d, this);
      if (out !== undefined) { this.fired.add(id); return out; }
    }
    return undefined;
  }

  // ---- people ----

  /** Applies what people do that is due; returns the run, unless it is gone. */
  private applyDue(): Run | undefined {
    for (const s of this.scheduled.filter((x) => x.at <= this.now)) {
      this.scheduled.splice(this.scheduled.indexOf(s), 1);
      const run = this.run;
      if (!run) return undefined;
      switch (s.action) {
        case 'suspend': run.spec = { ...run.spec, suspend: true }; break;
        case 'unsuspend': run.spec = { ...run.spec, suspend: false }; break;
        case 'cancel': run.spec = { ...run.spec, cancel: true }; break;
        case 'delete': this.deleteRun(); break;
      }
    }
    return this.run;
  }

  private deleteRun(): void {
    const run = this.run;
    if (!run) return;
    if (run.metadata.finalizers.length === 0) { this.gone(); return; }
    run.metadata.deletionTimestamp ??= iso(this.now);
  }

  /** The run is gone; the garbage collector takes its pods. */
  private gone(): void {
    this.run = undefined;
    for (const p of this.pods.values()) p.removedAt ??= this.now;
  }

  // ---- gather, as the reconciler does ----

  private gather(run: Run): { observed: Observed; record: Omit<HistoryRecord, 'decision'> } {
    const { name } = run.metadata;
    const status = run.status ?? {};
    const steps = status.steps ?? [];
    const finished = isFinished(status) || run.metadata.deletionTimestamp !== undefined;
    const toolsEntry = finished ? undefined : this.journal.get(toolsJournalName(name))?.entry;
    const journal: [number, string][] = [];
    if (!finished) {
      const firstLook = !this.proc.recovered;
      for (const step of steps) {
        if (step.journal) {
          const recorded = this.journal.get(step.journal.name);
          if (recorded?.digest !== step.journal.digest) this.violation(`step ${step.id}: status points at ${step.journal.name} ${step.journal.digest}, the journal has ${recorded?.digest ?? 'nothing'}`);
          journal.push([step.id, step.journal.name]);
        } else if (!isStepDone(step) && firstLook && this.journal.has(journalName(name, step.id))) {
          journal.push([step.id, journalName(name, step.id)]);
        }
      }
      this.proc.recovered = true;
    }
    const pods = this.podMemory();
    const toolOutputs: [number, ToolOutputObservation][] = [];
    for (const step of steps) {
      if (step.kind !== 'Tool' || step.phase !== 'Running' || !step.podName || journal.some(([id]) => id === step.id)) continue;
      const p = pods.find((x) => x.name === step.podName);
      const sim = this.pods.get(step.podName);
      if (!p?.exists || !p.terminated || !sim) continue;
      toolOutputs.push([step.id, { ok: true, text: sim.script.output ?? `ok from ${sim.name}`, truncated: false }]);
    }
    const modelCalls: [number, ModelCallObservation][] = [...this.proc.calls].map(([id, c]) => [id, this.callObservation(c)]);
    const record: Omit<HistoryRecord, 'decision'> = {
      now: this.now,
      metadata: { finalizers: [...run.metadata.finalizers], ...(run.metadata.deletionTimestamp ? { deletionTimestamp: run.metadata.deletionTimestamp } : {}) },
      spec: { suspend: run.spec.suspend, cancel: run.spec.cancel },
      ...(run.status ? { status: structuredClone(run.status) } : {}),
      toolSnapshot: toolsEntry?.kind === 'Tools',
      journal, pods, modelCalls, toolOutputs,
    };
    return { observed: observedOf(this.history(), { ...record, decision: { effects: [], phase: '', steps: [] } }), record };
  }

  /** What this process knows of the run's pods: those that exist, and those it saw disappear. */
  private podMemory(): PodObservation[] {
    const out: PodObservation[] = [];
    for (const p of this.pods.values()) {
      if (p.removedAt === undefined || p.removedAt > this.now) out.push(this.podObservation(p, this.now));
      else if (p.removedAt >= this.proc.startedAt) out.push({ ...this.podObservation(p, p.removedAt - 1), exists: false });
    }
    return out;
  }

  private podObservation(p: SimPod, t: number): PodObservation {
    const s = p.script;
    const deleting = p.deletingSince !== undefined && t >= p.deletingSince;
    const base = { name: p.name, exists: true, deleting, finalizerHeld: p.released !== true };
    const start = p.createdAt + (s.startMs ?? 500);
    if (t < start) return { ...base, phase: 'Pending', started: false };
    if (s.neverStarts) return { ...base, phase: 'Failed', started: false, reason: s.neverStarts, message: `the container could not start (${s.neverStarts})` };
    const end = start + (s.runMs ?? 1500);
    if (t < end) return { ...base, phase: 'Running', started: true };
    const exitCode = s.exitCode ?? 0;
    return {
      ...base, phase: exitCode === 0 ? 'Succeeded' : 'Failed', started: true,
      terminated: { exitCode, ...(s.terminationReason ? { reason: s.terminationReason } : {}), finishedAt: iso(end) },
    };
  }

  private callObservation(c: SimCall): ModelCallObservation {
    if (c.item.hang || this.now < c.issuedAt + (c.item.latencyMs ?? 2000)) return { state: 'in-flight', attempt: c.attempt };
    if (c.item.respond) return { state: 'succeeded', attempt: c.attempt, response: c.item.respond };
    return { state: 'failed', attempt: c.attempt, failure: c.item.fail ?? { kind: 'connection', message: 'no script' } };
  }

  // ---- execute, in the durability order ----

  /** Returns whether anything changed that the informers would echo back. Runs the reconciler's plan. */
  private execute(d: Decision, crash: CrashPoint | undefined): boolean {
    const run = this.run;
    if (!run) return false;
    if (crash === 'lost') { this.crash(); return true; }
    const plan = planExecution(d.effects);
    let changed = false;
    if (plan.addFinalizer && !run.metadata.finalizers.includes(FINALIZER)) { run.metadata.finalizers.push(FINALIZER); changed = true; }
    for (const e of plan.journal) {
      const existing = this.journal.get(e.name);
      if (existing && existing.digest !== e.digest) this.violation(`journal ${e.name} rewritten: ${existing.digest} → ${e.digest}`);
      if (!existing) this.journal.set(e.name, { entry: e.entry, digest: e.digest });
    }
    if (crash === 'afterJournal') { this.crash(); return true; }

    // Pods and model calls start with the status write: a crash may land between the two.
    for (const e of plan.start) changed = this.apply(e, run) || changed;
    if (crash === 'afterStart') { this.crash(); return true; }
    if (!run.metadata.deletionTimestamp && JSON.stringify(d.status) !== JSON.stringify(run.status ?? {})) {
      for (const step of d.status.steps ?? []) {
        if (!step.journal) continue;
        if (this.journal.get(step.journal.name)?.digest !== step.journal.digest) this.violation(`status records step ${step.id} before its journal entry exists`);
      }
      if (isFinished(run.status ?? {}) && !isFinished(d.status)) this.violation('a finished run became unfinished');
      run.status = structuredClone(d.status);
      changed = true;
    }
    if (crash === 'afterStatus') { this.crash(); return true; }

    for (const e of plan.settle) changed = this.apply(e, run) || changed;
    for (const step of d.status.steps ?? []) if (step.kind === 'Model' && isStepDone(step)) this.proc.calls.delete(step.id);
    return changed;
  }

  /** Applies one side effect to the world; returns whether the informers would echo a change. */
  private apply(e: Effect, run: NonNullable<World['run']>): boolean {
    switch (e.type) {
      case 'createPod': {
        const name = e.pod.metadata?.name ?? '';
        const existing = this.pods.get(name);
        if (existing?.removedAt !== undefined && existing.removedAt <= this.now) this.violation(`pod ${name} (step ${e.stepId}) created again after it ran`);
        if (existing) return false; // AlreadyExists: adopt
        const attempt = Number(e.pod.metadata?.labels?.['agentrun.dev/attempt']);
        const script = this.scenario.pods[name] ?? { runMs: 2000 };
        this.pods.set(name, { name, stepId: e.stepId, attempt, createdAt: this.now, script,
          ...(script.vanishAtMs !== undefined ? { removedAt: this.now + script.vanishAtMs } : {}) });
        return true;
      }
      case 'deletePod': {
        const p = this.pods.get(e.name);
        if (!p || (p.removedAt !== undefined && p.removedAt <= this.now)) return false;
        p.deletingSince ??= this.now;
        p.removedAt = Math.min(p.removedAt ?? Infinity, this.now + POD_DELETE_GRACE_MS);
        p.released = true;
        return true;
      }
      case 'releasePod': {
        const p = this.pods.get(e.name);
        if (!p || p.released || (p.removedAt !== undefined && p.removedAt <= this.now)) return false;
        p.released = true;
        if (p.deletingSince !== undefined) p.removedAt = Math.min(p.removedAt ?? Infinity, this.now + POD_DELETE_GRACE_MS);
        return true;
      }
      case 'deleteEndedPods': {
        let changed = false;
        for (const p of this.pods.values()) {
          if (p.removedAt !== undefined && p.removedAt <= this.now) continue;
          p.deletingSince ??= this.now;
          // A pod still holding our finalizer waits for its release; a released one goes.
          if (p.released) p.removedAt = Math.min(p.removedAt ?? Infinity, this.now + POD_DELETE_GRACE_MS);
          changed = true;
        }
        return changed;
      }
      case 'startModelCall': {
        const existing = this.proc.calls.get(e.stepId);
        if (existing?.attempt === e.attempt) return false; // already in flight in this process
        const journaled = this.journal.get(journalName(run.metadata.name, e.stepId));
        if (journaled?.entry.kind === 'ModelResponse') this.violation(`model call of step ${e.stepId} issued again after its response was journaled`);
        const item = this.scenario.model[this.modelIndex++];
        if (!item) { this.violation(`model script exhausted at step ${e.stepId} attempt ${e.attempt}`); return false; }
        this.proc.calls.set(e.stepId, { attempt: e.attempt, issuedAt: this.now, item });
        this.issued.push({ stepId: e.stepId, attempt: e.attempt, at: this.now });
        return false;
      }
      case 'cancelModelCall': this.proc.calls.delete(e.stepId); return false;
      case 'startMCPCall': case 'pollMCPTask': this.violation('the replayed histories use no MCP tools'); return false;
      case 'removeFinalizer':
        run.metadata.finalizers = run.metadata.finalizers.filter((f) => f !== FINALIZER);
        if (run.metadata.deletionTimestamp && run.metadata.finalizers.length === 0) this.gone();
        return true;
      case 'deleteRun': this.deleteRun(); return true;
      case 'addFinalizer': case 'writeJournal': case 'event': return false;
    }
  }

  /** The process dies: its model calls and pod memory are lost; it restarts a second later. */
  private crash(): void {
    this.restartAt = this.now + RESTART_MS;
    this.proc = { startedAt: this.restartAt, calls: new Map(), recovered: false };
  }

  private violation(what: string): void {
    this.violations.push(`${this.scenario.name} @${this.now - T0}ms: ${what}`);
  }

  /** The next moment something makes the controller reconcile the run, if any. */
  private nextTime(d: Decision, changed: boolean): number | undefined {
    if (this.restartAt !== undefined) { const at = this.restartAt; this.restartAt = undefined; return at; }
    const times: number[] = [];
    if (d.requeueAfterMs !== undefined) times.push(this.now + d.requeueAfterMs);
    if (changed) times.push(this.now + ECHO_MS);
    for (const s of this.scheduled) times.push(s.at);
    for (const c of this.proc.calls.values()) if (!c.item.hang) times.push(c.issuedAt + (c.item.latencyMs ?? 2000));
    for (const p of this.pods.values()) {
      const start = p.createdAt + (p.script.startMs ?? 500);
      const transitions = p.script.neverStarts ? [start] : [start, start + (p.script.runMs ?? 1500)];
      for (const t of transitions) if (p.removedAt === undefined || t < p.removedAt) times.push(t);
      if (p.removedAt !== undefined) times.push(p.removedAt);
    }
    // A finished run with nothing left to do and nothing on its timer: the story is over.
    if (this.run && isFinished(this.run.status ?? {}) && d.effects.length === 0 && d.requeueAfterMs === undefined && this.scheduled.length === 0) return undefined;
    const future = times.filter((t) => t > this.now);
    if (d.requeueAfterMs === 0) future.push(this.now);
    return future.length > 0 ? Math.min(...future) : undefined;
  }
}

// ---- the scenarios ----

const fetchUse = (id: string, url: string) => toolUse(id, 'web_fetch', { url });
const shellUse = (id: string, cmd: string) => toolUse(id, 'shell', { cmd });
const writesModelResponse = (d: Decision, stepId: number) => d.effects.some((e) => e.type === 'writeJournal' && e.stepId === stepId && e.entry.kind === 'ModelResponse');

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'parallel-tools-to-answer',
    description: 'Three parallel tool calls (one exits 1), a second turn with one tool, a final answer; then the TTL deletes the run.',
    runName: 'k8s-history',
    spec: { ttlSecondsAfterFinished: 30 },
    model: [
      { respond: response('tool_use', [text('Let me check three things.'), fetchUse('toolu_01', 'https://kubernetes.io/blog'), fetchUse('toolu_02', 'https://github.com/kubernetes/kubernetes/releases'), shellUse('toolu_03', 'date -d 2015-07-21')], { input: 900, output: 120 }, 'msg_01') },
      { respond: response('tool_use', [text('One more.'), shellUse('toolu_04', 'uname -a')], { input: 1400, output: 60 }, 'msg_02'), latencyMs: 3000 },
      { respond: response('end_turn', [text('Kubernetes 1.0 was released on 21 July 2015.')], { input: 1600, output: 30 }, 'msg_03') },
    ],
    pods: {
      'k8s-history-s2-a1': { runMs: 1500, output: 'Kubernetes v1.0 is here (July 21, 2015)' },
      'k8s-history-s3-a1': { runMs: 4000, output: 'v1.0.0 released 2015-07-21' },
      'k8s-history-s4-a1': { runMs: 800, exitCode: 1, output: 'date: invalid option -- d' },
      'k8s-history-s6-a1': { runMs: 1000, output: 'Linux tools 6.1.0' },
    },
  },
  {
    name: 'crash-and-resume',
    description: 'The process dies after journaling a model response, with a model call in flight, after a retry pod started and its status was written, after creating a pod before its status, and after journaling a tool result; a pod vanishes; a 429 is retried.',
    runName: 'crashy',
    spec: {},
    model: [
      { respond: response('tool_use', [fetchUse('toolu_11', 'https://kubernetes.io')], { input: 500, output: 50 }, 'msg_11') },
      { hang: true },
      { fail: failure.http(429, { retryAfterMs: 3000, errorType: 'rate_limit_error', message: 'slow down' }), latencyMs: 300 },
      { respond: response('tool_use', [shellUse('toolu_12', 'echo hi'), fetchUse('toolu_13', 'https://k8s.io/docs')], { input: 800, output: 70 }, 'msg_12') },
      { respond: response('end_turn', [text('Done: 2015.')], { input: 1000, output: 10 }, 'msg_13') },
    ],
    pods: {
      'crashy-s2-a1': { startMs: 400, runMs: 5000, vanishAtMs: 1500 },
      'crashy-s2-a2': { runMs: 1000, output: 'welcome to kubernetes' },
      'crashy-s4-a1': { runMs: 700, output: 'hi' },
      'crashy-s5-a1': { runMs: 2500, output: 'docs page' },
    },
    crashes: [
      // Dies between the journal write of turn 1 and the status that records it.
      (d) => (writesModelResponse(d, 1) ? 'afterJournal' : undefined),
      // Dies while the model call of step 3 is in flight: the call is lost with the process.
      (d, w) => (w.callInFlight(3) && d.effects.length === 0 ? 'lost' : undefined),
      // Dies after starting step 2's second pod and writing the status that records it, before
      // releasing the vanished first pod (its end is what the restarted process reads).
      (d) => (d.effects.some((e) => e.type === 'createPod' && e.stepId === 2 && e.pod.metadata?.name === 'crashy-s2-a2') ? 'afterStatus' : undefined),
      // Dies after creating step 4's pod, before the status that records its step is written.
      (d) => (d.effects.some((e) => e.type === 'createPod' && e.stepId === 4) ? 'afterStart' : undefined),
      // Dies between the journal write of a tool result and the status that records it.
      (d) => (d.effects.some((e) => e.type === 'writeJournal' && e.entry.kind === 'ToolResult' && e.stepId === 4) ? 'afterJournal' : undefined),
    ],
  },
  {
    name: 'retries-suspend-cancel-delete',
    description: 'Two transient model failures, a pod that never starts, an OOMKilled non-idempotent tool, a suspend and resume, a cancel while a pod runs, and a delete before the pod is gone.',
    runName: 'careful-agent',
    spec: { limits: { maxParallelTools: 2 } },
    model: [
      { fail: failure.http(529, { errorType: 'overloaded_error', message: 'Overloaded' }), latencyMs: 500 },
      { fail: failure.http(500, { errorType: 'api_error', message: 'Internal server error' }), latencyMs: 500 },
      { respond: response('tool_use', [fetchUse('toolu_21', 'https://kubernetes.io'), shellUse('toolu_22', 'sort big.txt')], { input: 600, output: 80 }, 'msg_21') },
      { respond: response('tool_use', [fetchUse('toolu_23', 'https://slow.example')], { input: 900, output: 40 }, 'msg_22') },
    ],
    pods: {
      'careful-agent-s2-a1': { neverStarts: 'StartError' },
      'careful-agent-s2-a2': { runMs: 1200, output: 'page' },
      'careful-agent-s3-a1': { runMs: 1800, exitCode: 137, terminationReason: 'OOMKilled', output: 'partial sort' },
      'careful-agent-s5-a1': { runMs: 600_000, output: 'never read' },
    },
    people: [
      // Someone suspends the run while its first tools run, and resumes it 20 s later.
      (d) => (d.effects.some((e) => e.type === 'createPod' && e.stepId === 2) ? { inMs: 200, action: 'suspend' } : undefined),
      (d) => (d.status.phase === 'Suspended' ? { inMs: 20_000, action: 'unsuspend' } : undefined),
      // Someone cancels while the slow pod runs, then deletes the run before the pod is gone.
      (d) => (d.effects.some((e) => e.type === 'createPod' && e.stepId === 5) ? { inMs: 5000, action: 'cancel' } : undefined),
      (d) => (d.status.phase === 'Cancelled' && d.effects.some((e) => e.type === 'deletePod') ? { inMs: 200, action: 'delete' } : undefined),
    ],
  },
];

// ---- invariants over a history ----

function invariantViolations(h: History): string[] {
  const out: string[] = [];
  const stepIdentity = new Map<number, string>();
  const phaseById = new Map<number, StepRecord['phase']>();
  const podByAttempt = new Map<string, string>();
  const attemptByPod = new Map<string, string>();
  const journaledModelSteps = new Set<number>();
  let finishedSeen = false;
  const identity = (s: StepRecord) => `${s.kind}/${s.turn}/${s.tool ?? ''}/${s.toolUseId ?? ''}`;
  const checkSteps = (steps: readonly StepRecord[], where: string) => {
    const ids = steps.map((s) => s.id);
    if (ids.some((id, i) => i > 0 && id <= (ids[i - 1] ?? 0))) out.push(`${where}: step ids not strictly increasing: ${ids.join(',')}`);
    for (const s of steps) {
      const known = stepIdentity.get(s.id);
      if (known !== undefined && known !== identity(s)) out.push(`${where}: step id ${s.id} reused (${known} then ${identity(s)})`);
      stepIdentity.set(s.id, identity(s));
      // Every phase change between two stored statuses is a move of core/machine.ts's table.
      const before = phaseById.get(s.id);
      if (before !== undefined && before !== s.phase && !isStepMove(before, s.phase)) out.push(`${where}: step ${s.id} moved ${before} → ${s.phase}`);
      phaseById.set(s.id, s.phase);
    }
  };
  h.records.forEach((r, i) => {
    const where = `${h.name} decision ${i}`;
    if (r.status?.steps) checkSteps(r.status.steps, where);
    if (finishedSeen && r.status && !isFinished(r.status)) out.push(`${where}: finished run became unfinished`);
    if (r.status && isFinished(r.status)) finishedSeen = true;
    for (const e of r.decision.effects) {
      if (e.type === 'startModelCall' && journaledModelSteps.has(e.stepId)) out.push(`${where}: model call of step ${e.stepId} re-issued after its response was journaled`);
      if (e.type === 'createPod') {
        const attempt = /-a(\d+)$/.exec(e.name)?.[1] ?? '?';
        const key = `${e.stepId}/${attempt}`;
        if (e.name !== toolPodName(h.run.name, e.stepId, Number(attempt))) out.push(`${where}: pod ${e.name} is not named after step ${e.stepId} attempt ${attempt}`);
        if ((podByAttempt.get(key) ?? e.name) !== e.name) out.push(`${where}: step/attempt ${key} has two pod names`);
        if ((attemptByPod.get(e.name) ?? key) !== key) out.push(`${where}: pod ${e.name} used for two step/attempts`);
        podByAttempt.set(key, e.name);
        attemptByPod.set(e.name, key);
      }
    }
    if (r.crash !== 'lost') {
      for (const e of r.decision.effects) if (e.type === 'writeJournal' && e.kind === 'ModelResponse' && e.stepId !== undefined) journaledModelSteps.add(e.stepId);
    }
    for (const [stepId, name] of r.journal) if (h.journal[name]?.entry.kind === 'ModelResponse') journaledModelSteps.add(stepId);
  });
  return out;
}

// ---- files ----

const fileOf = (name: string) => join(HISTORIES, `${name}.json`);

/**
 * Pretty at the top, one line per record: a changed decision is a changed line in a diff. A status
 * equal to the previous record's is written as `"status": "unchanged"` (most decisions change
 * nothing); load() puts it back, so every record is a complete snapshot again.
 */
function serialize(h: History): string {
  const { records, ...head } = h;
  const top = JSON.stringify(head, null, 2).replace(/\n}$/, '');
  const lines = records.map((r, i) => {
    const same = i > 0 && JSON.stringify(r.status) === JSON.stringify(records[i - 1]?.status);
    return `    ${JSON.stringify(same ? { ...r, status: 'unchanged' } : r)}`;
  });
  return `${top},\n  "records": [\n${lines.join(',\n')}\n  ]\n}\n`;
}

function load(name: string): History {
  const file = fileOf(name);
  if (!existsSync(file)) throw new Error(`${file} is missing: record it with AGENTRUN_RECORD_REPLAY=1 npx vitest run test/replay`);
  const stored = JSON.parse(readFileSync(file, 'utf8')) as Omit<History, 'records'> & { records: (Omit<HistoryRecord, 'status'> & { status?: AgentRunStatus | 'unchanged' })[] };
  const records: HistoryRecord[] = [];
  for (const { status, ...r } of stored.records) {
    const restored = status === 'unchanged' ? records.at(-1)?.status : status;
    records.push({ ...r, ...(restored ? { status: structuredClone(restored) } : {}) });
  }
  return { ...stored, spec: agentRunSpec.parse(stored.spec), records };
}

if (RECORD) {
  mkdirSync(HISTORIES, { recursive: true });
  for (const scenario of SCENARIOS) {
    const world = new World(scenario);
    const h = world.simulate();
    if (world.violations.length > 0) throw new Error(`not recording ${scenario.name}, it breaks invariants:\n${world.violations.join('\n')}`);
    writeFileSync(fileOf(scenario.name), serialize(h));
  }
}

// ---- the tests ----

describe.each(SCENARIOS.map((s) => s.name))('history %s', (name) => {
  it('replays: decide() makes every recorded decision again, and each written status is the next one observed', () => {
    const h = load(name);
    expect(h.records.length).toBeGreaterThan(5);
    h.records.forEach((r, i) => {
      const d = decide(observedOf(h, r));
      const at = `${name} decision ${i} at +${r.now - T0}ms (re-record only if this change is intended)`;
      expect(summarize(d), at).toEqual(r.decision);
      const next = h.records[i + 1];
      if (next && r.crash !== 'lost' && r.crash !== 'afterJournal' && r.crash !== 'afterStart') expect(d.status, `${at}: status`).toEqual(next.status ?? {});
    });
  });

  it('the recorded run keeps the invariants', () => {
    expect(invariantViolations(load(name))).toEqual([]);
  });

  it('a fresh simulation keeps the invariants and makes the recorded history again', () => {
    const world = new World(SCENARIOS.find((s) => s.name === name) ?? SCENARIOS[0] as Scenario);
    const h = world.simulate();
    expect(world.violations).toEqual([]);
    expect(invariantViolations(h)).toEqual([]);
    expect(h.records.map((r) => r.decision)).toEqual(load(name).records.map((r) => r.decision));
  });
});

describe('the invariant check itself', () => {
  const tampered = (edit: (h: History) => void): string[] => {
    const h = structuredClone(load('parallel-tools-to-answer'));
    edit(h);
    return invariantViolations(h);
  };
  const withSteps = (h: History) => {
    const r = h.records.findLast((x) => (x.status?.steps?.length ?? 0) >= 3);
    if (!r?.status?.steps) throw new Error('no record with 3 steps');
    return r.status.steps;
  };

  it('catches a step id used for another step', () => {
    expect(tampered((h) => { const steps = withSteps(h); steps[2] = { ...(steps[2] as StepRecord), toolUseId: 'toolu_other' }; }))
      .toEqual(expect.arrayContaining([expect.stringContaining('step id 3 reused')]));
  });

  it('catches two pod names for one step attempt, and a pod name not made from its step and attempt', () => {
    const out = tampered((h) => { h.records.at(-1)?.decision.effects.push({ type: 'createPod', stepId: 2, name: 'k8s-history-s9-a1' }); });
    expect(out).toEqual(expect.arrayContaining([expect.stringContaining('has two pod names'), expect.stringContaining('is not named after step 2')]));
  });

  it('catches a step moving against the table (a done step started again)', () => {
    const out = tampered((h) => {
      const r = h.records.findLast((x) => x.status?.steps?.[0]?.phase === 'Succeeded');
      const step = r?.status?.steps?.[0];
      if (step) h.records.push({ ...structuredClone(r), status: { ...structuredClone(r.status), steps: [{ ...step, phase: 'Running' }] } });
    });
    expect(out).toEqual(expect.arrayContaining([expect.stringContaining('step 1 moved Succeeded → Running')]));
  });

  it('catches a model call issued again after its response was journaled', () => {
    const out = tampered((h) => { h.records.at(-1)?.decision.effects.push({ type: 'startModelCall', stepId: 1, attempt: 1, request: 'x' }); });
    expect(out).toEqual([expect.stringContaining('model call of step 1 re-issued')]);
  });
});

/** The decisions of a history with what they were given, for scenario-specific facts. */
function decisionsOf(name: string): { h: History; r: HistoryRecord; d: Decision; i: number }[] {
  const h = load(name);
  return h.records.map((r, i) => ({ h, r, d: decide(observedOf(h, r)), i }));
}

describe('what the histories show', () => {
  it('parallel-tools-to-answer: three pods at once, the failed one reaches the model as an error, the answer is the result, TTL deletes', () => {
    const all = decisionsOf('parallel-tools-to-answer');
    const first3 = all.find(({ d }) => d.effects.filter((e) => e.type === 'createPod').length === 3);
    expect(first3).toBeDefined();
    const last = all.at(-1);
    const final = all.find(({ d }) => d.status.phase === 'Succeeded')?.d.status;
    expect(final?.result).toBe('Kubernetes 1.0 was released on 21 July 2015.');
    expect(final?.steps?.map((s) => `${s.kind}:${s.phase}`)).toEqual([
      'Model:Succeeded', 'Tool:Succeeded', 'Tool:Succeeded', 'Tool:Failed', 'Model:Succeeded', 'Tool:Succeeded', 'Model:Succeeded',
    ]);
    expect(final?.usage?.totalTokens).toBe(900 + 120 + 1400 + 60 + 1600 + 30);
    expect(last?.d.effects.map((e) => e.type)).toContain('deleteRun');
    expect(all.flatMap(({ d }) => d.effects).filter((e) => e.type === 'startModelCall')).toHaveLength(3);
  });

  it('crash-and-resume: a journaled response is never asked for again; a lost call is; the run ends as if nothing happened', () => {
    const all = decisionsOf('crash-and-resume');
    const crashes = all.filter(({ r }) => r.crash).map(({ r }) => r.crash);
    expect(crashes).toEqual(['afterJournal', 'afterStatus', 'lost', 'afterStart', 'afterJournal']);

    // After the first crash the status still says step 1 is Running, without a call; the journal says it is done.
    const afterCrash = all[all.findIndex(({ r }) => r.crash === 'afterJournal') + 1];
    expect(afterCrash?.r.status?.steps?.[0]).toMatchObject({ id: 1, phase: 'Running' });
    expect(afterCrash?.r.modelCalls).toEqual([]);
    expect(afterCrash?.r.journal).toEqual([[1, 'crashy-j1']]);
    expect(afterCrash?.d.effects.filter((e) => e.type === 'startModelCall')).toEqual([]);
    expect(afterCrash?.d.status.steps?.[0]).toMatchObject({ id: 1, phase: 'Succeeded' });

    const calls = all.flatMap(({ d, r }) => (r.crash === 'lost' ? [] : d.effects)).flatMap((e) => (e.type === 'startModelCall' ? [`${e.stepId}/a${e.attempt}`] : []));
    // Step 1 once; step 3 attempt 1 twice (the first was lost with the process), then attempt 2 after the 429; step 6 once.
    expect(calls).toEqual(['1/a1', '3/a1', '3/a1', '3/a2', '6/a1']);

    // The vanished pod of the idempotent tool was replaced by attempt 2, once, although the process
    // died before releasing attempt 1; step 4's pod, created just before a crash, was created again
    // under the same name (adopted), never under another.
    const pods = all.flatMap(({ d, r }) => (r.crash === 'lost' ? [] : d.effects)).flatMap((e) => (e.type === 'createPod' ? [e.pod.metadata?.name] : []));
    expect([...new Set(pods.filter((p) => p?.startsWith('crashy-s2-')))]).toEqual(['crashy-s2-a1', 'crashy-s2-a2']);
    expect(pods.filter((p) => p === 'crashy-s4-a1').length).toBeGreaterThanOrEqual(2);
    expect(pods.filter((p) => p?.startsWith('crashy-s4-'))).toEqual(pods.filter((p) => p === 'crashy-s4-a1'));
    const final = all.at(-1)?.d.status;
    expect(final?.phase).toBe('Succeeded');
    expect(final?.steps?.every((s) => s.phase === 'Succeeded')).toBe(true);
    expect(final?.steps?.find((s) => s.id === 2)?.attempt).toBe(2);
  });

  it('retries-suspend-cancel-delete: backoff, pod retries, Suspended, Cancelled, then deletion waits for the pod', () => {
    const all = decisionsOf('retries-suspend-cancel-delete');
    const retries = all.flatMap(({ d }) => d.status.steps?.filter((s) => s.id === 1 && s.retry?.nextRetryAt).map((s) => s.retry?.errorClass) ?? []);
    expect(new Set(retries)).toEqual(new Set(['Overloaded', 'ServerError']));
    const phases = all.map(({ d }) => d.status.phase).filter((p, i, ps) => i === 0 || p !== ps[i - 1]);
    expect(phases).toEqual(['Running', 'Suspended', 'Running', 'Cancelled']);
    const suspended = all.filter(({ d }) => d.status.phase === 'Suspended');
    expect(suspended.flatMap(({ d }) => d.effects).filter((e) => e.type === 'startModelCall' || e.type === 'createPod')).toEqual([]);
    const steps = all.find(({ d }) => d.status.phase === 'Cancelled')?.d.status.steps ?? [];
    expect(steps.map((s) => `${s.id}:${s.phase}:${s.outcome ?? ''}:a${s.attempt}`)).toEqual([
      '1:Succeeded:Completed:a3', '2:Succeeded:Completed:a2', '3:Failed:PodLost:a1', '4:Succeeded:Completed:a1', '5:Failed:Cancelled:a1',
    ]);
    const deleting = all.filter(({ r }) => r.metadata.deletionTimestamp);
    expect(deleting.length).toBeGreaterThan(0);
    expect(deleting.at(-1)?.d.effects).toEqual([{ type: 'removeFinalizer' }]);
    expect(deleting.slice(0, -1).every(({ d }) => !d.effects.some((e) => e.type === 'removeFinalizer'))).toBe(true);
  });
});
