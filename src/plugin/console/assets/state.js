// What the page knows: every run the server's watch streams, and the view's own state.

/** Every run the server's watch knows, by "namespace/name". */
export const runs = new Map();

// Typed reasons and decision outcomes survive the re-render every watch event causes.
export const state = {
  scope: null,
  selected: 0,
  filters: { namespace: '', phase: '', label: '' },
  pendingCache: new Map(),
  reasons: new Map(),
  results: new Map(),
  /** Re-renders the current view (set by console.js). */
  render: () => undefined,
};

/** The view the address bar names: #/, #/approvals, #/run/NAMESPACE/NAME. */
export function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'run' && parts.length === 3) return { view: 'run', namespace: parts[1], name: parts[2] };
  if (parts[0] === 'approvals') return { view: 'approvals' };
  return { view: 'runs' };
}
export const runHref = (ns, name) => `#/run/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

/** Every pending step of every run, oldest first. */
export function pendingItems() {
  const items = [];
  for (const r of runs.values()) for (const p of r.pending) items.push({ ...p, run: r });
  return items.sort(
    (a, b) => a.since.localeCompare(b.since) || a.run.name.localeCompare(b.run.name) || a.step - b.step,
  );
}
