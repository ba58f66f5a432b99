// The agentrun console's page: no framework, no dependencies, no HTML strings. Every value shown
// is tenant-written (run names, prompts, model and tool output) and goes into the page as a text
// node or an attribute value set through the DOM, never parsed as HTML.

import { el } from './dom.js';
import { renderApprovals } from './inbox.js';
import { renderRun } from './run.js';
import { renderRuns } from './runs.js';
import { parseRoute, pendingItems, runHref, runs, state } from './state.js';

// ---- live updates: the server's watch, as Server-Sent Events ----

function connect() {
  const conn = document.getElementById('conn');
  const source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.className = 'conn live';
  });
  source.addEventListener('error', () => {
    conn.textContent = 'disconnected (retrying)';
    conn.className = 'conn down';
  });
  source.addEventListener('snapshot', (e) => {
    const data = JSON.parse(e.data);
    state.scope = data.scope;
    runs.clear();
    for (const r of data.runs) runs.set(`${r.namespace}/${r.name}`, r);
    changed(null);
  });
  source.addEventListener('upsert', (e) => {
    const { run } = JSON.parse(e.data);
    runs.set(`${run.namespace}/${run.name}`, run);
    changed(run);
  });
  source.addEventListener('delete', (e) => {
    const d = JSON.parse(e.data);
    runs.delete(`${d.namespace}/${d.name}`);
    changed(d);
  });
}

let refreshTimer = null;
function changed(run) {
  const waiting = pendingItems().filter((p) => !p.decided).length;
  document.getElementById('inbox-count').textContent = String(waiting);
  const route = parseRoute();
  if (route.view === 'run') {
    // The run page re-reads the run (journal, Events) when the watch says it changed.
    if (run === null || (run.namespace === route.namespace && run.name === route.name)) {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(render, 150);
    }
  } else {
    render();
  }
}

// ---- routing ----

function render() {
  const route = parseRoute();
  document.getElementById('nav-runs').classList.toggle('active', route.view === 'runs');
  document.getElementById('nav-approvals').classList.toggle('active', route.view === 'approvals');
  const main = document.getElementById('main');
  if (route.view === 'runs') renderRuns(main);
  else if (route.view === 'approvals') renderApprovals(main);
  else renderRun(main, route.namespace, route.name);
}
state.render = render;
window.addEventListener('hashchange', () => {
  state.selected = 0;
  render();
  document.getElementById('main').focus();
});

// ---- keyboard ----

document.addEventListener('keydown', (e) => {
  const tag = (e.target.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || tag === 'select' || e.ctrlKey || e.metaKey || e.altKey) {
    if (e.key === 'Escape') e.target.blur();
    return;
  }
  const route = parseRoute();
  const items = [
    ...document.querySelectorAll(route.view === 'approvals' ? '[data-testid=inbox-item]' : '[data-testid=run-row]'),
  ];
  const move = (delta) => {
    if (items.length === 0) return;
    state.selected = Math.max(0, Math.min(items.length - 1, state.selected + delta));
    items.forEach((n, i) => n.classList.toggle('selected', i === state.selected));
    items[state.selected].focus();
    items[state.selected].scrollIntoView({ block: 'nearest' });
  };
  // The item that has focus (or holds the focused field) is the one a key acts on.
  const focusedItem = e.target.closest ? e.target.closest('[data-testid=inbox-item], [data-testid=run-row]') : null;
  if (focusedItem && items.includes(focusedItem)) state.selected = items.indexOf(focusedItem);
  const current = items[state.selected];
  if (e.key === 'j') move(1);
  else if (e.key === 'k') move(-1);
  else if (e.key === 'Enter' && current && route.view === 'runs')
    location.hash = runHref(...current.dataset.run.split('/'));
  else if (e.key === 'a' && current && current.decide) current.decide('approve');
  else if (e.key === 'r' && current && current.decide) {
    if (current.reason.value.trim() === '') current.reason.focus();
    else current.decide('reject');
  } else if (e.key === '/') {
    const f = document.getElementById('label-filter');
    if (f) {
      e.preventDefault();
      f.focus();
    }
  } else if (e.key === 'g') location.hash = '#/';
  else if (e.key === 'i') location.hash = '#/approvals';
  else if (e.key === '?') {
    const help = document.getElementById('help');
    if (help) help.remove();
    else
      document.body.append(
        el(
          'div',
          { id: 'help', role: 'dialog' },
          'j/k: move · Enter: open run · a: approve · r: reject (type the reason first) · ' +
            '/: label filter · g: runs · i: approvals · Esc: leave a field',
        ),
      );
  } else return;
  e.preventDefault();
});

connect();
render();
