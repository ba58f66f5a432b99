/**
 * The verdict of a chaos run: the fleet's summary (counts, faults, timings) and the guarantees it
 * broke. scripts/chaos-report.ts renders the result file as docs/chaos.md.
 */
import { summarize } from '../../test/harness/measure.ts';
import type { RunCheck } from './checks.ts';
import type { FaultKind, FaultRecord } from './fault-injector.ts';
import type { Options } from './options.ts';
import type { ReplicaExit } from './replicas.ts';

/** The timings a summary reports, in ms. */
export interface FleetTimes { baselineMs: number; fleetMs: number; totalMs: number }

/**
 * The result file's `summary`: sums over the run checks, faults injected, and the leader kills that
 * landed while a model call was open (`intervals`: each run's open model calls, see openIntervals).
 */
export function fleetSummary(
  o: Options, checks: readonly RunCheck[], intervals: readonly (readonly [number, number][])[],
  exits: readonly ReplicaExit[], faults: readonly FaultRecord[], times: FleetTimes,
) {
  const inFlightAt = (t: number) => intervals.filter((list) => list.some(([from, to]) => t >= from && t <= to)).length;
  const leaderExits = exits.filter((e) => e.wasLeader);
  const kills = faults.filter((r) => r.kind === 'leader-kill' && !r.skipped);
  const killsDuringCall = kills.filter((k) => inFlightAt(k.at) > 0).length;
  const sum = (f: (c: RunCheck) => number) => checks.reduce((s, c) => s + f(c), 0);
  const injected = (kind: FaultKind) => faults.filter((r) => r.kind === kind && !r.skipped).length;
  return {
    runs: o.runs,
    runsSucceeded: checks.filter((c) => c.phase === 'Succeeded').length,
    runsMatchingBaseline: checks.filter((c) => c.problems.length === 0).length,
    lostSteps: sum((c) => c.lostSteps),
    journalMismatches: sum((c) => c.journalMismatches),
    completedToolStepsExecutedTwice: sum((c) => c.completedToolReruns),
    interruptedToolStepsRerun: sum((c) => c.interruptedToolReruns),
    toolStepsRerunAfterUnreportedCompletionOnLostNode: sum((c) => c.rerunsAfterUnreportedCompletion),
    modelCalls: sum((c) => c.modelCalls),
    extraModelCalls: sum((c) => c.extraModelCalls),
    unexplainedExtraModelCalls: sum((c) => c.unexplainedExtraCalls),
    callsInterruptedByLeaderExits: sum((c) => c.callsInterruptedByLeaderExits),
    extraCallsBeyondInterruptions: sum((c) => c.extraCallsBeyondInterruptions),
    modelCallsRejectedByOutages: sum((c) => c.outageRejections),
    leaderKills: kills.length,
    leaderKillsDuringAModelCall: killsDuringCall,
    modelCallsInFlightAtKills: kills.reduce((s, k) => s + inFlightAt(k.at), 0),
    leaderExitsNotKilledByUs: leaderExits.filter((e) => !e.killedByUs).length,
    replicaExits: exits.length,
    podDeletions: injected('pod-deletion'),
    apiserverRestarts: injected('apiserver-restart'),
    etcdRestarts: injected('etcd-restart'),
    modelOutages: injected('model-outage'),
    kubeletRestarts: injected('kubelet-restart'),
    nodeLosses: injected('node-loss'),
    resumeAfterKillMs: summarize(kills.flatMap((k) => (k.firstStatusWriteMs === undefined ? [] : [k.firstStatusWriteMs]))),
    newLeaderAfterKillMs: summarize(kills.flatMap((k) => (k.newLeaderMs === undefined ? [] : [k.newLeaderMs]))),
    ...times,
  };
}

/** What the summary of a chaos run reports. */
export type FleetSummary = ReturnType<typeof fleetSummary>;

/**
 * The guarantees a chaos run broke, in the order the log lists them (empty when all held).
 * `unfinished` describes the runs that had not finished by the deadline (undefined when all did).
 */
export function brokenGuarantees(
  o: Options, summary: FleetSummary, checks: readonly RunCheck[], faults: readonly FaultRecord[],
  baselineProblems: readonly string[], unfinished: readonly string[] | undefined,
): string[] {
  const broken: string[] = [...baselineProblems];
  if (unfinished) broken.push(`not every run finished before the deadline: ${unfinished.join(' | ')}`);
  if (summary.runsSucceeded !== o.runs) broken.push(`${o.runs - summary.runsSucceeded} runs did not succeed`);
  if (summary.lostSteps > 0) broken.push(`${summary.lostSteps} steps lost`);
  if (summary.journalMismatches > 0) broken.push(`${summary.journalMismatches} journal entries differ from the baseline`);
  if (summary.completedToolStepsExecutedTwice > 0) broken.push(`${summary.completedToolStepsExecutedTwice} completed tool steps executed twice`);
  if (summary.extraCallsBeyondInterruptions > 0) broken.push(`${summary.extraCallsBeyondInterruptions} extra model calls beyond one per interrupted call`);
  if (summary.unexplainedExtraModelCalls > 0) broken.push(`${summary.unexplainedExtraModelCalls} extra model calls with no leader exit to explain them`);
  if (checks.some((c) => c.problems.length > 0)) broken.push(`${checks.filter((c) => c.problems.length > 0).length} runs differ from their baseline`);
  const notInjected = faults.filter((r) => r.skipped);
  if (notInjected.length > 0) broken.push(`${notInjected.length} planned faults could not be injected (${notInjected.map((r) => `${r.kind}: ${r.skipped ?? ''}`).join('; ')})`);
  return broken;
}
