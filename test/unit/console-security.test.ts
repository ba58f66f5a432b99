/**
 * The console server's gatekeeping, over real HTTP on 127.0.0.1 with a stand-in for the live runs
 * list (no cluster: every request here is refused or answered before any API call). Each test
 * fails if its protection is removed from security.ts or server.ts.
 */
import { timingSafeEqual } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Kube } from '../../src/plugin/kube.ts';
import {
  cookieName, cookieValue, hostAllowed, newToken, originAllowed, refuse, tokenMatches,
} from '../../src/plugin/console/security.ts';
import { startConsole, type RunningConsole, type RunSource } from '../../src/plugin/console/server.ts';
import { parseDecision } from '../../src/plugin/console/decide.ts';

// The real timingSafeEqual, watched: the token comparison must go through it.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const source: RunSource = {
  scope: { allNamespaces: true, namespaces: [], notes: [] },
  snapshot: () => [],
  subscribe: () => () => undefined,
  start: () => Promise.resolve(),
  stop: () => undefined,
};
const kube = { server: 'https://unused', namespace: 'default', flags: {} } as unknown as Kube;

let c: RunningConsole;
let host = '';
let cookie = '';
beforeAll(async () => {
  c = await startConsole({ kube, source });
  host = `127.0.0.1:${c.port}`;
  cookie = `${cookieName(c.port)}=${c.token}`;
});
afterAll(async () => { await c.close(); });

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** One raw HTTP request to the console, with exactly the headers given (no defaults but Host). */
function send(path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: c.port, path, method, headers: { Host: host, ...headers }, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
const decision = JSON.stringify({ verb: 'approve', step: 2, text: '' });

describe('console security checks', () => {
  it('the token is 256 random bits, and compared in constant time whatever its length', () => {
    const a = newToken();
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newToken()).not.toBe(a);
    expect(tokenMatches(a, a)).toBe(true);
    expect(tokenMatches(`${a.slice(0, -1)}${a.endsWith('A') ? 'B' : 'A'}`, a)).toBe(false);
    expect(tokenMatches(a.slice(0, 10), a)).toBe(false);
    expect(tokenMatches(undefined, a)).toBe(false);
    expect(tokenMatches('', a)).toBe(false);
    // Every comparison, right length or not, is crypto.timingSafeEqual's.
    const compare = vi.mocked(timingSafeEqual);
    compare.mockClear();
    tokenMatches(a, a);
    tokenMatches(a.slice(1), a);
    expect(compare).toHaveBeenCalledTimes(2);
  });

  it('only the bound address is a valid Host and Origin', () => {
    expect(hostAllowed('127.0.0.1:8080', 8080)).toBe(true);
    expect(hostAllowed('localhost:8080', 8080)).toBe(true);
    for (const h of ['evil.example:8080', '127.0.0.1:8081', '127.0.0.1', '0.0.0.0:8080', undefined]) expect(hostAllowed(h, 8080)).toBe(false);
    expect(originAllowed('http://127.0.0.1:8080', 8080)).toBe(true);
    for (const o of ['http://evil.example', 'https://127.0.0.1:8080', 'null', 'http://127.0.0.1:8081', undefined]) expect(originAllowed(o, 8080)).toBe(false);
  });

  it('cookies are read by exact name', () => {
    expect(cookieValue('a=1; agentrun_console_80=tok; b=2', 'agentrun_console_80')).toBe('tok');
    expect(cookieValue('xagentrun_console_80=tok', 'agentrun_console_80')).toBeUndefined();
    expect(refuse({ method: 'GET', host: 'localhost:80', origin: undefined, cookie: 'agentrun_console_81=t', contentType: undefined }, 80, 't'))
      .toMatchObject({ status: 401 });
  });

  it('listens on 127.0.0.1 only', async () => {
    const r = await send('/', { Cookie: cookie });
    expect(r.status).toBe(200);
    // Not on another local address of the machine (the listening socket is the loopback one).
    await expect(new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.2', port: c.port, path: '/' }, resolve);
      req.on('error', reject);
      req.end();
    })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a request without the token, or with a wrong one, is refused', async () => {
    for (const headers of [{} as Record<string, string>, { Cookie: `${cookieName(c.port)}=${newToken()}` }, { Cookie: `other=${c.token}` }]) {
      for (const path of ['/', '/console.js', '/api/events', '/api/info', '/api/runs/ns/x']) {
        const r = await send(path, headers);
        expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(r.body).not.toContain('<script');
      }
    }
    expect((await send(`/?token=${newToken()}`, {})).status).toBe(401);
  });

  it('the token in the URL becomes an HttpOnly SameSite=Strict cookie and leaves the URL', async () => {
    const r = await send(`/?token=${c.token}`, {});
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
    expect(r.headers['set-cookie']).toEqual([`${cookieName(c.port)}=${c.token}; Path=/; HttpOnly; SameSite=Strict`]);
  });

  it('a wrong Host is refused even with the token (DNS rebinding)', async () => {
    for (const h of [`evil.example:${c.port}`, `127.0.0.1:${c.port + 1}`, 'evil.example']) {
      expect((await send('/', { Cookie: cookie, Host: h })).status).toBe(421);
      expect((await send(`/?token=${c.token}`, { Host: h })).headers['set-cookie']).toBeUndefined();
    }
    expect((await send('/', { Cookie: cookie, Host: `localhost:${c.port}` })).status).toBe(200);
  });

  it('a state-changing request from another origin, or with no Origin, or not JSON, is refused (CSRF)', async () => {
    const json = { Cookie: cookie, 'Content-Type': 'application/json' };
    expect((await send('/api/runs/ns/x/decisions', { ...json, Origin: 'http://evil.example' }, 'POST', decision)).status).toBe(403);
    expect((await send('/api/runs/ns/x/decisions', { ...json, Origin: 'null' }, 'POST', decision)).status).toBe(403);
    expect((await send('/api/runs/ns/x/decisions', json, 'POST', decision)).status).toBe(403);
    const form = { Cookie: cookie, Origin: `http://${host}`, 'Content-Type': 'application/x-www-form-urlencoded' };
    expect((await send('/api/runs/ns/x/decisions', form, 'POST', 'verb=approve')).status).toBe(415);
    // The same origin with a JSON body gets through the checks (to a body check here: step 0 is no step).
    const bad = await send('/api/runs/ns/x/decisions', { ...json, Origin: `http://${host}` }, 'POST', JSON.stringify({ verb: 'approve', step: 0, text: '' }));
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('bad decision: step');
  });

  it('every response carries a strict CSP, no framing, nosniff, and never a CORS header', async () => {
    for (const [path, headers] of [['/', { Cookie: cookie }], ['/console.js', { Cookie: cookie }], ['/', {}], ['/nope', { Cookie: cookie }]] as const) {
      const r = await send(path, { ...headers, Origin: 'http://evil.example' });
      const csp = String(r.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toMatch(/https?:/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(r.headers['x-frame-options']).toBe('DENY');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(Object.keys(r.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
    }
    const preflight = await send('/api/runs/ns/x/decisions', { Cookie: cookie, Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' }, 'OPTIONS');
    expect(preflight.status).toBe(403);
    expect(Object.keys(preflight.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });

  it('the page has no inline script: everything runs from /console.js under the CSP', async () => {
    const page = (await send('/', { Cookie: cookie })).body;
    expect(page).toMatch(/<script type="module" src="\/console.js"><\/script>/);
    expect(page.match(/<script/g)).toHaveLength(1);
    expect(page).not.toMatch(/\son[a-z]+=/);
    for (const module of ['console', 'dom', 'state', 'runs', 'inbox', 'run']) {
      const js = await send(`/${module}.js`, { Cookie: cookie });
      expect(js.status).toBe(200);
      expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
      // Tenant data reaches the page only as text nodes and attribute values.
      expect(js.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|srcdoc/);
    }
    // Nothing else on disk is served.
    for (const path of ['/../server.ts', '/%2e%2e/server.ts', '/assets/dom.js', '/security.ts']) {
      expect((await send(path, { Cookie: cookie })).status, path).toBe(404);
    }
  });

  it('a body over the limit, and an undecidable decision, are refused before any API call', async () => {
    const headers = { Cookie: cookie, Origin: `http://${host}`, 'Content-Type': 'application/json' };
    const big = await send('/api/runs/ns/x/decisions', headers, 'POST', JSON.stringify({ verb: 'approve', step: 1, text: 'x'.repeat(20_000) }));
    expect(big.status).toBe(400);
    expect(() => parseDecision({ verb: 'reject', step: 2, text: '  ' })).toThrow('a rejection needs a reason');
    expect(() => parseDecision({ verb: 'delete', step: 2, text: '' })).toThrow('bad decision: verb');
    expect(() => parseDecision({ verb: 'approve', step: 2, text: '', extra: 1 })).toThrow('bad decision');
    expect(parseDecision({ verb: 'approve', step: 2, text: 'ok' })).toEqual({ verb: 'approve', step: 2, text: 'ok' });
    expect((await send('/api/runs/Bad_Name/x', { Cookie: cookie })).status).toBe(404);
  });
});
