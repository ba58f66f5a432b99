/**
 * The limits the Helm chart gives the operator (charts/agentrun-operator/values.yaml): its memory
 * limit, heap cap and model-call bounds. Benchmarks run the operator as the chart would and
 * report memory against the chart's own limit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../test/harness/measure.ts';
import type { OperatorOptions } from '../../test/harness/operator-process.ts';

export interface ChartLimits {
  /** resources.limits.memory, in bytes. */
  readonly memoryLimitBytes: number;
  readonly memoryLimit: string;
  readonly heapLimitMiB: number;
  readonly maxConcurrentModelCalls: number;
  readonly maxModelResponseBytes: number;
}

const UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9, '': 1 };

export function chartLimits(): ChartLimits {
  const values = parse(readFileSync(join(repoRoot, 'charts', 'agentrun-operator', 'values.yaml'), 'utf8')) as {
    resources: { limits: { memory: string } };
    operator: { heapLimitMiB: number; maxConcurrentModelCalls: number; maxModelResponseBytes: number };
  };
  const memoryLimit = values.resources.limits.memory;
  const m = /^(\d+)([KMG]i?)?$/u.exec(memoryLimit);
  if (!m) throw new Error(`cannot read resources.limits.memory ${memoryLimit}`);
  return {
    memoryLimit, memoryLimitBytes: Number(m[1]) * (UNITS[m[2] ?? ''] ?? 1),
    heapLimitMiB: values.operator.heapLimitMiB,
    maxConcurrentModelCalls: values.operator.maxConcurrentModelCalls,
    maxModelResponseBytes: values.operator.maxModelResponseBytes,
  };
}

/** Launch options that give the operator the chart's heap cap and model-call bounds. */
export function chartLaunch(limits: ChartLimits = chartLimits()): Pick<OperatorOptions, 'env' | 'extraArgs'> {
  return {
    ...(limits.heapLimitMiB > 0 ? { env: { NODE_OPTIONS: `--max-old-space-size=${limits.heapLimitMiB}` } } : {}),
    extraArgs: [`--max-concurrent-model-calls=${limits.maxConcurrentModelCalls}`, `--max-model-response-bytes=${limits.maxModelResponseBytes}`],
  };
}
