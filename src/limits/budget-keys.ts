/**
 * Where the shared budget lives in Redis. The budget belongs to the API key's account, not to a
 * runner's queue prefix: two runners (two prefixes) using one key share one budget. Each model class
 * is one bucket, kept in one hash under its own hash tag, so a Redis Cluster keeps all of a bucket's
 * state in one slot (the Lua scripts touch exactly that key):
 *
 *   {cb-budget-<accountId>-<class>}:state
 *
 * `accountId` is {@link Secret.fingerprint} of the API key (16 hex, never the key itself); `<class>`
 * is the class name with every character outside [A-Za-z0-9._-] written as %XX (so `*`, `{`, `}`
 * and `:` never reach the key and two names never share one).
 */
const BUDGET_KEY_PREFIX = 'cb-budget-';

function encodeClassName(name: string): string {
  let out = '';
  for (const ch of name) {
    if (/^[A-Za-z0-9._-]$/.test(ch)) out += ch;
    else
      out += [...Buffer.from(ch, 'utf8')]
        .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
        .join('');
  }
  return out;
}

/** The one key holding the bucket of `className` for the account `accountId`. */
export function budgetKey(accountId: string, className: string): string {
  checkAccountId(accountId);
  return `{${BUDGET_KEY_PREFIX}${accountId}-${encodeClassName(className)}}:state`;
}

/**
 * The limits the API stated for a class that no configuration limits (its
 * `anthropic-ratelimit-*-limit` headers), shared so that every process uses them from its first
 * request: a hash `rpm`, `itpm`, `otpm`, `at`, in the bucket's hash slot.
 */
export function learnedLimitsKey(accountId: string, className: string): string {
  checkAccountId(accountId);
  return `{${BUDGET_KEY_PREFIX}${accountId}-${encodeClassName(className)}}:learned`;
}

/** A SCAN MATCH pattern finding every budget key of the account (for `delete` and cleanup). */
export function budgetKeyPattern(accountId: string): string {
  checkAccountId(accountId);
  return `{${BUDGET_KEY_PREFIX}${accountId}-*}:*`;
}

function checkAccountId(accountId: string): void {
  // A fingerprint (16 hex), or another id without glob, hash-tag or ':' characters. A '-' is allowed
  // (e.g. `url-<hex>`): a pure-hex fingerprint's pattern can never match such an id's keys.
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(accountId)) {
    throw new Error(
      `budget account id must match [A-Za-z0-9_.-]{1,64} (use Secret.fingerprint()), got a ${accountId.length}-character value`,
    );
  }
}

/**
 * The in-flight controller's state for (account, class), in the class bucket's slot (same hash
 * tag as {@link budgetKey}, so a script may touch both):
 *   {cb-budget-<accountId>-<class>}:leases       sorted set: lease id -> expiry (Redis ms)
 *   {cb-budget-<accountId>-<class>}:concurrency  hash: the learned limit and the probe state
 * Leases expire on their own (a SIGKILLed worker's come back after the lease TTL) and are renewed
 * by their holder while the call lasts. See src/limits/in-flight-controller.ts.
 */
export function inFlightLeasesKey(accountId: string, className: string): string {
  checkAccountId(accountId);
  return `{${BUDGET_KEY_PREFIX}${accountId}-${encodeClassName(className)}}:leases`;
}

/** See {@link inFlightLeasesKey}. */
export function concurrencyKey(accountId: string, className: string): string {
  checkAccountId(accountId);
  return `{${BUDGET_KEY_PREFIX}${accountId}-${encodeClassName(className)}}:concurrency`;
}
