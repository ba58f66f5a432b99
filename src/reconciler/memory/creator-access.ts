/**
 * Whether a run's creator may use what the run references (endpoint, Secrets, ServiceAccount,
 * MCP servers): asked of the apiserver once per run and set of references, then remembered.
 */
import type { AgentRun } from '../../api/agent-run.ts';
import { creatorOf } from '../../api/creator.ts';
import { accessRequirements } from '../../core/access.ts';
import type { ResolvedTool } from '../../api/journal-entry.ts';
import type { AccessObservation } from '../../core/observed.ts';
import type { AccessReviewer } from '../../ports.ts';
import type { RunMemory } from './run-memory.ts';

/** SubjectAccessReview verdicts, remembered in the run's memory. */
export class CreatorAccess {
  private readonly reviewer: AccessReviewer;
  private readonly required: boolean;
  private readonly memory: RunMemory;

  constructor(reviewer: AccessReviewer, required: boolean, memory: RunMemory) {
    this.reviewer = reviewer;
    this.required = required;
    this.memory = memory;
  }

  /** The verdict for the run's creator; undefined when creator identity is not required. */
  async of(
    run: AgentRun & { metadata: { uid: string; namespace: string } },
    tools: readonly ResolvedTool[],
  ): Promise<AccessObservation | undefined> {
    if (!this.required) return undefined;
    const creator = creatorOf(run.metadata.annotations);
    if (!creator) return { state: 'unknown-creator' };
    const requirements = accessRequirements(run.spec, tools);
    const fingerprint = JSON.stringify([creator, requirements]);
    const known = this.memory.peek(run.metadata.uid)?.access;
    if (known?.fingerprint === fingerprint) return known.verdict;
    const denied = await this.reviewer.denied(run.metadata.namespace, creator.user, creator.groups, requirements);
    const verdict: AccessObservation = denied.length === 0
      ? { state: 'allowed' } :
      { state: 'denied', user: creator.user, denied };
    this.memory.of(run.metadata.uid).access = { fingerprint, verdict };
    return verdict;
  }
}
