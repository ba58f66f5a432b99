/**
 * The one pattern behind model calls, MCP calls and tool log reads: work that outlives a
 * reconcile starts once per (run, id, attempt), its outcome is kept in the run's memory, a newer
 * attempt aborts an older one, and the run is enqueued when the work ends.
 */

/** One piece of work for a run: its attempt, what is known of it so far, and how to stop it. */
export interface Flight<T> {
  readonly attempt: number;
  /** The pending value until the work ends, then its outcome. */
  outcome: T;
  /** Whether the work has ended (its outcome is final). */
  done: boolean;
  readonly abort: AbortController;
}

/**
 * Starts `work` unless the same attempt is in `flights` already; a different attempt is aborted
 * and replaced. `pending` stands for the outcome until the work ends. Work that resolves
 * `undefined` was aborted and records nothing; otherwise its outcome is kept and, if the flight
 * is still the current one (not forgotten, not replaced), `onDone` is called.
 */
export function startOnce<K, T>(
  flights: Map<K, Flight<T>>,
  id: K,
  attempt: number,
  pending: T,
  work: (signal: AbortSignal) => Promise<T | undefined>,
  onDone: () => void,
): void {
  const existing = flights.get(id);
  if (existing?.attempt === attempt) return;
  existing?.abort.abort();
  const flight: Flight<T> = { attempt, outcome: pending, done: false, abort: new AbortController() };
  flights.set(id, flight);
  void work(flight.abort.signal).then((outcome) => {
    if (outcome === undefined) return;
    flight.outcome = outcome;
    flight.done = true;
    if (flights.get(id) === flight) onDone();
  });
}

/** Aborts one flight (if any) and drops it. */
export function cancelFlight<K, T>(flights: Map<K, Flight<T>>, id: K): void {
  flights.get(id)?.abort.abort();
  flights.delete(id);
}

/** The outcomes of a run's flights, by id. */
export function outcomes<K, T>(flights: ReadonlyMap<K, Flight<T>>): Map<K, T> {
  return new Map([...flights].map(([id, f]) => [id, f.outcome]));
}
