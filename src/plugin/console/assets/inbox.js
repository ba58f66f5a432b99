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

export function renderApprovals(main) {
  const focused =
    document.activeElement && document.activeElement.dataset
      ? document.activeElement.closest('[data-testid=inbox-item]')
      : null;
  const refocus = focused
    ? { key: `${focused.dataset.run}/${focused.dataset.step}`, reason: document.activeElement.tagName === 'TEXTAREA' }
    : null;
  const items = pendingItems();
  state.selected = Math.min(state.selected, Math.max(0, items.length - 1));
  const now = Date.now();
  const cards = items.map((p, i) => {
    const input = el('pre', { 'data-testid': 'full-input' }, p.preview);
    const desc = el('p', { class: 'muted', 'data-testid': 'tool-description' });
    const key = `${p.run.namespace}/${p.run.name}/${p.step}`;
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
      for (const b of card.querySelectorAll('button')) b.disabled = true;
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
        for (const b of card.querySelectorAll('button')) b.disabled = false;
      }
    };
    const card = el(
      'div',
      {
        class: `card${i === state.selected ? ' selected' : ''}`,
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
        ` · waiting since ${p.since} (${age(p.since, now)})`,
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
    card.decide = decide;
    card.reason = reason;
    pendingDetails(p.run)
      .then((details) => {
        const d = details.find((x) => x.step === p.step);
        if (!d) return;
        desc.textContent = d.description ? `Tool: ${d.description}` : '';
        const why = d.warnings.join('; ') || 'the journal entry could not be read';
        input.textContent = d.input ?? `${p.preview}\n(only the preview is known: ${why})`;
        if (d.input !== null && !d.matchesDigest && p.kind === 'Tool') input.classList.add('error');
      })
      .catch((error) => {
        desc.textContent = `Whole input not readable: ${error.message}`;
        desc.className = 'error';
        input.textContent = `${p.preview}\n(only the preview is known)`;
      });
    return card;
  });
  show(
    main,
    el('h2', {}, `Awaiting approval (${items.length}), oldest first`),
    ...(cards.length
      ? cards
      : [el('p', { class: 'muted', 'data-testid': 'inbox-empty' }, 'Nothing awaits your approval.')]),
  );
  const again = refocus && cards.find((c) => `${c.dataset.run}/${c.dataset.step}` === refocus.key);
  if (again) (refocus.reason ? again.reason : again).focus();
}
