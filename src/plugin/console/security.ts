/**
 * The console's gatekeeping, as pure functions of a request: a local web server that can approve
 * tool calls is a target for any web page the user visits (CSRF, DNS rebinding) and for any other
 * local user (who can reach 127.0.0.1 too). Each check here has a unit test that fails without it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** 32 random bytes: 256 bits, far beyond guessing over a loopback socket. */
const TOKEN_BYTES = 32;

/** A fresh per-session token, URL-safe. */
export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Compares a presented token with the session's in constant time (no early exit on the first wrong byte). */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(token, 'utf8');
  // timingSafeEqual needs equal lengths; comparing b with itself keeps the time independent of a's length.
  if (a.length !== b.length) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

/**
 * The session cookie's name. Cookies are not isolated by port, so two consoles on one machine
 * would overwrite each other's cookie under one name: the port is part of it.
 */
export function cookieName(port: number): string {
  return `agentrun_console_${port}`;
}

/** The Set-Cookie header that carries the token: not readable by script, never sent cross-site. */
export function sessionCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

/** A cookie's value from a Cookie header, if present. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The origins the console serves itself from. */
export function allowedHosts(port: number): readonly string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`];
}

/**
 * Host must name this server: a page on evil.example whose DNS later points at 127.0.0.1 (DNS
 * rebinding) sends `Host: evil.example:PORT`, and is refused here before anything else.
 */
export function hostAllowed(host: string | undefined, port: number): boolean {
  return host !== undefined && allowedHosts(port).includes(host.toLowerCase());
}

/**
 * A state-changing request must come from the console's own page: browsers send Origin on every
 * POST, and a cross-site page cannot forge it. A request with no Origin is refused too.
 */
export function originAllowed(origin: string | undefined, port: number): boolean {
  return origin !== undefined && allowedHosts(port).some((h) => origin === `http://${h}`);
}

/** Methods that change nothing; every other one needs the Origin check. */
export function isSafeMethod(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD';
}

/**
 * Headers on every response: scripts and styles only from this server (no inline script, so an
 * injected <script> would not run even if escaping failed), never framed, no MIME sniffing, no
 * referrer (the token never leaks in one), no caching of tenant data. No CORS header ever.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** Why a request is refused before it reaches a handler, or undefined when it may proceed. */
export interface Refusal {
  readonly status: number;
  readonly message: string;
}

/** The parts of an HTTP request the security checks look at. */
export interface RequestFacts {
  readonly method: string | undefined;
  readonly host: string | undefined;
  readonly origin: string | undefined;
  readonly cookie: string | undefined;
  readonly contentType: string | undefined;
}

/**
 * The checks every request passes, in order: Host (DNS rebinding), the session token (cookie,
 * constant time), then for state-changing requests Origin (CSRF) and a JSON body (an HTML form
 * cannot send application/json, a second line against cross-site posts).
 */
export function refuse(req: RequestFacts, port: number, token: string): Refusal | undefined {
  if (!hostAllowed(req.host, port)) {
    return { status: 421, message: 'wrong Host: the console answers only to 127.0.0.1 and localhost' };
  }
  if (!tokenMatches(cookieValue(req.cookie, cookieName(port)), token)) {
    return { status: 401, message: 'no valid session: open the URL kubectl agentrun ui printed (it has the token)' };
  }
  if (!isSafeMethod(req.method)) {
    if (!originAllowed(req.origin, port)) return { status: 403, message: 'cross-origin request refused' };
    if (!/^application\/json(;|$)/i.test(req.contentType ?? '')) {
      return { status: 415, message: 'a JSON body is required' };
    }
  }
  return undefined;
}
