import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { Secret } from '../secret.js';

/** Credentials every request must carry; none means the dashboard may only listen on loopback. */
export interface DashboardAuth {
  /** `Authorization: Bearer <token>`; browsers may send it as the password of basic auth (any user name). */
  token?: Secret;
  /** HTTP basic auth, for browsers. */
  basic?: { user: string; password: Secret };
}

export const AUTH_ENV = {
  token: 'CLAUDE_BATCH_DASHBOARD_TOKEN',
  user: 'CLAUDE_BATCH_DASHBOARD_USER',
  password: 'CLAUDE_BATCH_DASHBOARD_PASSWORD',
} as const;

/** A dashboard setting that is unsafe or incomplete; nothing was started. */
export class DashboardConfigError extends Error {
  override name = 'DashboardConfigError';
}

/** Reads the credentials from CLAUDE_BATCH_DASHBOARD_TOKEN, or _USER and _PASSWORD (both or neither). */
export function authFromEnv(env: NodeJS.ProcessEnv = process.env): DashboardAuth {
  const auth: DashboardAuth = {};
  const token = env[AUTH_ENV.token];
  if (token !== undefined && token !== '') auth.token = new Secret(token);
  const user = env[AUTH_ENV.user];
  const password = env[AUTH_ENV.password];
  const hasUser = user !== undefined && user !== '';
  const hasPassword = password !== undefined && password !== '';
  if (hasUser !== hasPassword) {
    throw new DashboardConfigError(
      `set both ${AUTH_ENV.user} and ${AUTH_ENV.password} for basic auth (only ${hasUser ? AUTH_ENV.user : AUTH_ENV.password} is set)`,
    );
  }
  if (hasUser && hasPassword) auth.basic = { user, password: new Secret(password) };
  return auth;
}

function hasCredentials(auth: DashboardAuth | undefined): boolean {
  return auth?.token !== undefined || auth?.basic !== undefined;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Whether a host name or address only reaches this machine: `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = stripBrackets(host.trim().toLowerCase());
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * Refuses to serve beyond loopback without credentials: the dashboard shows prompts and can pause
 * the queue (or, through Bull Board, delete jobs).
 */
export function assertSafeBinding(host: string, auth: DashboardAuth | undefined): void {
  if (isLoopbackHost(host) || hasCredentials(auth)) return;
  throw new DashboardConfigError(
    `refusing to listen on ${host}: beyond loopback the dashboard needs credentials. Set ${AUTH_ENV.token}, ` +
      `or ${AUTH_ENV.user} and ${AUTH_ENV.password}, or listen on 127.0.0.1 (the default).`,
  );
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Compares in time independent of where (or whether) the values differ, including their lengths. */
function constantTimeEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** Whether an `Authorization` header value carries the configured credentials. */
function isAuthorized(header: string | undefined, auth: DashboardAuth): boolean {
  if (!header) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') {
    return auth.token !== undefined && constantTimeEqual(value, auth.token.reveal());
  }
  if (scheme !== 'basic') return false;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  let ok = false;
  if (auth.basic) {
    // Both comparisons always run, so the time taken says nothing about which one failed.
    const userOk = constantTimeEqual(user, auth.basic.user);
    const passwordOk = constantTimeEqual(password, auth.basic.password.reveal());
    ok = userOk && passwordOk;
  }
  if (auth.token !== undefined && constantTimeEqual(password, auth.token.reveal())) ok = true;
  return ok;
}

const REALM = 'Basic realm="claude-batch dashboard", charset="UTF-8"';

/** Requires the credentials on every request (when any are configured). */
export function requireAuth(auth: DashboardAuth | undefined) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!auth || !hasCredentials(auth)) return next();
    if (isAuthorized(req.headers.authorization, auth)) return next();
    res.status(401).set('WWW-Authenticate', REALM).type('text/plain').send('authentication required\n');
  };
}

/**
 * Without credentials the dashboard listens on loopback only; a page on another site could still
 * reach it by pointing its own domain at 127.0.0.1 (DNS rebinding). Such requests carry that foreign
 * name in `Host`, so only loopback names (and the configured host) are served.
 */
export function requireLocalHostHeader(auth: DashboardAuth | undefined, boundHost: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (hasCredentials(auth)) return next();
    const host = hostnameOf(req.headers.host ?? '');
    if (host !== null && (isLoopbackHost(host) || host === stripBrackets(boundHost.toLowerCase())))
      return next();
    res
      .status(403)
      .type('text/plain')
      .send('forbidden: unexpected Host header (use http://127.0.0.1 or localhost)\n');
  };
}

function hostnameOf(hostHeader: string): string | null {
  try {
    return stripBrackets(new URL(`http://${hostHeader}/`).hostname.toLowerCase());
  } catch {
    return null;
  }
}

/**
 * Refuses state-changing requests sent by another site's page (cross-site request forgery): a form
 * on any site can POST to a dashboard on localhost. Browsers mark such requests with `Sec-Fetch-Site`
 * and `Origin`; clients like curl send neither and are let through.
 */
export function requireSameOrigin(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  let sameOrigin = true;
  if (typeof site === 'string') {
    // Current browsers: the most reliable signal.
    sameOrigin = site === 'same-origin' || site === 'none';
  } else if (typeof origin === 'string' && origin !== '') {
    // Older browsers: Origin names the page's site (`null` when hidden, refused too).
    sameOrigin = origin !== 'null' && hostnameAndPort(origin) === (req.headers.host ?? '').toLowerCase();
  }
  if (sameOrigin) return next();
  res.status(403).json({ error: 'cross-site request refused' });
}

function hostnameAndPort(origin: string): string | null {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return null;
  }
}
