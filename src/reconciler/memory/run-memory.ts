/**
 * Everything this process remembers about a run, in one place keyed by the run's UID, and one
 * `forget(uid)` that drops all of it (aborting what is still in flight). The memory is per
 * process by design: after a restart a call in flight is made again and everything else is read
 * again from the apiserver and the journal.
 */
import type {
  AccessObservation,
  MCPCallObservation,
  ModelCallObservation,
  PodObservation,
  ToolOutputObservation,
} from '../../core/observed.ts';
import type { JournalRead } from '../../api/journal-entry.ts';
import type { AgentRunStatus } from '../../api/agent-run.ts';
import type { AgentRunObject } from '../../ports.ts';
import type { Flight } from './in-flight.ts';

/** A tool pod as remembered: the run it belongs to (namespace/name) and what was last seen of it. */
export interface RememberedPod {
  readonly owner: string;
  observation: PodObservation;
}

/** A log read waiting for room, with its arrival order across all runs. */
export interface WaitingRead {
  readonly seq: number;
  readonly namespace: string;
  readonly limitBytes: number;
  readonly onDone: () => void;
}

/** What this process knows about one run. */
export interface RunState {
  /** The run's namespace/name, once known. */
  key: string | undefined;
  /** The newest version of the run this process wrote, to outrun a stale informer cache. */
  written: AgentRunObject | undefined;
  /** In-flight steps were checked against the journal since this process started. */
  recovered: boolean;
  /**
   * The newest decided status that may not be stored yet (core/execution-plan.ts: it waits, or is
   * written behind its decision), and the stored statuses it may sit on (canonical JSON): it is the
   * next decision's input while the stored status is one of those.
   */
  unstored: {
    readonly status: AgentRunStatus;
    readonly over: ReadonlySet<string>;
    readonly writing: boolean;
    /** When a waiting status is written at the latest (epoch ms). */
    readonly writeBy: number;
  } | undefined;
  /** The status write in flight behind its decision (one at a time); resolves when it ended, never rejects. */
  statusWrite: Promise<void> | undefined;
  /** The last write behind a decision failed: the next status is written in the reconcile, with its retries. */
  statusWriteFailed: boolean;
  /** The creator's access verdict and the requirements it was made for. */
  access: { readonly fingerprint: string; readonly verdict: AccessObservation } | undefined;
  /** A refused write (413/422): decide() ends the run. */
  rejectedWrite: { what: string; message: string } | undefined;
  /** Tool pods the apiserver refused to create (413/422), by pod name. */
  readonly rejectedPods: Map<string, string>;
  /** Verified journal entries, by object name (they never change). */
  readonly journal: Map<string, JournalRead & { state: 'found' }>;
  /** Tool pods, by name, including ones that are gone. */
  readonly pods: Map<string, RememberedPod>;
  readonly modelCalls: Map<number, Flight<ModelCallObservation>>;
  readonly mcpCalls: Map<number, Flight<MCPCallObservation>>;
  /** Log reads of ended tool pods, by pod name (undefined until read). */
  readonly toolOutputs: Map<string, Flight<ToolOutputObservation | undefined>>;
  /** Log reads waiting for room, by pod name. */
  readonly waitingReads: Map<string, WaitingRead>;
}

/** The one store of per-run memory, keyed by run UID. */
export class RunMemory {
  private readonly runs = new Map<string, RunState>();
  private readonly uids = new Map<string, string>();
  private readonly forgotten: ((uid: string) => void)[] = [];

  /** The run's memory, created empty on first use; `key` (namespace/name) is recorded when given. */
  of(uid: string, key?: string): RunState {
    let state = this.runs.get(uid);
    if (!state) {
      state = {
        key: undefined,
        written: undefined,
        recovered: false,
        unstored: undefined,
        statusWrite: undefined,
        statusWriteFailed: false,
        access: undefined,
        rejectedWrite: undefined,
        rejectedPods: new Map(),
        journal: new Map(),
        pods: new Map(),
        modelCalls: new Map(),
        mcpCalls: new Map(),
        toolOutputs: new Map(),
        waitingReads: new Map(),
      };
      this.runs.set(uid, state);
    }
    if (key !== undefined && state.key !== key) {
      state.key = key;
      this.uids.set(key, uid);
    }
    return state;
  }

  /** The run's memory if there is any (never creates it). */
  peek(uid: string): RunState | undefined {
    return this.runs.get(uid);
  }

  /** The UID last seen under a namespace/name. */
  uidOf(key: string): string | undefined {
    return this.uids.get(key);
  }

  /** Every run remembered (for bounds across runs and metrics). */
  all(): IterableIterator<RunState> {
    return this.runs.values();
  }

  /** Drops everything remembered about the run, aborting its work in flight; exactly that UID, nothing else. */
  forget(uid: string): void {
    const state = this.runs.get(uid);
    if (!state) return;
    this.runs.delete(uid);
    if (state.key !== undefined && this.uids.get(state.key) === uid) this.uids.delete(state.key);
    for (const flights of [state.modelCalls, state.mcpCalls, state.toolOutputs]) {
      for (const f of flights.values()) f.abort.abort();
    }
    for (const listener of this.forgotten) listener(uid);
  }

  /** Calls `listener` after each forget (what was held is free again; memory kept elsewhere goes too). */
  onForget(listener: (uid: string) => void): void {
    this.forgotten.push(listener);
  }
}
