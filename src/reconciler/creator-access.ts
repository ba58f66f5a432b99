/**
 * Whether a run's creator may use what the run references (endpoint, Secrets, ServiceAccount,
 * MCP servers): asked of the apiserver once per run and set of references, then remembered.
 */
import type { AgentRun } from '../api/agent-run.ts';
import { creatorOf } from '../api/creator.ts';
import { accessRequirements } from '../core/access.ts';
import type { ResolvedTool } from '../core/journal.ts';
import type { AccessObservation } from '../core/observed.ts';
import type { AccessReviewer } from '../ports.ts';

/** Remembered SubjectAccessReview verdicts, by run UID. */
export class CreatorAccess {
  private readonly verdicts = new Map<string, { readonly fingerprint: string; readonly verdict: AccessObservation }>();
  private readonly reviewer: AccessReviewer;
  private readonly required: boolean;

  constructor(reviewer: AccessReviewer, required: boolean) {
    this.reviewer = reviewer;
    this.required = required;
  }

  /** The verdict for the run's creator; undefined when creator identity is not required. */
  async of(run: AgentRun & { metadata: { uid: string; namespace: string } }, tools: readonly ResolvedTool[]): Promise<AccessObservation | undefined> {
    if (!this.required) return undefined;
    const creator = creatorOf(run.metadata.annotations);
    if (!creator) return { state: 'unknown-creator' };
    const requirements = accessRequirements(run.spec, tools);
    const fingerprint = JSON.stringify([creator, requirements]);
    const known = this.verdicts.get(run.metadata.uid);
    if (known?.fingerprint === fingerprint) return known.verdict;
    const denied = await this.reviewer.denied(run.metadata.namespace, creator.user, creator.groups, requirements);
    const verdict: AccessObservation = denied.length === 0 ? { state: 'allowed' } : { state: 'denied', user: creator.user, denied };
    this.verdicts.set(run.metadata.uid, { fingerprint, verdict });
    return verdict;
  }

  /** Drops the verdict of a run that finished or went away. */
  forget(runUid: string): void {
    this.verdicts.delete(runUid);
  }
}
