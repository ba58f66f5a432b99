/**
 * `kubectl agentrun ui` end to end: the real plugin executable serves the console against the
 * real apiserver and operator (mock model), as client-certificate users with different RBAC
 * (personas.ts), and a real Chromium (Debian's, driven by playwright-core) clicks through it.
 * Without /usr/bin/chromium these tests fail: install it (`apt-get install -y --no-install-recommends chromium`).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveKey, decidedByKey } from '../../src/api/approval.ts';
import {
  createRun, finished, getRun, MOCK_ENDPOINT, recordingTool, startAgentEnv, waitForRun, type AgentEnv,
} from '../harness/agent-env.ts';
import { freePort, repoRoot } from '../harness/control-plane.ts';
import { clients, kubectl } from '../harness/kube.ts';
import { text, toolUse } from '../harness/mock-model-server.ts';
import { personas, type Personas } from '../harness/personas.ts';
import { startConsole, type ConsoleProcess } from '../harness/console-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const BIN = join(repoRoot, 'bin', 'kubectl-agentrun');
const SHOTS = join(repoRoot, '.agentrun', 'console');
/** Markup a tenant might write anywhere: it must show as these characters, never run. */
const HOSTILE = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><b>bold</b>`;

type Ui = ConsoleProcess;

/** Starts `kubectl agentrun ui --no-open` as a persona and reads the URL it prints. */
async function startUi(kubeconfig: string, namespace: string, flags: readonly string[] = []): Promise<Ui> {
  return startConsole(BIN, ['ui', '--no-open', '-n', namespace, ...flags], {
    env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
  });
}

/** Ctrl-C: the console must stop, cleanly. */
async function stopUi(ui: Ui): Promise<number | null> {
  if (ui.child.exitCode !== null) return ui.child.exitCode;
  const exited = new Promise<number | null>((resolve) => { ui.child.once('exit', (code) => { resolve(code); }); });
  ui.child.kill('SIGINT');
  return exited;
}

/** A raw request with the headers given (Host included: fetch would not let us forge it). */
function raw(port: number, path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, setHost: !('Host' in headers) }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => { b += d; }).on('end', () => { resolve({ status: res.statusCode ?? 0, body: b }); });
    });
    req.on('error', reject);
    req.end(body);
  });
}

let env: AgentEnv;
let people: Personas;
let browser: Browser;
let approverUi: Ui;
let editorUi: Ui;
let approverPage: Page;
let editorPage: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the console tests drive Debian's Chromium (apt-get install -y --no-install-recommends chromium)`);
  }
  await mkdir(SHOTS, { recursive: true });
  env = await startAgentEnv('console');
  people = await personas(env.namespace, 'console');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const editorPort = await freePort();
  [approverUi, editorUi] = await Promise.all([
    startUi(people.approver, env.namespace), startUi(people.editor, env.namespace, ['--port', String(editorPort)]),
  ]);
  expect(editorUi.port).toBe(editorPort);
  approverPage = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  editorPage = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await approverPage.goto(approverUi.url);
  await editorPage.goto(editorUi.url);
});

afterAll(async () => {
  // Whatever beforeAll got to start before it failed.
  const started = { browser, uis: [approverUi, editorUi], env } as { browser?: Browser; uis: (Ui | undefined)[]; env?: AgentEnv };
  await started.browser?.close();
  for (const ui of started.uis) if (ui) expect(await stopUi(ui)).toBe(0);
  await started.env?.close();
});

/** A run whose `shell` tool needs approval; the model calls it once with `input`, then answers `answer`. */
async function gatedRun(name: string, input: Record<string, unknown>, answer = `${name} finished`, prompt = 'run a command'): Promise<void> {
  const key = `[console-${name}]`;
  env.model.script(key, [{ content: [text(`I will run it. ${HOSTILE}`), toolUse('shell', input)] }, { content: [text(answer)] }]);
  await createRun(env.namespace, name, {
    model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } },
    prompt: `${key} ${prompt}`,
    tools: [{ name: 'shell', description: `Runs a command ${HOSTILE}`, requiresApproval: true, container: recordingTool(env.execLog, `printf '%s' '${HOSTILE}'`) }],
  });
}

/** When the run first has a pending approval, as a watch of the apiserver sees it (ms epoch). */
function pendingSeen(namespace: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const kc = clients().kc;
    let abort: AbortController | undefined;
    const timer = setTimeout(() => { abort?.abort(); reject(new Error(`${name} never awaited approval`)); }, 60_000);
    void new k8s.Watch(kc).watch(`/apis/agentrun.dev/v1alpha1/namespaces/${namespace}/agentruns`, { fieldSelector: `metadata.name=${name}` },
      (_type, obj: { status?: { pendingApprovals?: unknown[] } }) => {
        if ((obj.status?.pendingApprovals?.length ?? 0) > 0) { clearTimeout(timer); abort?.abort(); resolve(Date.now()); }
      }, () => undefined).then((a) => { abort = a; }, reject);
  });
}

const inboxItem = (page: Page, name: string) => page.locator(`[data-testid=inbox-item][data-run="${env.namespace}/${name}"]`);

/** Resolves when the page next changes anything under <main> (a watch event redrew the view). */
function nextRedraw(page: Page): Promise<unknown> {
  return page.evaluate(`new Promise((resolve) => new MutationObserver((_, observer) => { observer.disconnect(); resolve(); })
    .observe(document.getElementById('main'), { childList: true, subtree: true, characterData: true }))`);
}

describe('kubectl agentrun ui', () => {
  it('a waiting run reaches the inbox within a second; the approver approves it in the page and the apiserver records them', async () => {
    await approverPage.goto(`${new URL(approverUi.url).origin}/#/approvals`);
    // The token left the address bar: a cookie carries the session now.
    expect(approverPage.url()).not.toContain('token=');
    const seen = pendingSeen(env.namespace, 'approve-me');
    // The page notes when the item enters its DOM (same clock as the test: one machine).
    const selector = `[data-testid=inbox-item][data-run="${env.namespace}/approve-me"]`;
    await approverPage.evaluate(`new MutationObserver((_, observer) => {
      if (document.querySelector(${JSON.stringify(selector)})) { globalThis.shownAt = Date.now(); observer.disconnect(); }
    }).observe(document.body, { childList: true, subtree: true })`);
    await gatedRun('approve-me', { command: `echo ${HOSTILE}` });
    const item = inboxItem(approverPage, 'approve-me');
    await item.waitFor({ timeout: 60_000 });
    const shown = await approverPage.evaluate(() => (globalThis as { shownAt?: number }).shownAt ?? Number.NaN);
    const latency = shown - await seen;
    expect(latency, 'inbox latency after a watch of the apiserver saw the pending approval').toBeLessThan(1000);
    // And from the operator's own clock: pendingApprovals[].since is set just before its status write.
    const since = Date.parse((await getRun(env.namespace, 'approve-me')).status?.pendingApprovals?.[0]?.since ?? '');
    expect(shown - since, 'inbox latency after the operator decided to wait').toBeLessThan(1000);
    console.log(`[console] inbox latency: ${latency} ms after the apiserver watch, ${shown - since} ms after pendingApprovals[].since`);

    // The whole input (from the journal, verified), the tool's description, who asked and since when.
    // (The description arrives with the whole input, read from the journal after the item shows.)
    await expect.poll(() => item.getByTestId('tool-description').textContent()).toBe(`Tool: Runs a command ${HOSTILE}`);
    expect(await item.getByTestId('full-input').textContent()).toBe(JSON.stringify({ command: `echo ${HOSTILE}` }));
    expect(await item.getByTestId('asked-by').textContent()).toBe('admin'); // created-by, recorded by the apiserver
    expect(await item.textContent()).toMatch(/waiting since \d{4}-\d\d-\d\dT/);
    await approverPage.screenshot({ path: join(SHOTS, 'approvals-inbox.png') });

    // Keyboard: focus the item, type a comment, then `a`.
    await item.getByTestId('reason').fill('looks harmless');
    await item.focus();
    await approverPage.keyboard.press('a');
    const run = await waitForRun(env.namespace, 'approve-me', 'finished', finished);
    expect(run.status?.phase).toBe('Succeeded');
    expect(run.metadata.annotations?.[approveKey(2)]).toBe('looks harmless');
    expect(run.metadata.annotations?.[decidedByKey(2)]).toBe(people.names.approver);
    expect(run.status?.steps?.[1]?.approval).toMatchObject({ decision: 'Approved', by: people.names.approver });
    await expect.poll(() => inboxItem(approverPage, 'approve-me').count(), { timeout: 10_000 }).toBe(0);
  });

  it('a user who may edit runs but not approve sees the apiserver refusal in the page, and nothing changes', async () => {
    await editorPage.goto(`${new URL(editorUi.url).origin}/#/approvals`);
    await gatedRun('not-yours', { command: 'echo hi' });
    const item = inboxItem(editorPage, 'not-yours');
    await item.waitFor({ timeout: 60_000 });
    // A watch event re-renders the inbox while the button is held down: the click must survive it.
    // (Cards used to be redrawn on every event, so mousedown and mouseup met two different buttons.)
    // The whole input (or why this persona cannot read it) has arrived: the layout has settled.
    await expect.poll(async () => (await item.getByTestId('tool-description').textContent())?.length).toBeGreaterThan(0);
    const approve = item.getByTestId('approve');
    await approve.hover();
    await editorPage.mouse.down();
    const rendered = nextRedraw(editorPage);
    await kubectl(['label', 'agentrun', 'not-yours', '-n', env.namespace, 'touched=yes']);
    await rendered;
    await editorPage.mouse.up();
    const result = item.getByTestId('decision-result');
    await expect.poll(() => result.textContent(), { timeout: 10_000 }).toContain(`user ${people.names.editor} may not decide on AgentRun steps`);
    expect(await result.textContent()).toMatch(/^Error from server \(Forbidden\): /);
    expect(await result.getAttribute('class')).toBe('refusal');
    await editorPage.screenshot({ path: join(SHOTS, 'approval-refused.png') });
    const run = await getRun(env.namespace, 'not-yours');
    expect(run.metadata.annotations?.[approveKey(2)]).toBeUndefined();
    expect(run.status?.pendingApprovals).toHaveLength(1);
    await kubectl(['patch', 'agentrun', 'not-yours', '-n', env.namespace, '--type', 'merge', '-p', '{"spec":{"cancel":true}}']);
  });

  it('tenant-written markup (prompt, model text, tool description, input and output) renders as inert text', async () => {
    await gatedRun('hostile', { command: HOSTILE }, `Done ${HOSTILE}`, HOSTILE);
    await waitForRun(env.namespace, 'hostile', 'awaiting approval', (r) => (r.status?.pendingApprovals?.length ?? 0) > 0);
    await kubectl(['annotate', 'agentrun', 'hostile', '-n', env.namespace, `${approveKey(2)}=${HOSTILE}`], { kubeconfig: people.approver });
    await waitForRun(env.namespace, 'hostile', 'finished', finished);
    const page = approverPage;
    await page.goto(`${new URL(approverUi.url).origin}/#/run/${env.namespace}/hostile`);
    const transcript = page.getByTestId('transcript');
    await expect.poll(() => transcript.textContent(), { timeout: 10_000 }).toContain(`Done ${HOSTILE}`);
    const all = await transcript.textContent() ?? '';
    expect(all).toContain(HOSTILE); // the prompt
    expect(all).toContain(`I will run it. ${HOSTILE}`); // model output
    expect(await page.getByTestId('tool-output').first().textContent()).toBe(HOSTILE); // tool output
    expect(JSON.parse(await page.getByTestId('tool-input').first().textContent() ?? '')).toEqual({ command: HOSTILE });
    expect(all).toContain(`approved by ${people.names.approver}: ${HOSTILE}`); // the approver's comment
    expect(await page.locator('main img, main script, main b').count()).toBe(0);
    expect(await page.locator('main').textContent()).not.toContain('[object');
    // The approver persona may not list Events: the page says so in the apiserver's words.
    expect(await page.getByTestId('events-error').textContent()).toContain('cannot list resource "events"');
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    // The timeline draws every step the run recorded.
    expect(await page.getByTestId('timeline-step').count()).toBe((await getRun(env.namespace, 'hostile')).status?.steps?.length);
    await page.screenshot({ path: join(SHOTS, 'run-page.png'), fullPage: true });
    // The live list shows it, filterable by phase.
    await page.goto(`${new URL(approverUi.url).origin}/#/`);
    await page.locator(`[data-testid=run-row][data-run="${env.namespace}/hostile"]`).waitFor();
    await page.getByTestId('filter-phase').selectOption('Running');
    await expect.poll(() => page.locator(`[data-testid=run-row][data-run="${env.namespace}/hostile"]`).count()).toBe(0);
    await page.getByTestId('filter-phase').selectOption('Succeeded');
    await expect.poll(() => page.locator(`[data-testid=run-row][data-run="${env.namespace}/hostile"]`).count()).toBe(1);
    await page.getByTestId('filter-phase').selectOption('');
    // A label selector half typed survives the watch events that arrive meanwhile.
    const labelFilter = page.getByTestId('filter-label');
    await labelFilter.focus();
    await page.keyboard.type('team=');
    const redrawn = nextRedraw(page);
    await kubectl(['label', 'agentrun', 'hostile', '-n', env.namespace, 'touched=yes']);
    await redrawn;
    await page.keyboard.type('a');
    expect(await labelFilter.inputValue()).toBe('team=a');
    await labelFilter.fill('');
    await labelFilter.press('Enter');
    // Keyboard: j/k move the selection, Enter opens the selected run.
    await gatedRun('second-row', { command: 'echo hi' });
    const rows = page.locator('[data-testid=run-row]');
    await expect.poll(() => rows.count()).toBeGreaterThanOrEqual(2);
    await page.locator('main').focus();
    await page.keyboard.press('j');
    expect(await rows.nth(1).getAttribute('class')).toContain('selected');
    await page.keyboard.press('k');
    expect(await rows.nth(0).getAttribute('class')).toContain('selected');
    const first = await rows.nth(0).getAttribute('data-run') ?? '';
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('run-title').textContent()).toContain(first);
  });

  it('--port must be a port; one in use is a clear error', async () => {
    await expect(startUi(people.approver, env.namespace, ['--port', '99999']))
      .rejects.toThrow('error: --port must be a port number (0-65535; 0 picks a free one), not "99999" (see kubectl agentrun ui --help)');
    await expect(startUi(people.approver, env.namespace, ['--port', String(approverUi.port)])).rejects.toThrow('EADDRINUSE');
  });

  it('refuses requests without the token, with a wrong Host, and cross-origin ones from another local page', async () => {
    const port = approverUi.port;
    expect((await raw(port, '/api/events', {})).status).toBe(401);
    expect((await raw(port, '/', {})).status).toBe(401);
    const [cookie] = (await approverPage.context().cookies()).filter((c) => c.name === `agentrun_console_${port}`);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    const session = `${cookie?.name ?? ''}=${cookie?.value ?? ''}`;
    expect((await raw(port, '/api/info', { Cookie: session })).status).toBe(200);
    expect((await raw(port, '/api/info', { Cookie: session, Host: `rebound.example:${port}` })).status).toBe(421);

    // An attacker's page on another local port, opened in the approver's browser (same site, other origin).
    await gatedRun('csrf', { command: 'echo hi' });
    await waitForRun(env.namespace, 'csrf', 'awaiting approval', (r) => (r.status?.pendingApprovals?.length ?? 0) > 0);
    const target = `http://127.0.0.1:${port}/api/runs/${env.namespace}/csrf/decisions`;
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(`<!doctype html><body>
<form id=f method=POST action="${target}" enctype="text/plain" target=sink><input name='{"verb":"approve","step":2,"text":"x","a":"' value='"}'></form>
<iframe name=sink></iframe><iframe id=framed src="http://127.0.0.1:${port}/"></iframe>
<script>
fetch(${JSON.stringify(target)}, { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
  body: JSON.stringify({ verb: 'approve', step: 2, text: 'csrf' }) }).finally(() => document.getElementById('f').submit());
fetch('http://127.0.0.1:${port}/api/info', { credentials: 'include' }).then(() => { window.readInfo = 'yes'; }, () => { window.readInfo = 'no'; });
</script></body>`);
    });
    await new Promise<void>((resolve) => { evil.listen(0, '127.0.0.1', resolve); });
    try {
      const page = await approverPage.context().newPage();
      const refused: number[] = [];
      page.on('response', (r) => { if (r.url().startsWith(target)) refused.push(r.status()); });
      await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      await expect.poll(() => page.evaluate(() => (globalThis as { readInfo?: string }).readInfo)).toBe('no');
      await expect.poll(() => refused.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      expect(refused.every((s) => s === 403)).toBe(true);
      // The console refuses to be framed: the frame's document is not the console.
      const framed = page.frames().find((f) => f.url().startsWith(`http://127.0.0.1:${port}`));
      expect(await framed?.locator('#main').count() ?? 0).toBe(0);
      await page.close();
    } finally {
      await new Promise((resolve) => { evil.close(resolve); });
    }
    const run = await getRun(env.namespace, 'csrf');
    expect(run.metadata.annotations?.[approveKey(2)]).toBeUndefined();
    expect(run.status?.pendingApprovals).toHaveLength(1);
    await kubectl(['patch', 'agentrun', 'csrf', '-n', env.namespace, '--type', 'merge', '-p', '{"spec":{"cancel":true}}']);
  });
});
