/**
 * What the console's pages show, as JSON built from the same reads the plugin's commands make
 * (kube.ts, journal.ts): a run's summary for the live list and the inbox, a run's whole story for
 * its page, and the whole input of a pending step. Everything here is tenant-written data; the
 * page renders it as text only.
 */
import type { AgentRunStatus, StepRecord } from '../../api/agent-run.ts';
import { creatorOf } from '../../api/creator.ts';
import { sha256 } from '../../api/journal-digest.ts';
import { verifyJournalObject, type JournalEntry } from '../../api/journal-entry.ts';
import { describeError } from '../api-errors.ts';
import { pendingSubject } from '../decisions.ts';
import { pendingInput, readJournal } from '../journal.ts';
import { eventTime, type Kube, type Run } from '../kube.ts';

type Pending = NonNullable<AgentRunStatus['pendingApprovals']>[number];

/** One row of the runs list (and the inbox's source): what `kubectl get agentruns` shows, and more. */
export interface RunSummary {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly created: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly phase: string;
  readonly step: string;
  readonly turn: number | null;
  readonly tokens: number | null;
  /** Total tokens after each model step, oldest first: the list's sparkline. */
  readonly tokenHistory: readonly number[];
  readonly waitingFor: string;
  readonly createdBy: string;
  readonly pending: readonly PendingSummary[];
}

/** One pending approval as the console lists it. */
export interface PendingSummary {
  readonly step: number;
  readonly kind: 'Tool' | 'Budget';
  readonly subject: string;
  readonly preview: string;
  readonly inputBytes: number | null;
  readonly since: string;
  /** A decision annotation is set and the operator has not acted on it yet. */
  readonly decided: boolean;
}

/** The summary of a run as the list shows it. */
export function summarise(run: Run): RunSummary {
  const s = run.status ?? {};
  const annotations = run.metadata.annotations ?? {};
  let running = 0;
  const tokenHistory = (s.steps ?? []).filter((st) => st.kind === 'Model' && st.usage !== undefined)
    .sort((a, b) => a.id - b.id).map((st) => (running += st.usage?.totalTokens ?? 0));
  return {
    namespace: run.metadata.namespace,
    name: run.metadata.name,
    uid: run.metadata.uid ?? '',
    resourceVersion: run.metadata.resourceVersion ?? '',
    created: run.metadata.creationTimestamp ?? '',
    labels: run.metadata.labels ?? {},
    phase: s.phase ?? 'Pending',
    step: s.currentStep ?? '',
    turn: s.currentTurn ?? null,
    tokens: s.usage?.totalTokens ?? null,
    tokenHistory,
    waitingFor: s.waitingFor ?? '',
    createdBy: creatorOf(annotations)?.user ?? '',
    pending: (s.pendingApprovals ?? []).map((p) => ({
      step: p.step,
      kind: p.kind,
      subject: pendingSubject(p),
      preview: p.inputPreview,
      inputBytes: p.inputBytes ?? null,
      since: p.since,
      decided: Object.hasOwn(annotations, `approve.agentrun.dev/step-${p.step}`)
        || Object.hasOwn(annotations, `reject.agentrun.dev/step-${p.step}`),
    })),
  };
}

/** A step on the run page: its status record and its verified journal entry, if any. */
export interface StepView {
  readonly step: StepRecord;
  readonly entry: JournalEntry | null;
}

/** Everything the run page shows. */
export interface RunDetail {
  readonly summary: RunSummary;
  readonly spec: {
    readonly model: string;
    readonly systemPrompt: string | null;
    readonly prompt: string;
    readonly tools: readonly { name: string; description: string }[];
  };
  readonly status: {
    readonly message: string;
    readonly startTime: string;
    readonly completionTime: string;
    readonly result: string;
    readonly usage: unknown;
    readonly conditions: unknown[];
    readonly ignoredDecisions: unknown[];
  };
  readonly steps: readonly StepView[];
  readonly events: readonly { type: string; reason: string; message: string; time: string; from: string }[];
  /** Why the Events could not be read (RBAC: listing Events is a separate right), if they could not. */
  readonly eventsError: string | null;
  /** Problems met while reading (an unreadable journal entry, Events not readable): shown, never hidden. */
  readonly warnings: readonly string[];
}

/** How many Events the run page shows (the most recent). */
const MAX_EVENTS = 50;

/** A run's page: steps with their journal entries (verified, as transcript reads them), Events, tools. */
export async function runDetail(kube: Kube, namespace: string, name: string): Promise<RunDetail> {
  const run = await kube.getRun(name, namespace);
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
  };
  let eventsError: string | null = null;
  const [journaled, events, tools] = await Promise.all([
    readJournal(kube, run, warn),
    kube.runEvents(run).catch((error: unknown) => {
      eventsError = describeError(error);
      return [];
    }),
    toolDescriptions(kube, run, warn),
  ]);
  const s = run.status ?? {};
  return {
    summary: summarise(run),
    spec: {
      model: run.spec.model.name,
      systemPrompt: run.spec.systemPrompt ?? null,
      prompt: run.spec.prompt,
      tools: [...tools].map(([toolName, description]) => ({ name: toolName, description })),
    },
    status: {
      message: s.message ?? '',
      startTime: s.startTime ?? '',
      completionTime: s.completionTime ?? '',
      result: s.result ?? '',
      usage: s.usage ?? null,
      conditions: s.conditions ?? [],
      ignoredDecisions: s.ignoredDecisions ?? [],
    },
    steps: journaled.map((j) => ({ step: j.step, entry: j.entry ?? null })),
    events: events.slice(-MAX_EVENTS).map((e) => ({
      type: e.type ?? '',
      reason: e.reason ?? '',
      message: e.message ?? '',
      time: new Date(eventTime(e)).toISOString(),
      from: e.source?.component || e.reportingComponent || '',
    })),
    eventsError,
    warnings,
  };
}

/**
 * Tool name → description: the journaled definitions the run was fixed to at its start (they
 * cover toolRefs too), else the inline ones in the spec.
 */
async function toolDescriptions(kube: Kube, run: Run, warn: (m: string) => void): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of run.spec.tools ?? []) {
    out.set(t.name, t.description ?? (t.toolRef ? `AgentTool ${t.toolRef.name}` : ''));
  }
  const ref = run.status?.toolsJournal;
  if (!ref) return out;
  try {
    const obj = await kube.journal(run.metadata.namespace, ref.name);
    if (!obj) return out;
    const expected = { runUid: run.metadata.uid ?? '', name: ref.name, stepId: 0, digest: ref.digest };
    const read = verifyJournalObject(obj, expected, sha256);
    if (read.state === 'found' && read.recorded.entry.kind === 'Tools') {
      for (const t of read.recorded.entry.tools) {
        out.set(t.name, t.description ?? out.get(t.name) ?? '');
      }
    } else if (read.state === 'untrusted') {
      warn(`tool definitions: ${read.problem}; descriptions come from the spec`);
    }
  } catch (error) {
    warn(`tool definitions not readable (${describeError(error)}); descriptions come from the spec`);
  }
  return out;
}

/** The inbox's view of one pending step: the whole input (verified against the operator's digest). */
export interface PendingDetail {
  readonly step: number;
  readonly subject: string;
  readonly description: string;
  /** The whole input; null when it could not be read (then only the preview is known). */
  readonly input: string | null;
  readonly matchesDigest: boolean;
  readonly preview: string;
  readonly warnings: readonly string[];
}

/** The whole input of every pending step of a run, with the tool's description. */
export async function pendingDetails(kube: Kube, namespace: string, name: string): Promise<PendingDetail[]> {
  const run = await kube.getRun(name, namespace);
  const warnings: string[] = [];
  const tools = await toolDescriptions(kube, run, (m) => {
    warnings.push(m);
  });
  const pending: Pending[] = [...(run.status?.pendingApprovals ?? [])].sort((a, b) => a.step - b.step);
  return Promise.all(pending.map(async (p) => {
    const own: string[] = [...warnings];
    const input = p.kind === 'Budget' ? undefined : await pendingInput(kube, run, p, (m) => {
      own.push(m);
    });
    return {
      step: p.step,
      subject: pendingSubject(p),
      description: p.kind === 'Budget'
        ? 'The run reached a limit and asks to extend it (spec.limits.onExhausted).'
        : (tools.get(p.tool) ?? ''),
      input: input?.text ?? (p.kind === 'Budget' ? p.inputPreview : null),
      matchesDigest: input?.matches ?? false,
      preview: p.inputPreview,
      warnings: own,
    };
  }));
}
