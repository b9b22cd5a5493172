import { describe, expect, it } from 'vitest';
import { RateLimiter, isRefusal } from '../../../src/emulator/rate-limiter.js';
import { validateLimits } from '../../../src/emulator/options.js';
import { TokenBucket } from '../../../src/emulator/token-bucket.js';

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('TokenBucket', () => {
  it('starts full, refills continuously at capacity/60 per second, never above capacity', () => {
    const c = clock();
    const bucket = new TokenBucket(60, c.now);
    expect(bucket.level()).toBe(60);
    bucket.take(60);
    expect(bucket.level()).toBe(0);
    c.advance(500);
    expect(bucket.level()).toBeCloseTo(0.5);
    c.advance(10 * 60_000);
    expect(bucket.level()).toBe(60);
  });

  it('msUntil answers when an amount will be there, capped at capacity', () => {
    const c = clock();
    const bucket = new TokenBucket(120, c.now);
    bucket.take(120);
    expect(bucket.msUntil(2)).toBeCloseTo(1000);
    expect(bucket.msUntil(1_000_000)).toBeCloseTo(60_000);
    expect(bucket.has(1)).toBe(false);
    c.advance(500);
    expect(bucket.has(1)).toBe(true);
  });

  it('can go into debt, which later requests wait out', () => {
    const c = clock();
    const bucket = new TokenBucket(60, c.now);
    bucket.take(90);
    expect(bucket.level()).toBe(-30);
    expect(bucket.msUntil(1)).toBeCloseTo(31_000);
  });

  it('give never exceeds capacity; a clock stepping back does not drain', () => {
    const c = clock();
    const bucket = new TokenBucket(10, c.now);
    bucket.take(4);
    bucket.give(100);
    expect(bucket.level()).toBe(10);
    bucket.take(5);
    c.advance(-5_000);
    expect(bucket.level()).toBe(5);
  });

  it('waiting exactly the computed time is enough despite floating point', () => {
    for (const capacity of [3, 7, 50, 4000, 30_000]) {
      const c = clock();
      const bucket = new TokenBucket(capacity, c.now);
      bucket.take(capacity);
      const ms = bucket.msUntil(1);
      c.advance(Math.ceil(ms / 1000) * 1000);
      expect(bucket.has(1)).toBe(true);
    }
  });
});

describe('RateLimiter', () => {
  it('checks every limit before charging any', () => {
    const c = clock();
    const limiter = new RateLimiter(validateLimits({ rpm: 10, itpm: 100 }), c.now);
    expect(isRefusal(limiter.admit('m', 80, 10))).toBe(false);
    const refusal = limiter.admit('m', 50, 10);
    expect(isRefusal(refusal) && refusal.limit).toBe('input_tokens');
    expect(limiter.snapshot().m).toEqual({
      requests: { limit: 10, remaining: 9 },
      input_tokens: { limit: 100, remaining: 20 },
    });
  });

  it('reports the limit with the longest wait', () => {
    const c = clock();
    const limiter = new RateLimiter(validateLimits({ rpm: 1, itpm: 60 }), c.now);
    limiter.admit('m', 60, 1);
    const refusal = limiter.admit('m', 60, 1);
    // Both are empty; a request comes back in 60 s, 60 input tokens take 60 s too: requests first on ties.
    expect(isRefusal(refusal) && [refusal.limit, refusal.retryAfterSeconds]).toEqual(['requests', 60]);
    c.advance(30_000);
    const later = limiter.admit('m', 60, 1);
    expect(isRefusal(later) && later.retryAfterSeconds).toBe(30);
  });

  it('headers round token remaining down to the thousand and give an RFC 3339 reset', () => {
    const c = clock();
    const limiter = new RateLimiter(validateLimits({ rpm: 50, itpm: 30_000, otpm: 8_000 }), c.now);
    const ticket = limiter.admit('m', 1_500, 100);
    if (isRefusal(ticket)) throw new Error('refused');
    // Output is charged when produced (the default mode), i.e. at settlement.
    expect(limiter.headers('m')).toContain('8000');
    limiter.settle(ticket, 100);
    const headers = limiter.headers('m') ?? [];
    const map = new Map<string, string>();
    for (let i = 0; i < headers.length; i += 2) map.set(headers[i] ?? '', headers[i + 1] ?? '');
    expect(map.get('anthropic-ratelimit-requests-remaining')).toBe('49');
    expect(map.get('anthropic-ratelimit-input-tokens-remaining')).toBe('28000');
    expect(map.get('anthropic-ratelimit-output-tokens-remaining')).toBe('7000');
    expect(map.get('anthropic-ratelimit-input-tokens-reset')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(limiter.headers('unlimited-model')).toContain('anthropic-ratelimit-requests-limit');
    // No limits configured: the unlimited tier, every limit always full.
    const unlimited = new RateLimiter(validateLimits(undefined), c.now).headers('m');
    const byName = new Map<string, string>();
    for (let i = 0; i < unlimited.length; i += 2) byName.set(unlimited[i] ?? '', unlimited[i + 1] ?? '');
    expect(byName.get('anthropic-ratelimit-requests-limit')).toBe('1000000');
    expect(byName.get('anthropic-ratelimit-requests-remaining')).toBe('1000000');
    expect(byName.get('anthropic-ratelimit-input-tokens-limit')).toBe('1000000000');
    expect(byName.get('anthropic-ratelimit-output-tokens-remaining')).toBe('1000000000');
  });
});
