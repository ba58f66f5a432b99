// One run: timeline to scale, tokens per turn, the transcript from the journal, conditions, Events.
import { age, api, duration, el, show, svg } from './dom.js';
import { parseRoute } from './state.js';

export async function renderRun(main, namespace, name) {
  let d;
  try {
    d = await api(`/api/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
  } catch (error) {
    show(main, el('p', { class: 'error', role: 'alert' }, error.message));
    return;
  }
  if (parseRoute().name !== name) return;
  const s = d.summary;
  show(
    main,
    el(
      'h2',
      { 'data-testid': 'run-title' },
      `${s.namespace}/${s.name} `,
      el('span', { class: `phase-${s.phase}` }, s.phase),
    ),
    el(
      'dl',
      { class: 'fields' },
      el('dt', {}, 'Model'),
      el('dd', {}, d.spec.model),
      el('dt', {}, 'Step'),
      el('dd', {}, s.step || '—'),
      el('dt', {}, 'Waiting for'),
      el('dd', {}, s.waitingFor || '—'),
      el('dt', {}, 'Tokens'),
      el('dd', {}, s.tokens ?? 0),
      el('dt', {}, 'Created by'),
      el('dd', {}, s.createdBy || '—'),
      el('dt', {}, 'Message'),
      el('dd', {}, d.status.message || '—'),
    ),
    d.warnings.map((w) => el('p', { class: 'warn' }, w)),
    el('section', {}, el('h2', {}, 'Timeline'), timeline(d)),
    el('section', {}, el('h2', {}, 'Tokens per turn'), tokensTable(d)),
    el('section', { 'data-testid': 'transcript' }, el('h2', {}, 'Transcript (from the journal)'), transcript(d)),
    el(
      'section',
      {},
      el('h2', {}, 'Conditions'),
      table(
        ['TYPE', 'STATUS', 'REASON', 'MESSAGE', 'SINCE'],
        d.status.conditions.map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime]),
      ),
    ),
    el(
      'section',
      {},
      el('h2', {}, 'Events'),
      d.eventsError !== null
        ? el('p', { class: 'warn', 'data-testid': 'events-error' }, `Not readable: ${d.eventsError}`)
        : table(
          ['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'],
          d.events.map((e) => [e.type, e.reason, age(e.time), e.from, e.message]),
        ),
    ),
  );
}

function table(header, rows) {
  if (rows.length === 0) return el('p', { class: 'muted' }, 'none');
  return el(
    'table',
    {},
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        header.map((h) => el('th', {}, h)),
      ),
    ),
    el(
      'tbody',
      {},
      rows.map((r) =>
        el(
          'tr',
          {},
          r.map((c) => el('td', {}, c ?? '')),
        ),
      ),
    ),
  );
}

/** Steps drawn to scale: each bar spans its start to its end; an approval wait is its own bar. */
function timeline(d) {
  const steps = d.steps.map((v) => v.step);
  const now = Date.now();
  const t = (x) => (x ? new Date(x).getTime() : NaN);
  const starts = steps.map((s) => t(s.approval?.requestedAt) || t(s.startedAt)).filter((x) => !Number.isNaN(x));
  if (starts.length === 0) return el('p', { class: 'muted' }, 'No step has started.');
  const t0 = Math.min(...starts, t(d.status.startTime) || Infinity);
  const t1 = Math.max(...steps.map((s) => t(s.finishedAt) || now), t(d.status.completionTime) || 0);
  const span = Math.max(1, t1 - t0);
  const W = 1000,
    ROW = 18,
    LABEL = 180;
  const x = (ms) => LABEL + ((ms - t0) / span) * (W - LABEL - 10);
  const rows = steps.map((s, i) => {
    const y = i * ROW + 4;
    const parts = [
      svg('text', { x: 4, y: y + 11 }, `${s.id} ${s.kind === 'Tool' ? `tool/${s.tool}` : 'model'} ${s.phase}`),
    ];
    const wait0 = t(s.approval?.requestedAt);
    const start = t(s.startedAt);
    if (!Number.isNaN(wait0)) {
      const wait1 = t(s.approval?.at) || (s.phase === 'AwaitingApproval' ? now : start) || now;
      parts.push(
        svg(
          'rect',
          { class: 'bar-wait', x: x(wait0), y, height: ROW - 6, width: Math.max(2, x(wait1) - x(wait0)) },
          svg('title', {}, `approval wait ${duration(wait1 - wait0)}`),
        ),
      );
    } else if (s.phase === 'AwaitingApproval') {
      parts.push(svg('rect', { class: 'bar-wait', x: x(t0), y, height: ROW - 6, width: 2 }));
    }
    if (!Number.isNaN(start)) {
      const end = t(s.finishedAt) || now;
      const failed = s.phase === 'Failed' || s.retry;
      parts.push(
        svg(
          'rect',
          {
            class: failed ? 'bar-failed' : `bar-${s.kind}`,
            x: x(start),
            y,
            height: ROW - 6,
            width: Math.max(2, x(end) - x(start)),
          },
          svg(
            'title',
            {},
            `${duration(end - start)}${retryText(s.retry)}`,
          ),
        ),
      );
      if (s.retry)
        parts.push(
          svg(
            'text',
            { x: Math.min(W - 200, x(end) + 4), y: y + 11 },
            `retry ${s.retry.attempt} ${s.retry.errorClass}`,
          ),
        );
    }
    return svg('g', { 'data-testid': 'timeline-step' }, ...parts);
  });
  return el(
    'div',
    {},
    svg(
      'svg',
      {
        class: 'timeline',
        viewBox: `0 0 ${W} ${steps.length * ROW + 8}`,
        role: 'img',
        'aria-label': 'step timeline',
      },
      ...rows,
    ),
    el(
      'p',
      { class: 'muted' },
      `${duration(span)} from the first step to ${d.status.completionTime ? 'the end' : 'now'}; ` +
        'blue model call, green tool pod, amber approval wait, red failed or retried.',
    ),
  );
}

/** A failed attempt's error class and message, and when the next one starts. */
function retryText(r) {
  if (!r) return '';
  const next = r.nextRetryAt ? ` · next at ${r.nextRetryAt}` : '';
  return ` · retry ${r.attempt}: ${r.errorClass}: ${r.errorMessage}${next}`;
}

/** " · approved by alice: looks safe". */
function approvalText(a) {
  if (!a) return '';
  return ` · ${a.decision.toLowerCase()}${a.by ? ` by ${a.by}` : ''}${a.comment ? `: ${a.comment}` : ''}`;
}

function tokensTable(d) {
  const rows = d.steps
    .filter((v) => v.entry && v.entry.kind === 'ModelResponse')
    .map((v) => {
      const u = v.entry.response.usage;
      return [
        String(v.step.turn),
        String(v.step.id),
        u.input_tokens,
        u.output_tokens,
        u.cache_read_input_tokens ?? 0,
        u.cache_creation_input_tokens ?? 0,
      ];
    });
  return table(['TURN', 'STEP', 'INPUT', 'OUTPUT', 'CACHE READ', 'CACHE WRITE'], rows);
}

function transcript(d) {
  const out = [];
  if (d.spec.systemPrompt)
    out.push(el('div', { class: 'turn' }, el('h3', {}, 'System prompt'), el('pre', {}, d.spec.systemPrompt)));
  out.push(el('div', { class: 'turn' }, el('h3', {}, 'Task'), el('pre', {}, d.spec.prompt)));
  // A tool step's input is the model's tool_use block with the step's id.
  const inputs = new Map();
  for (const { entry } of d.steps) {
    if (entry && entry.kind === 'ModelResponse') {
      for (const b of entry.response.content) if (b.type === 'tool_use') inputs.set(b.id, b.input ?? {});
    }
  }
  for (const { step, entry } of d.steps) {
    if (step.kind === 'Model') {
      const blocks =
        entry && entry.kind === 'ModelResponse'
          ? entry.response.content.map(block)
          : [
              el(
                'p',
                { class: 'muted' },
                `(${step.phase}${step.outcome ? `/${step.outcome}` : ''}; no journal entry yet)`,
              ),
            ];
      out.push(
        el(
          'div',
          { class: 'turn model', 'data-testid': 'transcript-step', 'data-step': step.id },
          el('h3', {}, `Turn ${step.turn} · assistant · step ${step.id}`),
          blocks,
        ),
      );
    } else {
      const isErr = entry && entry.isError;
      const meta = [
        `Tool ${step.tool} · step ${step.id} · ${step.phase}`,
        step.podName ? ` · pod ${step.podName}` : '',
        entry && entry.exitCode !== undefined ? ` · exit ${entry.exitCode}` : '',
        approvalText(step.approval),
      ];
      out.push(
        el(
          'div',
          { class: `turn tool${isErr ? ' err' : ''}`, 'data-testid': 'transcript-step', 'data-step': step.id },
          el('h3', {}, meta.join('')),
          inputs.has(step.toolUseId)
            ? el('details', {}, el('summary', {}, 'Input'),
              el('pre', { 'data-testid': 'tool-input' }, JSON.stringify(inputs.get(step.toolUseId), null, 2)))
            : null,
          entry && entry.kind === 'ToolResult'
            ? el('pre', { 'data-testid': 'tool-output' }, entry.output)
            : el('p', { class: 'muted' }, `(${step.phase}; no output journaled yet)`),
          entry && entry.truncated
            ? el('p', { class: 'warn' }, 'output truncated to limits.maxToolOutputBytes')
            : null,
        ),
      );
    }
  }
  if (d.status.result) out.push(el('div', { class: 'turn' }, el('h3', {}, 'Result'), el('pre', {}, d.status.result)));
  return out;
}

function block(b) {
  if (b.type === 'text') return el('pre', { 'data-testid': 'model-text' }, b.text);
  if (b.type === 'tool_use')
    return el(
      'div',
      {},
      el('strong', {}, `→ tool call ${b.name} (${b.id})`),
      el('pre', {}, JSON.stringify(b.input ?? {}, null, 2)),
    );
  if (b.type === 'thinking') return el('pre', { class: 'muted' }, b.thinking);
  return el('pre', { class: 'muted' }, `[${b.type}]`);
}
