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
  return el(
    'label',
    {},
    `${label} `,
    el(
      'select',
      { onchange: (e) => onchange(e.target.value), 'data-testid': `filter-${label.toLowerCase()}` },
      el('option', { value: '' }, 'all'),
      ...options.map((o) => el('option', { value: o, selected: o === value }, o)),
    ),
  );
}

export function renderRuns(main) {
  const f = state.filters;
  const namespaces = [...new Set([...runs.values()].map((r) => r.namespace))].sort();
  const phases = ['Pending', 'Running', 'AwaitingApproval', 'Succeeded', 'Failed', 'Cancelled'];
  const labelInput = el('input', {
    id: 'label-filter',
    'data-testid': 'filter-label',
    placeholder: 'label selector: team=a,env',
    value: f.label,
    onchange: (e) => {
      f.label = e.target.value;
      state.render();
    },
  });
  const list = filteredRuns();
  state.selected = Math.min(state.selected, Math.max(0, list.length - 1));
  const now = Date.now();
  const rows = list.map((r, i) =>
    el(
      'tr',
      {
        class: `row${i === state.selected ? ' selected' : ''}`,
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
      el('td', {}, age(r.created, now)),
    ),
  );
  const scope = state.scope;
  show(
    main,
    el(
      'div',
      { class: 'filters' },
      select(
        namespaces,
        f.namespace,
        (v) => {
          f.namespace = v;
          state.render();
        },
        'Namespace',
      ),
      select(
        phases,
        f.phase,
        (v) => {
          f.phase = v;
          state.render();
        },
        'Phase',
      ),
      labelInput,
    ),
    scope && !scope.allNamespaces
      ? el('p', { class: 'muted' }, `Namespaces you may list runs in: ${scope.namespaces.join(', ') || 'none'}`)
      : null,
    scope ? scope.notes.map((n) => el('p', { class: 'warn' }, n)) : null,
    el(
      'table',
      { 'data-testid': 'runs' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ...['NAMESPACE', 'NAME', 'PHASE', 'STEP', 'TURN', 'TOKENS', 'WAITING-FOR', 'AGE'].map((h) =>
            el('th', {}, h),
          ),
        ),
      ),
      el('tbody', {}, rows),
    ),
    list.length === 0 ? el('p', { class: 'muted' }, 'No runs.') : null,
  );
}
