/**
 * Small helpers of the node emulator: pod and error predicates, abortable sleep, time parsing.
 */
import * as k8s from '@kubernetes/client-node';
import { arch } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

/** Whether a pod has reached Succeeded or Failed. */
export function isTerminal(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Whether an API error is a 404. */
export function isNotFound(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 404;
}

/** Whether an API error is a 409 (a stale resourceVersion). */
export function isConflict(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 409;
}

/** A catch handler: undefined for a 404, rethrows anything else. */
export function undefinedIfNotFound(error: unknown): undefined {
  if (isNotFound(error)) return undefined;
  throw error;
}

/** Timestamps are Date objects in typed responses but strings in raw watch events. */
export function parseTime(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  return typeof value === 'string' ? new Date(value) : undefined;
}

/** Resolves true after `ms`, false as soon as `signal` aborts; never rejects, leaves no timer behind. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/** This machine's architecture as Go names it (the Node's status.nodeInfo). */
export function goArch(): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return names[arch()] ?? arch();
}

/** An Error for any thrown value. */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A thrown value's message. */
export function errorMessage(error: unknown): string {
  if (error instanceof k8s.ApiException) return `HTTP ${error.code}: ${String(error.body).slice(0, 300)}`;
  return toError(error).message;
}
