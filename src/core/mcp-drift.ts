/**
 * Drift of an owned object: whether what the apiserver holds still has every field the operator
 * wants. The apiserver adds defaults (imagePullPolicy, protocol, terminationMessagePath...), so
 * "equal" is too strict; "covers" is: every field the operator set has the same value, and every
 * list has the same length (an env var or container a tenant added is drift too). Quantities are
 * compared by value, since the apiserver rewrites them (`1000m` becomes `1`).
 */

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity's value, or undefined when the string is not one. */
export function quantityValue(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|)$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (SUFFIX[m[2] ?? ''] ?? 1);
}

/** The path of the first field where `actual` does not have what `desired` says; undefined when none. */
export function driftOf(desired: unknown, actual: unknown, path = '', inResources = false): string | undefined {
  if (inResources && (typeof desired === 'string' || typeof desired === 'number')
    && (typeof actual === 'string' || typeof actual === 'number')) {
    const a = quantityValue(desired);
    const b = quantityValue(actual);
    if (a !== undefined && b !== undefined) return Math.abs(a - b) <= Math.abs(a) * 1e-9 ? undefined : path || '.';
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(actual) || actual.length !== desired.length) return path || '.';
    for (let i = 0; i < desired.length; i++) {
      const d = driftOf(desired[i], actual[i], `${path}[${i}]`, inResources);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (typeof desired === 'object' && desired !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return path || '.';
    for (const [key, value] of Object.entries(desired)) {
      if (value === undefined) continue;
      const inner = (actual as Record<string, unknown>)[key];
      const d = driftOf(value, inner, `${path}.${key}`, inResources || key === 'resources');
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return desired === actual ? undefined : path || '.';
}
