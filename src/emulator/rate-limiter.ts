/**
 * Per-model RPM / ITPM / OTPM buckets: admission, charging, settlement and the rate-limit headers.
 * Admission checks every bucket before charging any, so a request refused by one limit consumes none.
 */
import type { OtpmMode, ResolvedLimits, ResolvedRateLimits } from './options.js';
import { TokenBucket } from './token-bucket.js';

export type LimitName = 'requests' | 'input_tokens' | 'output_tokens';

interface ModelBuckets {
  readonly limits: ResolvedRateLimits;
  readonly rpm: TokenBucket | null;
  readonly itpm: TokenBucket | null;
  readonly otpm: TokenBucket | null;
}

export interface Refusal {
  limit: LimitName;
  /** The configured per-minute value of that limit. */
  limitValue: number;
  /** Whole seconds, >= 1. */
  retryAfterSeconds: number;
  message: string;
}

/** What an admitted request holds until it ends, so settlement hits the buckets it was charged on. */
export interface Ticket {
  readonly otpm: TokenBucket | null;
  readonly mode: OtpmMode;
  readonly reserved: number;
}

const NO_TICKET: Ticket = { otpm: null, mode: 'produced', reserved: 0 };

const LIMIT_WORDS: Readonly<Record<LimitName, string>> = {
  requests: 'requests per minute',
  input_tokens: 'input tokens per minute',
  output_tokens: 'output tokens per minute',
};

function rateLimitMessage(limit: LimitName, value: number): string {
  return (
    `This request would exceed the rate limit for your organization of ${value} ${LIMIT_WORDS[limit]}. ` +
    'For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for ' +
    'current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.'
  );
}

export class RateLimiter {
  #limits: ResolvedLimits;
  #buckets = new Map<string, ModelBuckets | null>();

  constructor(
    limits: ResolvedLimits,
    private readonly clock: () => number,
  ) {
    this.#limits = limits;
  }

  /** Replaces the limits; every bucket starts full again. */
  setLimits(limits: ResolvedLimits): void {
    this.#limits = limits;
    this.#buckets.clear();
  }

  /** Refills every bucket (reset). */
  reset(): void {
    this.#buckets.clear();
  }

  #for(model: string): ModelBuckets | null {
    let b = this.#buckets.get(model);
    if (b === undefined) {
      const limits = this.#limits.byModel.get(model) ?? this.#limits.fallback;
      b =
        limits === null || (limits.rpm === null && limits.itpm === null && limits.otpm === null)
          ? null
          : {
              limits,
              rpm: limits.rpm === null ? null : new TokenBucket(limits.rpm, this.clock),
              itpm: limits.itpm === null ? null : new TokenBucket(limits.itpm, this.clock),
              otpm: limits.otpm === null ? null : new TokenBucket(limits.otpm, this.clock),
            };
      this.#buckets.set(model, b);
    }
    return b;
  }

  /**
   * Checks every limit of the model; if all pass, charges them and returns a ticket, else returns the
   * refusal with the longest wait (so retrying after retry-after cannot fail on another limit at once).
   */
  admit(model: string, inputTokens: number, maxTokens: number): Ticket | Refusal {
    const b = this.#for(model);
    if (b === null) return NO_TICKET;
    const outputNeed = b.limits.otpmMode === 'reserve' ? maxTokens : 1;
    const rpmWait = waitMs(b.rpm, 1);
    const itpmWait = waitMs(b.itpm, inputTokens);
    const otpmWait = waitMs(b.otpm, outputNeed);
    const longest = Math.max(rpmWait, itpmWait, otpmWait);
    if (longest >= 0) {
      const [limit, bucket] =
        longest === rpmWait
          ? (['requests', b.rpm] as const)
          : longest === itpmWait
            ? (['input_tokens', b.itpm] as const)
            : (['output_tokens', b.otpm] as const);
      const value = bucket?.capacity ?? 0;
      return {
        limit,
        limitValue: value,
        retryAfterSeconds: Math.max(1, Math.ceil(longest / 1000)),
        message: rateLimitMessage(limit, value),
      };
    }
    b.rpm?.take(1);
    b.itpm?.take(inputTokens);
    const reserved = b.limits.otpmMode === 'reserve' ? maxTokens : 0;
    if (reserved > 0) b.otpm?.take(reserved);
    return { otpm: b.otpm, mode: b.limits.otpmMode, reserved };
  }

  /** Charges the output a request actually produced (and returns the unused part of a reservation). */
  settle(ticket: Ticket, outputTokens: number): void {
    if (ticket.otpm === null) return;
    if (ticket.mode === 'reserve') ticket.otpm.give(ticket.reserved - outputTokens);
    else ticket.otpm.take(outputTokens);
  }

  /**
   * `anthropic-ratelimit-*` headers, as a flat [name, value, ...] list, for every response as the
   * live API sends them: from the model's buckets where a limit is configured, and from the
   * effectively unlimited {@link UNLIMITED_TIER} for the rest (or for a request with no model yet), so
   * a client that adapts to the headers is never throttled by an emulator without limits.
   * Token `remaining` is rounded down to the thousand, as the API does; `reset` is when the bucket is full.
   */
  headers(model: string | null): readonly string[] {
    const b = model === null ? null : this.#for(model);
    const now = this.clock();
    // The common case (no limits for this model) shares one list, rebuilt once per second.
    if (b === null) return unlimitedHeaders(now);
    const out: string[] = [];
    push(out, 'requests', b.rpm, UNLIMITED_TIER.rpm, now, 1);
    push(out, 'input-tokens', b.itpm, UNLIMITED_TIER.itpm, now, 1000);
    push(out, 'output-tokens', b.otpm, UNLIMITED_TIER.otpm, now, 1000);
    return out;
  }

  /** A view of every bucket in use, for stats. */
  snapshot(): Record<string, Partial<Record<LimitName, { limit: number; remaining: number }>>> {
    const out: Record<string, Partial<Record<LimitName, { limit: number; remaining: number }>>> = {};
    for (const [model, b] of this.#buckets) {
      if (b === null) continue;
      const entry: Partial<Record<LimitName, { limit: number; remaining: number }>> = {};
      if (b.rpm) entry.requests = { limit: b.rpm.capacity, remaining: Math.floor(b.rpm.level()) };
      if (b.itpm) entry.input_tokens = { limit: b.itpm.capacity, remaining: Math.floor(b.itpm.level()) };
      if (b.otpm) entry.output_tokens = { limit: b.otpm.capacity, remaining: Math.floor(b.otpm.level()) };
      out[model] = entry;
    }
    return out;
  }
}

/** -1 when the bucket (if any) has `need` now, else the ms until it will. */
function waitMs(bucket: TokenBucket | null, need: number): number {
  if (bucket === null || bucket.has(need)) return -1;
  return bucket.msUntil(need);
}

export function isRefusal(result: Ticket | Refusal): result is Refusal {
  return 'limit' in result;
}

/**
 * What the headers report for a limit that is not configured: far above any test or benchmark, so
 * "no limits" stays no limits for a client reading them (1,000,000 requests and 1,000,000,000 tokens
 * per minute; always full).
 */
const UNLIMITED_TIER = { rpm: 1_000_000, itpm: 1_000_000_000, otpm: 1_000_000_000 } as const;

/** The reset time of an always-full limit, as text, and the all-unlimited header list: per second. */
let fullSecond = -1;
let fullText = '';
let unlimitedList: readonly string[] = [];
function fullAt(now: number): string {
  const second = Math.ceil(now / 1000);
  if (second !== fullSecond) {
    fullSecond = second;
    fullText = new Date(second * 1000).toISOString().slice(0, 19) + 'Z';
    const list: string[] = [];
    push(list, 'requests', null, UNLIMITED_TIER.rpm, now, 1);
    push(list, 'input-tokens', null, UNLIMITED_TIER.itpm, now, 1000);
    push(list, 'output-tokens', null, UNLIMITED_TIER.otpm, now, 1000);
    unlimitedList = list;
  }
  return fullText;
}

function unlimitedHeaders(now: number): readonly string[] {
  fullAt(now);
  return unlimitedList;
}

function push(
  out: string[],
  name: string,
  bucket: TokenBucket | null,
  unlimited: number,
  now: number,
  roundTo: number,
): void {
  if (bucket === null) {
    const value = String(unlimited);
    out.push(
      `anthropic-ratelimit-${name}-limit`,
      value,
      `anthropic-ratelimit-${name}-remaining`,
      value,
      `anthropic-ratelimit-${name}-reset`,
      fullAt(now),
    );
    return;
  }
  const level = Math.max(0, bucket.level());
  const remaining = Math.floor(level / roundTo) * roundTo;
  // RFC 3339 in whole seconds (rounded up, so "full by then" stays true), like the API's own headers.
  const reset =
    new Date(Math.ceil((now + bucket.msUntilFull()) / 1000) * 1000).toISOString().slice(0, 19) + 'Z';
  out.push(
    `anthropic-ratelimit-${name}-limit`,
    String(bucket.capacity),
    `anthropic-ratelimit-${name}-remaining`,
    String(remaining),
    `anthropic-ratelimit-${name}-reset`,
    reset,
  );
}
