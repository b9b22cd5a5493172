/**
 * What keeps this process's requests in flight from reaching the budget right now (issue 16):
 * - `budget`: requests wait for the shared rate budget, so more in flight would only wait longer;
 * - `api_concurrency`: requests wait for a slot of the API's concurrency limit (learned from its 429s);
 * - `concurrency`: every slot is busy and the budget has room, so the sizer is raising the cap;
 * - `ceiling`: the same at `--concurrency`, the most this process may have in flight;
 * - `idle`: fewer requests than slots (nothing to send, or the queue is paused).
 */
export type InFlightLimiter = 'budget' | 'api_concurrency' | 'concurrency' | 'ceiling' | 'idle';

/** What the sizer reads of the worker at each tick. */
export interface SizerGauges {
  /** Requests this process has taken and not finished (waiting or in flight). */
  active(): number;
  /** Of those, how many wait for the shared rate budget. */
  waitingForBudget(): number;
  /** Of those, how many wait for a slot of the API's concurrency limit. */
  waitingForSlot(): number;
}

export interface ConcurrencySizerOptions {
  /** The most requests this process may hold at once: `--concurrency`. */
  ceiling: number;
  /** Where the cap starts (and a ramp restarts after idling). Default min(ceiling, 16). */
  initial?: number | undefined;
  /** The least the cap shrinks to. Default min(ceiling, 4). */
  floor?: number | undefined;
  /** Growth per tick while every slot is busy and the budget has room. Default 1.25. */
  growth?: number | undefined;
  /** Slots kept above those sending when the budget is what limits. Default 1.25. */
  headroom?: number | undefined;
}

export interface SizerState {
  /** The cap in force: how many requests this process takes at once. */
  concurrency: number;
  ceiling: number;
  limitedBy: InFlightLimiter;
  /** Recent API call latency (EWMA, ms), null before the first call. */
  latencyMs: number | null;
}

/** Weight of each new latency sample in the moving average. */
const LATENCY_WEIGHT = 0.1;

/**
 * Sizes this process's in-flight cap the way Little's law says it must be: requests in flight =
 * admitted rate x latency. It needs neither figure: it raises the cap gradually (x1.25 a tick:
 * the API answers a sharp ramp with a 429, its "acceleration limit", anthropic-api.md's error
 * table) while every slot is busy and nothing waits for the budget, and
 * lowers it to what is really being sent (plus headroom) while requests wait for the budget. A
 * process with `--rpm 600` and 3-8 s generations settles near 60 in flight; one with 4,000 RPM
 * and 10 s near 700, if `--concurrency` allows. The cap is BullMQ's worker concurrency (it takes
 * no more jobs than that), so a waiting request holds no job it cannot send soon.
 */
export class ConcurrencySizer {
  readonly #ceiling: number;
  readonly #floor: number;
  readonly #initial: number;
  readonly #growth: number;
  readonly #headroom: number;
  #concurrency: number;
  #limitedBy: InFlightLimiter = 'idle';
  #latencyMs: number | null = null;

  constructor(
    options: ConcurrencySizerOptions,
    private readonly gauges: SizerGauges,
  ) {
    this.#ceiling = Math.max(1, Math.floor(options.ceiling));
    this.#floor = Math.min(this.#ceiling, Math.max(1, options.floor ?? 4));
    this.#initial = Math.min(this.#ceiling, Math.max(this.#floor, options.initial ?? 16));
    this.#growth = Math.max(1.01, options.growth ?? 1.25);
    this.#headroom = Math.max(1, options.headroom ?? 1.25);
    this.#concurrency = this.#initial;
  }

  get concurrency(): number {
    return this.#concurrency;
  }

  /** One call's latency (from send to answer), for `status`. */
  observeLatency(ms: number): void {
    this.#latencyMs =
      this.#latencyMs === null ? ms : this.#latencyMs + LATENCY_WEIGHT * (ms - this.#latencyMs);
  }

  /** Re-sizes from what the worker is doing now. Returns the new cap. */
  tick(): number {
    const active = this.gauges.active();
    const forBudget = this.gauges.waitingForBudget();
    const forSlot = this.gauges.waitingForSlot();
    if (forBudget > 0) {
      // The budget limits: what is sending is what it admits (rate x latency); keep a little more.
      const sending = Math.max(0, active - forBudget - forSlot);
      this.#limitedBy = 'budget';
      this.#concurrency = clamp(Math.ceil(Math.max(sending, 1) * this.#headroom), this.#floor, this.#ceiling);
    } else if (forSlot > 0) {
      this.#limitedBy = 'api_concurrency';
    } else if (active >= this.#concurrency) {
      this.#limitedBy = this.#concurrency >= this.#ceiling ? 'ceiling' : 'concurrency';
      this.#concurrency = clamp(Math.ceil(this.#concurrency * this.#growth), this.#floor, this.#ceiling);
    } else {
      this.#limitedBy = 'idle';
      // Nothing to send for a while: the next burst ramps again from the start, not at once.
      if (active === 0) this.#concurrency = Math.min(this.#concurrency, Math.max(this.#initial, this.#floor));
    }
    return this.#concurrency;
  }

  state(): SizerState {
    return {
      concurrency: this.#concurrency,
      ceiling: this.#ceiling,
      limitedBy: this.#limitedBy,
      latencyMs: this.#latencyMs === null ? null : Math.round(this.#latencyMs),
    };
  }
}

function clamp(n: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, n));
}
