// The runs list: live (the server's watch), filtered by namespace, phase and labels.
import { age, el, show, svg } from './dom.js';
import { runHref, runs, state } from './state.js';

function matchesLabels(labels, selector) {
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      const [k, v] = term.split('=').map((s) => s.trim());
      return v === undefined ? Object.hasOwn(labels, k) : labels[k] === v;
    });
}

function filteredRuns() {
  const f = state.filters;
  return [...runs.values()]
    .filter(
      (r) =>
        (!f.namespace || r.namespace === f.namespace) &&
        (!f.phase || r.phase === f.phase) &&
        matchesLabels(r.labels, f.label),
    )
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

function sparkline(values) {
  if (values.length < 2) return el('span', { class: 'muted' }, values.length === 1 ? '' : '');
  const max = Math.max(...values, 1);
  const pts = values.map((v, i) => `${(i / (values.length - 1)) * 60},${18 - (v / max) * 16}`).join(' ');
  return svg(
    'svg',
    {
      class: 'spark',
      width: 60,
      height: 20,
      viewBox: '0 0 60 20',
      role: 'img',
      'aria-label': `tokens over ${values.length} turns`,
    },
    svg('polyline', { points: pts }),
  );
}

function select(options, value, onchange, label) {
  const node = el('select', { onchange: (e) => onchange(e.target.value), 'data-testid': `filter-${label.toLowerCase()}` });
  setOptions(node, options, value);
  return el('label', {}, `${label} `, node);
}
function setOptions(node, options, value) {
  show(node, el('option', { value: '' }, 'all'), ...options.map((o) => el('option', { value: o, selected: o === value }, o)));
}

/**
 * The view on screen. Every watch event re-renders the list, often while the user types a label
 * selector, holds a dropdown open or presses on a row: the filters stay the same nodes, and so does
 * every row whose run did not change, or those interactions would be lost to the redraw.
 */
let view = null;

function buildView(main) {
  const f = state.filters;
  const rerender = () => state.render();
  const namespace = select(
    [],
    f.namespace,
    (v) => {
      f.namespace = v;
      rerender();
    },
    'Namespace',
  );
  const phases = ['Pending', 'Running', 'AwaitingApproval', 'Succeeded', 'Failed', 'Cancelled'];
  const phase = select(
    phases,
    f.phase,
    (v) => {
      f.phase = v;
      rerender();
    },
    'Phase',
  );
  const labelInput = el('input', {
    id: 'label-filter',
    'data-testid': 'filter-label',
    placeholder: 'label selector: team=a,env',
    value: f.label,
    onchange: (e) => {
      f.label = e.target.value;
      rerender();
    },
  });
  const filters = el('div', { class: 'filters' }, namespace, phase, labelInput);
  const scope = el('div', {});
  const tbody = el('tbody', {});
  const empty = el('p', { class: 'muted' }, 'No runs.');
  const table = el(
    'table',
    { 'data-testid': 'runs' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...['NAMESPACE', 'NAME', 'PHASE', 'STEP', 'TURN', 'TOKENS', 'WAITING-FOR', 'AGE'].map((h) => el('th', {}, h)),
      ),
    ),
    tbody,
  );
  show(main, filters, scope, table, empty);
  return {
    filters,
    namespaceSelect: namespace.querySelector('select'),
    namespaces: '[]',
    scope,
    scopeShown: null,
    tbody,
    empty,
    rows: new Map(),
  };
}

/** What a row shows of its run; the age column is refreshed in place. */
const rowFrom = (r) => JSON.stringify([r.phase, r.step, r.turn, r.tokens, r.tokenHistory, r.waitingFor]);

function row(r) {
  const ageCell = el('td', {});
  const node = el(
    'tr',
    {
      class: 'row',
      tabindex: 0,
      'data-testid': 'run-row',
      'data-run': `${r.namespace}/${r.name}`,
      onclick: () => {
        location.hash = runHref(r.namespace, r.name);
      },
      onkeydown: (e) => {
        if (e.key === 'Enter') location.hash = runHref(r.namespace, r.name);
      },
    },
    el('td', {}, r.namespace),
    el('td', {}, el('a', { href: runHref(r.namespace, r.name) }, r.name)),
    el('td', { class: `phase-${r.phase}` }, r.phase),
    el('td', {}, r.step),
    el('td', {}, r.turn ?? ''),
    el('td', {}, r.tokens ?? '', ' ', sparkline(r.tokenHistory)),
    el('td', {}, r.waitingFor),
    ageCell,
  );
  return { node, ageCell };
}

export function renderRuns(main) {
  if (!view || main.firstElementChild !== view.filters) view = buildView(main);
  const namespaces = [...new Set([...runs.values()].map((r) => r.namespace))].sort();
  if (JSON.stringify(namespaces) !== view.namespaces) {
    view.namespaces = JSON.stringify(namespaces);
    setOptions(view.namespaceSelect, namespaces, state.filters.namespace);
  }
  const scope = state.scope;
  if (JSON.stringify(scope) !== view.scopeShown) {
    view.scopeShown = JSON.stringify(scope);
    show(
      view.scope,
      scope && !scope.allNamespaces
        ? el('p', { class: 'muted' }, `Namespaces you may list runs in: ${scope.namespaces.join(', ') || 'none'}`)
        : null,
      scope ? scope.notes.map((n) => el('p', { class: 'warn' }, n)) : null,
    );
  }

  const list = filteredRuns();
  state.selected = Math.min(state.selected, Math.max(0, list.length - 1));
  const now = Date.now();
  const keep = new Set();
  const rows = list.map((r, i) => {
    const key = `${r.namespace}/${r.name}`;
    keep.add(key);
    const from = rowFrom(r);
    let entry = view.rows.get(key);
    if (!entry || entry.from !== from) {
      entry = { from, ...row(r) };
      view.rows.set(key, entry);
    }
    entry.ageCell.textContent = age(r.created, now);
    entry.node.classList.toggle('selected', i === state.selected);
    return entry.node;
  });
  for (const key of view.rows.keys()) if (!keep.has(key)) view.rows.delete(key);
  const onScreen = [...view.tbody.children];
  if (onScreen.length !== rows.length || rows.some((r, i) => onScreen[i] !== r)) {
    const focused = document.activeElement?.closest?.('[data-testid=run-row]');
    view.tbody.replaceChildren(...rows);
    const again = focused && rows.find((r) => r.dataset.run === focused.dataset.run);
    if (again) again.focus();
  }
  view.empty.hidden = list.length > 0;
}
