/**
 * Checks of each run against its undisturbed baseline: results, steps, journal, re-executions, model calls.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decidedByKey } from '../../src/api/approval.ts';
import type { RecordedRequest } from '../../test/harness/mock-model-server.ts';
import { Kube, type AgentRunLike } from '../../test/harness/own-cluster.ts';
import type { ReplicaExit } from './replicas.ts';

interface JournalPayload { kind: string; output?: string; isError?: boolean; response?: { content: unknown[]; stop_reason: string | null } }

/** The result of checking one run against its baseline: counts, and the problems found. */
export interface RunCheck {
  name: string; variant: number; phase: string; resultMatches: boolean; stepsMatch: boolean;
  lostSteps: number; journalMismatches: number; modelCalls: number; extraModelCalls: number; unexplainedExtraCalls: number;
  /** Leader exits that landed while one of this run's model calls was open (request sent, response not yet journaled). */
  callsInterruptedByLeaderExits: number; extraCallsBeyondInterruptions: number;
  outageRejections: number; toolStarts: number; completedToolReruns: number; interruptedToolReruns: number;
  /** Idempotent tools that finished on a node as it was lost, unreported by its dead kubelet, and ran again (by design). */
  rerunsAfterUnreportedCompletion: number;
  podLostSteps: number; problems: string[];
}

/** Replaces the run-specific script key so payloads of different runs compare. */
function normalize(value: unknown, key: string): string {
  const safe = key.replace(/[^a-zA-Z0-9_-]/g, '');
  return JSON.stringify(value).split(key).join('<KEY>').split(safe).join('<KEY>');
}

/** The AgentRunJournal resource, for custom-object reads. */
export const JOURNALS = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentrunjournals' } as const;

/** The journal entries of a namespace by name: their entry text and its parsed payload. */
export async function journalOf(kube: Kube, namespace: string): Promise<Map<string, { text: string; payload: JournalPayload }>> {
  const list = await kube.custom.listNamespacedCustomObject({ ...JOURNALS, namespace }) as { items: { metadata?: { name?: string }; spec?: { entry?: string } }[] };
  const map = new Map<string, { text: string; payload: JournalPayload }>();
  for (const obj of list.items) {
    const textData = obj.spec?.entry;
    if (obj.metadata?.name && textData !== undefined) map.set(obj.metadata.name, { text: textData, payload: JSON.parse(textData) as JournalPayload });
  }
  return map;
}

interface ExecLine { key: string; attempt: number; what: 'start' | 'done'; at: number }

/** The lines of the tools' execution log (`<key> <attempt> start|done <ms>`). */
export async function execLines(path: string): Promise<ExecLine[]> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((line) => {
    const [key = '', attempt = '0', what = 'start', at = '0'] = line.split(' ');
    return { key, attempt: Number(attempt), what: what as 'start' | 'done', at: Number(at) };
  });
}

/**
 * How long before its arrival at the mock a model request may already have been sent. A kill is
 * timed when we send SIGKILL; a request the leader wrote to its socket just before reaches the
 * mock's handler after that (the kernel delivers it; this process's event loop, loaded by the
 * fleet, runs the handler later), so it counts as open at the kill.
 */
const REQUEST_IN_TRANSIT_MS = 250;

/** A leader exit at `t` can explain one re-issued call of each run whose call it interrupted. */
function explainedBy(exits: readonly ReplicaExit[], from: number, to: number): boolean {
  return exits.some((e) => e.wasLeader && e.at >= from - REQUEST_IN_TRANSIT_MS && e.at <= to);
}

/** Checks one run against the baseline of its variant; every difference is a problem. */
export function checkRun(
  run: AgentRunLike, variant: number, key: string, baseline: { run: AgentRunLike; key: string; journal: Map<string, string> },
  journal: Map<string, { text: string; payload: JournalPayload }>, requests: RecordedRequest[], exec: ExecLine[], exits: readonly ReplicaExit[],
  open: readonly (readonly [number, number])[], nodeLoss?: { at: number; pods: ReadonlySet<string> },
): RunCheck {
  const name = run.metadata.name ?? '';
  const problems: string[] = [];
  const steps = run.status?.steps ?? [];
  const baseSteps = baseline.run.status?.steps ?? [];
  const shape = (s: typeof steps) => s.map((x) => `${String(x.id)}:${x.kind}:${x.tool ?? ''}:${String(x.turn ?? '')}`).join(',');
  const stepsMatch = shape(steps) === shape(baseSteps);
  if (!stepsMatch) problems.push(`steps differ from the baseline: ${shape(steps)} vs ${shape(baseSteps)}`);
  const resultMatches = run.status?.result === baseline.run.status?.result && run.status?.phase === 'Succeeded';
  if (!resultMatches) problems.push(`result ${JSON.stringify(run.status?.result)} (${String(run.status?.phase)}) vs baseline ${JSON.stringify(baseline.run.status?.result)}`);

  let lostSteps = Math.max(0, baseSteps.length - steps.length);
  let journalMismatches = 0;
  let podLostSteps = 0;
  for (const step of steps) {
    if (step.outcome === 'PodLost') podLostSteps++;
    const entry = step.journal ? journal.get(step.journal.name) : undefined;
    if (step.phase !== 'Succeeded' || !step.journal || !entry) {
      lostSteps++;
      problems.push(`step ${String(step.id)} ${step.kind} is ${step.phase}${step.journal ? '' : ', not journaled'}${step.journal && !entry ? ', journal entry missing' : ''}`);
      continue;
    }
    const digest = `sha256:${createHash('sha256').update(entry.text).digest('hex')}`;
    if (digest !== step.journal.digest) { journalMismatches++; problems.push(`step ${String(step.id)}: journal digest mismatch`); }
    const base = baseSteps.find((b) => b.id === step.id);
    const baseText = base?.journal ? baseline.journal.get(base.journal.name) : undefined;
    const comparable = (p: JournalPayload) => (p.kind === 'ModelResponse'
      ? { kind: p.kind, content: p.response?.content, stop: p.response?.stop_reason }
      : { kind: p.kind, output: p.output, isError: p.isError });
    if (baseText === undefined || normalize(comparable(entry.payload), key) !== normalize(comparable(JSON.parse(baseText) as JournalPayload), baseline.key)) {
      journalMismatches++;
      const shown = (p: JournalPayload) => JSON.stringify(comparable(p)).slice(0, 300);
      problems.push(`step ${String(step.id)}: journaled payload differs from the baseline: ${shown(entry.payload)} vs ${baseText === undefined ? 'none' : shown(JSON.parse(baseText) as JournalPayload)}`);
    }
  }

  // Model calls: 200 answers and calls abandoned by a dead client (499) cost tokens; 529s do not.
  const paid = requests.filter((r) => r.status !== 529 && r.status !== undefined);
  const baselineCalls = baseSteps.filter((s) => s.kind === 'Model').length;
  const extraModelCalls = Math.max(0, paid.length - baselineCalls);
  let unexplainedExtraCalls = 0;
  const byTurn = new Map<number, RecordedRequest[]>();
  for (const r of paid) byTurn.set(r.turnIndex ?? -1, [...(byTurn.get(r.turnIndex ?? -1) ?? []), r]);
  for (const [turn, calls] of byTurn) {
    for (let i = 1; i < calls.length; i++) {
      const prev = calls[i - 1];
      const cur = calls[i];
      if (!prev || !cur) continue;
      if (!explainedBy(exits, prev.receivedAt, cur.receivedAt)) {
        unexplainedExtraCalls++;
        problems.push(`model turn ${turn} was called again at ${new Date(cur.receivedAt).toISOString()} with no leader exit since the previous call`);
      }
    }
  }

  const callsInterruptedByLeaderExits = exits.filter((e) => e.wasLeader && open.some(([from, to]) => e.at >= from && e.at <= to)).length;
  const extraCallsBeyondInterruptions = Math.max(0, extraModelCalls - callsInterruptedByLeaderExits);
  if (extraCallsBeyondInterruptions > 0) problems.push(`${extraModelCalls} extra model calls but only ${callsInterruptedByLeaderExits} leader exits landed during its calls`);

  // Tool executions, by idempotency key `${uid}/${step}`.
  const uid = run.metadata.uid ?? '?';
  const mine = exec.filter((l) => l.key.startsWith(`${uid}/`));
  let completedToolReruns = 0;
  let interruptedToolReruns = 0;
  let rerunsAfterUnreportedCompletion = 0;
  const keys = new Set(mine.map((l) => l.key));
  for (const k of keys) {
    const lines = mine.filter((l) => l.key === k).sort((a, b) => a.at - b.at);
    const firstDone = lines.findIndex((l) => l.what === 'done');
    const starts = lines.filter((l) => l.what === 'start').length;
    const done = lines[firstDone];
    // A tool that finished on a pod that was then lost (its node died) or deleted before its result
    // was journaled: its output went with the pod, so the operator ran the idempotent tool again, as
    // documented. A journaled result is never re-run: the step is done.
    const unreported = done !== undefined && nodeLoss !== undefined
      && nodeLoss.pods.has(`${name}-s${k.slice(k.lastIndexOf('/') + 1)}-a${String(done.attempt)}`);
    if (unreported && starts > 1) rerunsAfterUnreportedCompletion += starts - 1;
    else if (firstDone >= 0 && lines.slice(firstDone + 1).some((l) => l.what === 'start')) {
      completedToolReruns++;
      problems.push(`tool step ${k} ran again after it had completed`);
    } else if (starts > 1) interruptedToolReruns += starts - 1;
  }
  // Approvals: decided by the approver identity the admission policy recorded, not typed by anyone.
  for (const step of steps.filter((s) => s.tool === 'deploy')) {
    const by = run.metadata.annotations?.[decidedByKey(step.id)];
    if (step.approval?.decision !== 'Approved' || step.approval.by !== 'chaos-approver' || by !== 'chaos-approver') {
      problems.push(`step ${String(step.id)}: approval ${JSON.stringify(step.approval)} (decided-by ${String(by)})`);
    }
  }
  const toolSteps = steps.filter((s) => s.kind === 'Tool').length;
  if (keys.size !== toolSteps) problems.push(`${keys.size} tool steps executed, ${toolSteps} in status`);

  return {
    name, variant, phase: run.status?.phase ?? '', resultMatches, stepsMatch, lostSteps, journalMismatches,
    modelCalls: paid.length, extraModelCalls, unexplainedExtraCalls, callsInterruptedByLeaderExits, extraCallsBeyondInterruptions, outageRejections: requests.filter((r) => r.status === 529).length,
    toolStarts: mine.filter((l) => l.what === 'start').length, completedToolReruns, interruptedToolReruns, rerunsAfterUnreportedCompletion, podLostSteps, problems,
  };
}

/**
 * The intervals during which a model call of `run` was open: from the request's arrival at the
 * mock (less the time it may have been in transit) until its response was journaled (the journal entry was first seen), the client left
 * (499), or the call was re-issued. A leader exit inside one costs that call.
 */
export function openIntervals(run: AgentRunLike | undefined, requests: readonly RecordedRequest[], answered: ReadonlyMap<string, number>, journalSeen: ReadonlyMap<string, number>): [number, number][] {
  const modelSteps = (run?.status?.steps ?? []).filter((s) => s.kind === 'Model');
  const paid = requests.filter((r) => r.status !== 529 && r.status !== undefined);
  return paid.map((r, i) => {
    const journaledAt = journalSeen.get(modelSteps[r.turnIndex ?? -1]?.journal?.name ?? '') ?? Number.POSITIVE_INFINITY;
    const reissuedAt = paid.slice(i + 1).find((n) => n.turnIndex === r.turnIndex)?.receivedAt ?? Number.POSITIVE_INFINITY;
    const end = r.status === 499 ? (answered.get(r.requestId) ?? r.receivedAt) : Math.min(journaledAt, reissuedAt);
    return [r.receivedAt - REQUEST_IN_TRANSIT_MS, Number.isFinite(end) ? end : r.receivedAt] as [number, number];
  });
}
