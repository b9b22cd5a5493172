/** Options of the exponential backoff used when the server gives no (or a shorter) hint. */
export interface BackoffOptions {
  /** Delay scale of the first retry. Default 1,000 ms. */
  baseDelayMs: number;
  /** Cap of any single backoff delay. Default 60,000 ms. */
  maxDelayMs: number;
}

const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 1_000, maxDelayMs: 60_000 };

/**
 * Capped exponential backoff with full jitter (uniform in [0, min(cap, base·2^n)]), which spreads
 * the retries of many workers that failed together instead of sending them back in step.
 * `retryNumber` is 0 for the first retry.
 */
export function backoffDelayMs(
  retryNumber: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(retryNumber, 30));
  return Math.floor(random() * ceiling);
}
