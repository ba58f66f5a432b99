/** What the AgentRun reconciler needs from the world: the ports, in-memory stores and settings. */
import type { AgentRun } from '../api/agent-run.ts';
import type { Logger } from '../controller/index.ts';
import type { Effect } from '../core/effects.ts';
import type { RunTracer } from '../observability/tracing/index.ts';
import type {
  AccessReviewer,
  Caches,
  EventSink,
  JournalStore,
  PodClient,
  RunWriter,
  SecretReader,
  WallClock,
} from '../ports.ts';
import type { MCPCalls } from './memory/mcp-calls.ts';
import type { ModelCalls } from './memory/model-calls.ts';
import type { PodMemory } from './memory/pod-memory.ts';
import type { RunMemory } from './memory/run-memory.ts';

/** The AgentRun reconciler's dependencies. */
export interface ReconcilerDeps {
  readonly caches: Caches;
  readonly runs: RunWriter;
  readonly journal: JournalStore;
  readonly pods: PodClient;
  readonly events: EventSink;
  readonly secrets: SecretReader;
  readonly access: AccessReviewer;
  /** Check the recorded creator's RBAC for everything a run uses (default true). */
  readonly requireCreatorIdentity?: boolean;
  readonly modelCalls: ModelCalls;
  readonly mcpCalls: MCPCalls;
  readonly podMemory: PodMemory;
  /** Everything remembered per run; ModelCalls, MCPCalls and PodMemory keep theirs in it too. */
  readonly memory: RunMemory;
  readonly clock: WallClock;
  readonly log: Logger;
  /** Enqueues a run again (model call finished). */
  readonly enqueue: (key: string) => void;
  readonly statusByteBudget: number;
  readonly requireApproverIdentity: boolean;
  readonly stepEvents?: boolean;
  readonly onStatusWritten?: (bytes: number) => void;
  readonly onEffect?: (effect: Effect) => void;
  /** Exports the run's spans after each status write (observability/tracing); none when off. */
  readonly tracer?: RunTracer;
}

/** A run whose spec and status passed the schema, with the metadata every run has. */
export type ParsedRun = AgentRun & { metadata: { name: string; namespace: string; uid: string } };
