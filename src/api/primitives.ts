/** Small schemas shared by every kind: names, durations, quantities, conditions. */
import { z } from 'zod';

/** Go-style duration limited to the units people use for agents: `90s`, `15m`, `1h30m`, `500ms`. */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';
/** A duration field (`90s`, `15m`, `1h30m`) with its description; parse it with parseDurationMs. */
export const duration = (description: string) =>
  z.string().regex(new RegExp(DURATION_PATTERN), { error: 'must be a duration such as 90s, 15m or 1h30m' })
    .max(32).describe(description);

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Parses a duration matched by DURATION_PATTERN into milliseconds. */
export function parseDurationMs(value: string): number {
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/([0-9]+)(ms|s|m|h)/g)) {
    total += Number(amount) * (UNIT_MS[unit ?? 's'] ?? 0);
  }
  return total;
}

/** A DNS-1123 subdomain: what Kubernetes accepts as the name of most objects. */
export const objectName = (description: string) =>
  z.string().min(1).max(253)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
      error: 'must be a Kubernetes object name: lowercase letters, digits, "-" and ".", '
        + 'starting and ending with a letter or digit',
    })
    .describe(description);

/** Kubernetes resource quantity (`500m`, `256Mi`, `2`), as int-or-string like core/v1. */
export const QUANTITY_PATTERN = '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))'
  + '(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
/** A resource quantity field: a string matching QUANTITY_PATTERN or a non-negative integer. */
export const quantity = z.union([
  z.string().regex(new RegExp(QUANTITY_PATTERN), { error: 'must be a Kubernetes quantity such as 500m, 256Mi or 2' }),
  z.int().min(0),
]).meta({ 'x-kubernetes-int-or-string': true, pattern: QUANTITY_PATTERN });

/** Compute requests and limits of a tool container, as in a Pod. */
export const resourceRequirements = z.object({
  limits: z.record(z.string().max(64), quantity).optional().describe('Upper bounds, e.g. {cpu: "1", memory: 512Mi}.'),
  requests: z.record(z.string().max(64), quantity).optional().describe('What the scheduler reserves.'),
}).describe('Compute resources, as in a Pod container.');

/** Any JSON object, kept verbatim by the apiserver (used for JSON Schemas). */
export const freeFormObject = (description: string) =>
  z.record(z.string(), z.unknown()).meta({ 'x-kubernetes-preserve-unknown-fields': true }).describe(description);

/** A timestamp field in RFC 3339, as metav1.Time serialises. */
export const RFC3339 = z.string().max(64).meta({ format: 'date-time' });

/** metav1.Condition, as every first-class Kubernetes API reports state. */
export const condition = z.object({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().min(1).max(1024),
  message: z.string().max(32768),
  lastTransitionTime: RFC3339,
  observedGeneration: z.int().min(0).optional(),
});
export type Condition = z.infer<typeof condition>;
