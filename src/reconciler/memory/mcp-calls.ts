/**
 * MCP tool calls in flight, outside the reconcile workers (like model calls): the reconciler
 * starts a call after the step's intent is in status; when it ends, its classified outcome is
 * kept in the run's memory and the run is enqueued so that decide() journals it. Memory is per
 * process on purpose: after a restart a Running step with no call here was interrupted
 * (core/mcp-steps.ts) — unless its MCP task's handle is journaled: then poll() resumes it.
 * A call made as a task shows its handle (state `task`) once the server created it, and polls it
 * only after poll() says the handle is journaled.
 */
import type { MCPServerSpec } from '../../api/mcp-server.ts';
import type { MCPTaskHandle } from '../../api/journal-entry.ts';
import type { MCPCallObservation, MCPCallResult } from '../../core/observed.ts';
import type { MCPClient } from '../../ports.ts';
import { outcomes, startOnce } from './in-flight.ts';
import { RunMemory } from './run-memory.ts';

/** One MCP call to start: which run, step and attempt, the server and tool, and whom to tell when done. */
export interface StartMCPCall {
  readonly runUid: string;
  readonly stepId: number;
  readonly attempt: number;
  readonly namespace: string;
  readonly server: string;
  readonly tool: string;
  readonly input: unknown;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  /** Call it as an MCP task. */
  readonly task?: boolean;
  /** The MCPServer's spec when the call starts (undefined: it no longer exists). */
  readonly spec: () => MCPServerSpec | undefined;
  /** Called when the call ends, and when its task was created (the handle is to be journaled). */
  readonly onDone: () => void;
}

/** A journaled MCP task to poll: continued in this process or resumed after a restart. */
export type PollMCPTask = Omit<StartMCPCall, 'input' | 'task'> & { readonly handle: MCPTaskHandle };

/** Called once per finished call, for metrics: server is namespace/name. */
export type MCPCallListener = (server: string, outcome: MCPCallResult['kind'], ms: number) => void;

/** Starts MCP calls once per (run, step, attempt) and keeps their outcomes in the run's memory. */
export class MCPCalls {
  private readonly client: MCPClient;
  private readonly onCallFinished: MCPCallListener | undefined;
  private readonly memory: RunMemory;
  /** Task calls whose handle waits to be journaled, by run/step/attempt: resolving lets them poll. */
  private readonly gates = new Map<string, () => void>();

  constructor(client: MCPClient, onCallFinished?: MCPCallListener, memory = new RunMemory()) {
    this.client = client;
    this.onCallFinished = onCallFinished;
    this.memory = memory;
  }

  /** Starts the call unless this attempt is already in flight or done. */
  start(call: StartMCPCall): void {
    const pending: MCPCallObservation = { state: 'in-flight', attempt: call.attempt };
    startOnce(this.memory.of(call.runUid).mcpCalls, call.stepId, call.attempt, pending, async (signal) => {
      const started = performance.now();
      const { namespace, server, tool, input, timeoutMs, maxOutputBytes } = call;
      const request = { namespace, server, spec: call.spec(), tool, input, timeoutMs, maxOutputBytes };
      const result = call.task === true
        ? await this.client.callTask(request, signal, async (handle) => {
          await this.created(call, handle, signal);
        })
        : await this.client.call(request, signal);
      if (signal.aborted) return undefined;
      this.onCallFinished?.(`${namespace}/${server}`, result.kind, performance.now() - started);
      return { state: 'done' as const, attempt: call.attempt, result };
    }, call.onDone);
  }

  /**
   * Polls a journaled task: lets this process's call of the attempt go on polling, or (after a
   * restart, when there is none) resumes the task on its session.
   */
  poll(call: PollMCPTask): void {
    const gate = this.gates.get(gateKey(call.runUid, call.stepId, call.attempt));
    if (gate) {
      gate();
      return;
    }
    const pending: MCPCallObservation = { state: 'task', attempt: call.attempt, handle: call.handle };
    startOnce(this.memory.of(call.runUid).mcpCalls, call.stepId, call.attempt, pending, async (signal) => {
      const started = performance.now();
      const { namespace, server, tool, timeoutMs, maxOutputBytes } = call;
      const request = { namespace, server, spec: call.spec(), tool, input: undefined, timeoutMs, maxOutputBytes };
      const result = await this.client.resumeTask(request, call.handle, signal);
      if (signal.aborted) return undefined;
      this.onCallFinished?.(`${namespace}/${server}`, result.kind, performance.now() - started);
      return { state: 'done' as const, attempt: call.attempt, result };
    }, call.onDone);
  }

  /** Shows the created task's handle (for the journal) and waits until poll() says it is journaled. */
  private async created(call: StartMCPCall, handle: MCPTaskHandle, signal: AbortSignal): Promise<void> {
    const flight = this.memory.peek(call.runUid)?.mcpCalls.get(call.stepId);
    if (!flight || flight.attempt !== call.attempt || signal.aborted) throw new Error('aborted');
    const key = gateKey(call.runUid, call.stepId, call.attempt);
    await new Promise<void>((resolve, reject) => {
      const stop = () => {
        this.gates.delete(key);
        reject(new Error('aborted'));
      };
      this.gates.set(key, () => {
        this.gates.delete(key);
        signal.removeEventListener('abort', stop);
        resolve();
      });
      signal.addEventListener('abort', stop, { once: true });
      flight.outcome = { state: 'task', attempt: call.attempt, handle };
      call.onDone();
    });
  }

  /** What this process knows about the run's calls, by step id. */
  observe(runUid: string): Map<number, MCPCallObservation> {
    const flights = this.memory.peek(runUid)?.mcpCalls;
    return flights ? outcomes(flights) : new Map<number, never>();
  }

  /** Forgets a step's call once its outcome is recorded, aborting it if still in flight. */
  forget(runUid: string, stepId: number): void {
    const flights = this.memory.peek(runUid)?.mcpCalls;
    const flight = flights?.get(stepId);
    if (!flight) return;
    if (!flight.done) flight.abort.abort();
    flights?.delete(stepId);
  }

  /** Calls started and not yet ended, across all runs. */
  inFlight(): number {
    let n = 0;
    for (const run of this.memory.all()) for (const f of run.mcpCalls.values()) if (!f.done) n++;
    return n;
  }

  /** Aborts every call and closes every session (the operator stops). */
  async close(): Promise<void> {
    for (const run of this.memory.all()) for (const f of run.mcpCalls.values()) f.abort.abort();
    await this.client.close();
  }
}

function gateKey(runUid: string, stepId: number, attempt: number): string {
  return `${runUid}/${stepId}/${attempt}`;
}
