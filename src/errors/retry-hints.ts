/**
 * The server's own word on when to try again, in the order the SDK honours them:
 * `retry-after-ms`, then `retry-after` (seconds, or an HTTP date). Returns ms, or null when
 * the response gave no usable hint.
 */
export function retryAfterMs(
  headers: Readonly<Record<string, string>>,
  now: number = Date.now(),
): number | null {
  const ms = headers['retry-after-ms'];
  if (ms !== undefined) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const after = headers['retry-after'];
  if (after !== undefined) {
    const seconds = Number(after);
    if (after.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    // An HTTP date has a weekday and month name; bare numbers (even negative ones) are not dates.
    const date = /[a-z]/i.test(after) ? Date.parse(after) : NaN;
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return null;
}

/** `x-should-retry: true|false` overrides the table, as it does in the SDK; null when absent. */
export function shouldRetryHeader(headers: Readonly<Record<string, string>>): boolean | null {
  const value = headers['x-should-retry'];
  if (value === 'true') return true;
  if (value === 'false') return false;
  return null;
}
