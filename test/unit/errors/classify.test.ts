import { describe, expect, it } from 'vitest';
import type { ApiFailure } from '../../../src/errors/api-failure.js';
import { backoffDelayMs } from '../../../src/errors/backoff.js';
import { classHoldMs, classify, ruleFor } from '../../../src/errors/classify.js';
import { fixFor, RULES_BY_TYPE } from '../../../src/errors/error-table.js';
import { retryAfterMs } from '../../../src/errors/retry-hints.js';

const BACKOFF = { baseDelayMs: 1_000, maxDelayMs: 60_000 };
const ctx = { retriesSoFar: 0, backoff: BACKOFF, random: () => 0.5, now: 1_700_000_000_000 };

function failure(status: number | null, type: string | null, extra: Partial<ApiFailure> = {}): ApiFailure {
  return {
    status,
    type,
    errorCode: null,
    message: 'm',
    requestId: 'req_1',
    headers: {},
    transport: null,
    ...extra,
  };
}

describe('classification table: every row of the API error table', () => {
  const rows: Array<[number | null, string | null, 'retry' | 'dead-letter', string, string]> = [
    [400, 'invalid_request_error', 'dead-letter', 'request', 'invalid_request_error'],
    [401, 'authentication_error', 'dead-letter', 'key', 'authentication_error'],
    [403, 'permission_error', 'dead-letter', 'model', 'permission_error'],
    [403, 'billing_error', 'dead-letter', 'key', 'billing_error'],
    [402, 'billing_error', 'dead-letter', 'key', 'billing_error'],
    [404, 'not_found_error', 'dead-letter', 'model', 'not_found_error'],
    [413, 'request_too_large', 'dead-letter', 'request', 'request_too_large'],
    [429, 'rate_limit_error', 'retry', 'request', 'rate_limit_error'],
    [500, 'api_error', 'retry', 'request', 'api_error'],
    [529, 'overloaded_error', 'retry', 'request', 'overloaded_error'],
    [504, 'timeout_error', 'retry', 'request', 'timeout_error'],
    [409, 'conflict_error', 'retry', 'request', 'conflict_error'],
  ];
  for (const [status, type, action, scope, reported] of rows) {
    it(`${status} ${type} → ${action} (${scope}-wide)`, () => {
      const verdict = classify(failure(status, type), ctx);
      expect(verdict.action).toBe(action);
      expect(verdict.rule.scope).toBe(scope);
      expect(verdict.type).toBe(reported);
    });
  }

  it('the body type decides over the status: a 403 billing_error is key-wide, a 403 permission_error model-wide', () => {
    expect(ruleFor(failure(403, 'billing_error')).rule.scope).toBe('key');
    expect(ruleFor(failure(403, 'permission_error')).rule.scope).toBe('model');
    // A 400 status with a retryable type is retried: the type wins.
    expect(classify(failure(400, 'overloaded_error'), ctx).action).toBe('retry');
  });

  it('the 429 spend cap is terminal and key-wide, with no retry', () => {
    const verdict = classify(
      failure(429, 'rate_limit_error', { errorCode: 'enforced_spend_limit_reached' }),
      ctx,
    );
    expect(verdict.action).toBe('dead-letter');
    expect(verdict.rule.scope).toBe('key');
    expect(verdict.type).toBe('rate_limit_error');
  });

  it('a typeless body falls back to the status: a bare 413 from the edge', () => {
    const verdict = classify(failure(413, null), ctx);
    expect(verdict).toMatchObject({ action: 'dead-letter', type: 'request_too_large' });
  });

  it('408 without a body is retried as timeout_error', () => {
    expect(classify(failure(408, null), ctx)).toMatchObject({ action: 'retry', type: 'timeout_error' });
  });

  it('connection resets and client timeouts are retried', () => {
    expect(classify(failure(null, null, { transport: 'connection' }), ctx)).toMatchObject({
      action: 'retry',
      type: 'connection_error',
    });
    expect(classify(failure(null, null, { transport: 'timeout' }), ctx)).toMatchObject({
      action: 'retry',
      type: 'timeout_error',
    });
  });

  it('unknown types: 5xx retried, 4xx dead-lettered', () => {
    expect(classify(failure(502, 'new_error'), ctx).action).toBe('retry');
    expect(classify(failure(418, 'teapot_error'), ctx).action).toBe('dead-letter');
  });
});

describe('credits exhausted, in every shape the API sends it (anthropic-api.md, "What the live API has been seen to send")', () => {
  const LIVE =
    'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.';

  it.each<[number, string, string]>([
    [400, 'invalid_request_error', LIVE],
    [402, 'billing_error', LIVE],
    [403, 'billing_error', LIVE],
    [403, 'permission_error', LIVE],
    // Wording, case and punctuation drift.
    [400, 'invalid_request_error', 'YOUR CREDIT BALANCE IS TOO LOW to access the Anthropic API!'],
    [400, 'invalid_request_error', 'Your credit-balance is too low; please purchase credits.'],
    [400, 'invalid_request_error', 'Credit balance insufficient.'],
    [400, 'invalid_request_error', 'Insufficient credits to complete this request.'],
    [400, 'invalid_request_error', 'You have no remaining credits.'],
    [400, 'invalid_request_error', 'Your credit balance is exhausted.'],
    [400, 'invalid_request_error', 'Please go to Plans & Billing to purchase credits'],
  ])('%i %s "%s" → billing, key-wide; the type stays as sent', (status, type, message) => {
    const verdict = classify(failure(status, type, { message }), ctx);
    expect(verdict).toMatchObject({ action: 'dead-letter', type });
    expect(verdict.rule).toMatchObject({ scope: 'key', condition: 'billing' });
    expect(verdict.rule.fix).toMatch(/Top up credits.*dlq retry --type billing_error/);
  });

  it.each<[number, string, string]>([
    [400, 'invalid_request_error', 'max_tokens: 100000 > 64000, which is the maximum allowed'],
    [400, 'invalid_request_error', 'messages.0.content: credit card numbers are not allowed here'],
    [400, 'invalid_request_error', 'The credit balance field is not a valid parameter'],
    [429, 'rate_limit_error', 'Your credit balance is too low'],
    [500, 'api_error', 'Your credit balance is too low'],
  ])('%i %s "%s" is not billing', (status, type, message) => {
    expect(ruleFor(failure(status, type, { message })).rule.condition).not.toBe('billing');
  });

  it('an error code decides before the message', () => {
    const rule = ruleFor(
      failure(429, 'rate_limit_error', { errorCode: 'enforced_spend_limit_reached', message: LIVE }),
    ).rule;
    expect(rule.condition).toBe('spend_cap');
  });

  it('a 402 with no body type is billing by its status', () => {
    expect(ruleFor(failure(402, null)).rule).toMatchObject({ condition: 'billing', scope: 'key' });
  });
});

describe('a concurrency limit as a 429 (anthropic-api.md, "What the live API has been seen to send")', () => {
  const MESSAGE =
    'Number of concurrent connections has exceeded your rate limit. Please try again later or contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.';
  it('is retried after retry-after, without holding the class: the cure is fewer in flight', () => {
    const failure429 = failure(429, 'rate_limit_error', {
      message: MESSAGE,
      headers: { 'retry-after': '2' },
    });
    const verdict = classify(failure429, ctx);
    expect(verdict).toMatchObject({ action: 'retry', type: 'rate_limit_error', hintMs: 2_000 });
    expect(verdict.rule).toMatchObject({ concurrencyLimit: true });
    expect(verdict.rule.holdsClass).toBeUndefined();
    expect(classHoldMs(failure429)).toBeNull();
  });
  it('a plain rate-limit 429 holds the class for its retry-after', () => {
    const plain = failure(429, 'rate_limit_error', {
      message: "This request would exceed your organization's rate limit of 50 requests per minute.",
      headers: { 'retry-after': '3' },
    });
    expect(classHoldMs(plain)).toBe(3_000);
    expect(ruleFor(plain).rule.concurrencyLimit).toBeUndefined();
  });
});

describe('lookups never reach built-in object properties', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'])(
    'a body type %s is an unknown type, not a function from the prototype',
    (type) => {
      const verdict = classify(failure(400, type), ctx);
      expect(verdict).toMatchObject({ action: 'dead-letter', type });
      expect(verdict.rule.fix).toMatch(/Unexpected HTTP 400/);
      expect(classify(failure(503, type), ctx).action).toBe('retry');
      expect(ruleFor(failure(429, 'rate_limit_error', { errorCode: type })).rule.disposition).toBe(
        'retryable',
      );
      expect(fixFor(type)).toMatch(/Not in the error table/);
    },
  );
});

describe('fixFor: one fix text per type and condition', () => {
  it('a condition speaks over a type that would mislead', () => {
    expect(fixFor('invalid_request_error', 'billing')).toBe(RULES_BY_TYPE['billing_error']!.fix);
    expect(fixFor('invalid_request_error')).toBe(RULES_BY_TYPE['invalid_request_error']!.fix);
  });
  it("a type's own text wins when it speaks of the same condition", () => {
    expect(fixFor('not_found_error', 'model')).toBe(RULES_BY_TYPE['not_found_error']!.fix);
  });
});

describe('server hints win over our backoff', () => {
  it('retry-after (seconds) sets the floor of the delay', () => {
    const verdict = classify(failure(429, 'rate_limit_error', { headers: { 'retry-after': '7' } }), ctx);
    expect(verdict).toMatchObject({ action: 'retry', hintMs: 7_000 });
    expect(verdict.action === 'retry' && verdict.delayMs).toBeGreaterThanOrEqual(7_000);
  });

  it('retry-after-ms wins over retry-after', () => {
    expect(retryAfterMs({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1_500);
  });

  it('retry-after as an HTTP date', () => {
    const now = Date.parse('2026-11-26T10:00:00Z');
    expect(retryAfterMs({ 'retry-after': 'Thu, 26 Nov 2026 10:00:30 GMT' }, now)).toBe(30_000);
  });

  it('ignores unusable hints', () => {
    expect(retryAfterMs({ 'retry-after': 'soon' })).toBeNull();
    expect(retryAfterMs({ 'retry-after': '-3' })).toBeNull();
    expect(retryAfterMs({})).toBeNull();
  });

  it('the backoff is used when it is longer than the hint', () => {
    const verdict = classify(failure(529, 'overloaded_error', { headers: { 'retry-after': '1' } }), {
      ...ctx,
      retriesSoFar: 5,
      random: () => 0.99,
    });
    // 0.99 × min(60 s, 1 s × 2^5 = 32 s)
    expect(verdict.action === 'retry' && verdict.delayMs).toBe(Math.floor(0.99 * 32_000));
  });

  it('x-should-retry: false vetoes a retry; true forces one for request-scoped errors only', () => {
    expect(classify(failure(500, 'api_error', { headers: { 'x-should-retry': 'false' } }), ctx).action).toBe(
      'dead-letter',
    );
    expect(
      classify(failure(400, 'invalid_request_error', { headers: { 'x-should-retry': 'true' } }), ctx).action,
    ).toBe('retry');
    expect(
      classify(failure(401, 'authentication_error', { headers: { 'x-should-retry': 'true' } }), ctx).action,
    ).toBe('dead-letter');
  });
});

describe('backoff', () => {
  it('is full jitter under a doubling, capped ceiling', () => {
    expect(backoffDelayMs(0, BACKOFF, () => 0.999)).toBe(999);
    expect(backoffDelayMs(3, BACKOFF, () => 0.5)).toBe(4_000);
    expect(backoffDelayMs(20, BACKOFF, () => 0.5)).toBe(30_000);
    expect(backoffDelayMs(3, BACKOFF, () => 0)).toBe(0);
  });
});
