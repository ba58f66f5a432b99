/**
 * Deterministic names of the objects a run owns. The name is the idempotency key of the side
 * effect: creating the same pod or journal entry twice yields AlreadyExists, which means "adopt".
 */

const MAX_NAME = 63;

/** FNV-1a, 32 bit: stable across processes and versions, enough to keep truncated names apart. */
export function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** `base` + `suffix`, shortened with a hash of the full name when longer than 63 characters. */
export function boundedName(base: string, suffix: string): string {
  const full = `${base}${suffix}`;
  if (full.length <= MAX_NAME) return full;
  const hash = shortHash(full);
  const keep = MAX_NAME - suffix.length - hash.length - 1;
  return `${base.slice(0, keep).replace(/[-.]+$/, '')}-${hash}${suffix}`;
}

/** Name of the pod that runs one attempt of one tool step: `<run>-s<step>-a<attempt>`. */
export function toolPodName(run: string, stepId: number, attempt: number): string {
  return boundedName(run, `-s${stepId}-a${attempt}`);
}

/** Name of the journal ConfigMap of one step: `<run>-j<step>`. */
export function journalName(run: string, stepId: number): string {
  return boundedName(run, `-j${stepId}`);
}

/** Name of the journal entry holding the MCP task handle of one attempt of a step: `<run>-j<step>-t<attempt>`. */
export function mcpTaskJournalName(run: string, stepId: number, attempt: number): string {
  return boundedName(run, `-j${stepId}-t${attempt}`);
}

/** Name of the journal ConfigMap holding the run's resolved tool definitions. */
export function toolsJournalName(run: string): string {
  return boundedName(run, '-tools');
}

/** Value of the `agentrun.dev/run` label (label values are limited to 63 characters). */
export function runLabelValue(run: string): string {
  return boundedName(run, '');
}
