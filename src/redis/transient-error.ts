/**
 * The one check of whether a Redis error is worth waiting out rather than failing on: the socket
 * errors of an outage, the replies of a Redis that is starting, failing over or resharding, and a
 * Redis refusing writes for a while (out of memory under `noeviction`, a failed background save).
 * Used by the rate budget, the worker's error log and the outcome writes after a paid call.
 */

/** Socket errors of a Redis outage (or of an unresolvable host while DNS recovers). */
const REDIS_CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Error replies that a working Redis stops giving on its own, or once an operator acts. */
const TRANSIENT_REPLY =
  /^(ERR )?(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|MOVED|ASK|OOM|MISCONF)\b/;
/** ioredis's own messages while it reconnects or refreshes a cluster's slots. */
const CLIENT_MESSAGES =
  /Connection is closed|Stream isn't writeable|max retries per request|Failed to refresh slots cache|None of startup nodes|Connection timeout/i;

export function isRedisConnectionError(err: unknown): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && REDIS_CONNECTION_ERROR_CODES.has(code);
}

export function isTransientRedisError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isRedisConnectionError(err) || err.name === 'MaxRetriesPerRequestError') return true;
  return TRANSIENT_REPLY.test(err.message) || CLIENT_MESSAGES.test(err.message);
}
