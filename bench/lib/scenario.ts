/** The shape every benchmark scenario returns, and the targets it is compared against. */

export interface Target {
  /** What the target says, e.g. "model-step overhead p50 ≤ 15 ms". */
  readonly target: string;
  /** The measured value, formatted, e.g. "11.2 ms". */
  readonly measured: string;
  readonly met: boolean | 'n/a';
  readonly note?: string;
}

export interface ScenarioContext {
  readonly quick: boolean;
  readonly flags: Map<string, string>;
  readonly log: (line: string) => void;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  /** Parameters that decide the numbers (sizes, latencies, concurrency). */
  readonly params: Record<string, unknown>;
  /** Rows for the markdown table: [measure, value]. */
  readonly table: readonly (readonly [string, string])[];
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
  /** Everything else, raw. */
  readonly data: Record<string, unknown>;
}

export type Scenario = (ctx: ScenarioContext) => Promise<ScenarioResult>;

export const ms = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '—');
