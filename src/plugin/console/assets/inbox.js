// The approvals inbox: every pending step the user can see, oldest first, with its whole input.
import { age, api, el, show } from './dom.js';
import { pendingItems, runHref, state } from './state.js';



/** The whole inputs of a run's pending steps, read once per run version. */
async function pendingDetails(run) {
  const key = `${run.namespace}/${run.name}@${run.resourceVersion}`;
  if (!state.pendingCache.has(key)) {
    if (state.pendingCache.size > 200) state.pendingCache.clear();
    state.pendingCache.set(
      key,
      api(`/api/runs/${encodeURIComponent(run.namespace)}/${encodeURIComponent(run.name)}/pending`),
    );
  }
  return state.pendingCache.get(key);
}

/**
 * The cards on screen, by "namespace/name/step", with what they were drawn from. A watch event
 * re-renders the inbox, often while the user's pointer is on a button: a card whose item did not
 * change is kept as the same node, or a click whose mousedown and mouseup straddle the re-render
 * would land on two different buttons and be lost.
 */
const drawn = new Map();

/** What a card shows of its item; the age next to "waiting since" is refreshed in place. */
const drawnFrom = (p) => JSON.stringify([p.subject, p.since, p.decided, p.preview, p.kind, p.run.createdBy ?? null]);

export function renderApprovals(main) {
  const items = pendingItems();
  state.selected = Math.min(state.selected, Math.max(0, items.length - 1));
  const now = Date.now();
  const keep = new Set();
  const cards = items.map((p, i) => {
    const key = `${p.run.namespace}/${p.run.name}/${p.step}`;
    keep.add(key);
    const from = drawnFrom(p);
    let entry = drawn.get(key);
    if (!entry || entry.from !== from) {
      entry = { from, ...card(p, key) };
      drawn.set(key, entry);
    }
    entry.loadDetails(p.run);
    entry.age.textContent = ` · waiting since ${p.since} (${age(p.since, now)})`;
    entry.card.classList.toggle('selected', i === state.selected);
    return entry.card;
  });
  for (const key of drawn.keys()) if (!keep.has(key)) drawn.delete(key);

  const heading = `Awaiting approval (${items.length}), oldest first`;
  const onScreen = [...main.children];
  const unchanged = onScreen.length === cards.length + 1 && onScreen[0].dataset.view === 'inbox' &&
    cards.every((c, i) => onScreen[i + 1] === c);
  if (unchanged) {
    onScreen[0].textContent = heading;
    return;
  }
  // The list changed: redraw it, and give focus back to the card (or comment field) that had it.
  const focused = document.activeElement?.closest?.('[data-testid=inbox-item]');
  const inField = document.activeElement?.tagName === 'TEXTAREA';
  show(
    main,
    el('h2', { 'data-view': 'inbox' }, heading),
    ...(cards.length
      ? cards
      : [el('p', { class: 'muted', 'data-testid': 'inbox-empty' }, 'Nothing awaits your approval.')]),
  );
  const again = focused && cards.find((c) => c.dataset.run === focused.dataset.run && c.dataset.step === focused.dataset.step);
  if (again) (inField ? again.reason : again).focus();
}

/** One pending step's card: who asked, the whole input, a comment field and the two decisions. */
function card(p, key) {
  const input = el('pre', { 'data-testid': 'full-input' }, p.preview);
  const desc = el('p', { class: 'muted', 'data-testid': 'tool-description' });
  const shown = state.results.get(key);
  const result = el('p', { role: 'alert', 'data-testid': 'decision-result', class: shown?.className }, shown?.text);
  const setResult = (className, text) => {
    state.results.set(key, { className, text });
    result.className = className;
    result.textContent = text;
  };
  const reason = el('textarea', {
    'aria-label': 'comment or reason',
    maxlength: 1024,
    'data-testid': 'reason',
    placeholder: 'Comment (approve) or reason (reject; the model reads it)',
    oninput: (e) => {
      state.reasons.set(key, e.target.value);
    },
  });
  reason.value = state.reasons.get(key) ?? '';
  const decide = async (verb) => {
    if (verb === 'reject' && reason.value.trim() === '') {
      setResult('error', 'A rejection needs a reason.');
      reason.focus();
      return;
    }
    for (const b of node.querySelectorAll('button')) b.disabled = true;
    setResult('muted', `${verb === 'approve' ? 'Approving' : 'Rejecting'}…`);
    try {
      const out = await api(
        `/api/runs/${encodeURIComponent(p.run.namespace)}/${encodeURIComponent(p.run.name)}/decisions`,
        {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ verb, step: p.step, text: reason.value }),
        },
      );
      setResult('done', [...out.lines.slice(-1), ...out.notes].join(' '));
    } catch (error) {
      // The apiserver's own words: RBAC or the approval admission policy.
      setResult('refusal', error.message);
      for (const b of node.querySelectorAll('button')) b.disabled = false;
    }
  };
  const waiting = el('span', {});
  const node = el(
    'div',
    {
      class: 'card',
      tabindex: 0,
      'data-testid': 'inbox-item',
      'data-run': `${p.run.namespace}/${p.run.name}`,
      'data-step': p.step,
    },
    el(
      'h3',
      {},
      el('a', { href: runHref(p.run.namespace, p.run.name) }, `${p.run.namespace}/${p.run.name}`),
      ` · step ${p.step} · `,
      p.subject,
    ),
    el(
      'p',
      {},
      'Run created by ',
      el('strong', { 'data-testid': 'asked-by' }, p.run.createdBy || 'an unrecorded user'),
      waiting,
      p.decided
        ? el('span', { class: 'warn' }, ' · a decision is set; the operator has not acted on it yet')
        : null,
    ),
    desc,
    input,
    reason,
    result,
    el(
      'div',
      { class: 'actions' },
      el('button', { class: 'approve', 'data-testid': 'approve', onclick: () => decide('approve') }, 'Approve (a)'),
      el('button', { class: 'reject', 'data-testid': 'reject', onclick: () => decide('reject') }, 'Reject (r)'),
    ),
  );
  node.decide = decide;
  node.reason = reason;
  // The whole input, read from the journal; read again when the run changes if the last read failed.
  let loaded = null;
  const loadDetails = (run) => {
    if (loaded && (loaded.ok || loaded.version === run.resourceVersion)) return;
    const attempt = { version: run.resourceVersion, ok: true };
    loaded = attempt;
    pendingDetails(run)
      .then((details) => {
        const d = details.find((x) => x.step === p.step);
        if (!d) return;
        desc.textContent = d.description ? `Tool: ${d.description}` : '';
        desc.className = 'muted';
        const why = d.warnings.join('; ') || 'the journal entry could not be read';
        input.textContent = d.input ?? `${p.preview}\n(only the preview is known: ${why})`;
        if (d.input !== null && !d.matchesDigest && p.kind === 'Tool') input.classList.add('error');
      })
      .catch((error) => {
        attempt.ok = false;
        state.pendingCache.delete(`${run.namespace}/${run.name}@${run.resourceVersion}`);
        desc.textContent = `Whole input not readable: ${error.message}`;
        desc.className = 'error';
        input.textContent = `${p.preview}\n(only the preview is known)`;
      });
  };
  return { card: node, age: waiting, loadDetails };
}
