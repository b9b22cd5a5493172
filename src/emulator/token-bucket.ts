/**
 * A token bucket as the API describes its limits: capacity equals the per-minute limit, it refills
 * continuously at limit/60 per second, and it starts full. The level may go below zero when a request
 * is charged more than was available (a prompt larger than the whole bucket, or output counted as
 * produced); later requests then wait until the debt is refilled.
 */
/** Refill arithmetic in floating point must not make a request wait one more second than retry-after said. */
const EPSILON = 1e-9;

export class TokenBucket {
  #level: number;
  #last: number;
  readonly #perMs: number;

  constructor(
    /** Capacity, i.e. the per-minute limit. */
    readonly capacity: number,
    private readonly clock: () => number,
  ) {
    this.#level = capacity;
    this.#last = clock();
    this.#perMs = capacity / 60_000;
  }

  /** The current level after refill. */
  level(): number {
    const now = this.clock();
    // A clock that steps back (an injected one, or NTP) must not drain the bucket.
    if (now > this.#last) {
      this.#level = Math.min(this.capacity, this.#level + (now - this.#last) * this.#perMs);
      this.#last = now;
    }
    return this.#level;
  }

  /** Milliseconds until the level reaches `amount` (capped at capacity, so a too-large request can pass from a full bucket). */
  msUntil(amount: number): number {
    const need = Math.min(amount, this.capacity) - this.level();
    return need <= EPSILON ? 0 : need / this.#perMs;
  }

  /** Whether `amount` (capped at capacity) is available now. */
  has(amount: number): boolean {
    return this.level() >= Math.min(amount, this.capacity) - EPSILON;
  }

  take(amount: number): void {
    this.level();
    this.#level -= amount;
  }

  /** Gives back tokens, e.g. the unused part of a max_tokens reservation; never above capacity. */
  give(amount: number): void {
    this.level();
    this.#level = Math.min(this.capacity, this.#level + amount);
  }

  msUntilFull(): number {
    return (this.capacity - this.level()) / this.#perMs;
  }
}
