/** A reader of the Prometheus text format (enough for the apiserver's, etcd's and prom-client's output). */

/** One sample of the Prometheus text format. */
export interface Sample { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number }

/** Parses the Prometheus text exposition format. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key = '', value = ''] of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1] ?? '', labels, value: Number(match[4]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metricSum(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

/** Sum of `name` grouped by the given label names, as "a/b" keys. */
export function groupBy(samples: readonly Sample[], name: string, labelNames: readonly string[], filter: (s: Sample) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name || !filter(s)) continue;
    const key = labelNames.map((l) => s.labels[l] ?? '').join(' ');
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** after − before, per key (keys only in `after` count from 0). */
export function diff(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

/** GETs a path of the operator's metrics port. */
export async function scrape(port: number, path = '/metrics'): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}
