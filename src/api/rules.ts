/**
 * Validation rules that exist twice on purpose: as a CEL rule the apiserver enforces at admission
 * (`x-kubernetes-validations` in the generated CRD) and as a zod refinement the operator and
 * plugin enforce on everything they read. Declaring both in one place keeps them in step; a test
 * runs every invalid manifest through both and checks they agree.
 */
import { z } from 'zod';

/** A validation rule declared once, enforced both by the apiserver (CEL) and by zod. */
export interface Rule<T> {
  /** CEL evaluated by the apiserver with `self` bound to the value. */
  readonly cel: string;
  /** Shown to the user on rejection: says what to fix. */
  readonly message: string;
  /** The same rule in TypeScript, for zod. */
  readonly check: (value: T) => boolean;
  /** Field the error is reported on, relative to the value (e.g. `.tools`). */
  readonly fieldPath?: string;
}

/** Attaches rules to an object schema as CEL (for the CRD) and as zod refinements (for the operator). */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const rule of rules) {
      if (!rule.check(value)) {
        ctx.addIssue({
          code: 'custom',
          message: rule.message,
          path: rule.fieldPath ? rule.fieldPath.replace(/^\./, '').split('.') : [],
        });
      }
    }
  });
  const existing = (z.globalRegistry.get(schema)?.['x-kubernetes-validations'] ?? []) as unknown[];
  return refined.meta({
    ...z.globalRegistry.get(schema),
    'x-kubernetes-validations': [
      ...existing,
      ...rules.map((r) => ({ rule: r.cel, message: r.message, ...(r.fieldPath ? { fieldPath: r.fieldPath } : {}) })),
    ],
  });
}

/** A rule on how a value may change: CEL transition rule (uses oldSelf), checked on updates only. */
export interface TransitionRule<T> {
  readonly cel: string;
  readonly message: string;
  readonly check: (oldValue: T, newValue: T) => boolean;
}
