/**
 * decideOutcome's branches, above all the ways a request gives up: the retry budget by calls and by
 * total wait, and the cap on retries that may pay twice. Pure: no Redis, no clock but the context's.
 */
import { describe, expect, it } from 'vitest';
import type { CallResult } from '../../../src/claude/claude-client.js';
import type { ApiFailure } from '../../../src/errors/api-failure.js';
import { decideOutcome, type RetryPolicy } from '../../../src/worker/outcome.js';

const POLICY: RetryPolicy = {
  maxAttempts: 3,
  maxRetryWaitMs: 60_000,
  maxMaybeBilled: 1,
  backoff: { baseDelayMs: 1_000, maxDelayMs: 10_000 },
};
const NOW = 1_800_000_000_000;

function failed(status: number | null, type: string | null, extra: Partial<ApiFailure> = {}): CallResult {
  return {
    ok: false,
    failure: {
      status,
      type,
      errorCode: null,
      message: 'm',
      requestId: 'req_1',
      headers: {},
      transport: null,
      ...extra,
    },
  };
}
const ctx = (calls: number, extra = {}) => ({ calls, firstAt: NOW, now: NOW, random: () => 0.5, ...extra });

describe('decideOutcome', () => {
  it('a retryable failure within the budget is retried after the larger of hint and backoff', () => {
    const outcome = decideOutcome(
      failed(529, 'overloaded_error', { headers: { 'retry-after': '4' } }),
      POLICY,
      ctx(1),
    );
    expect(outcome).toMatchObject({ kind: 'retry', delayMs: 4_000, maybeBilled: false });
  });

  it('gives up by calls: the last allowed call failing dead-letters as retries_exhausted', () => {
    expect(decideOutcome(failed(500, 'api_error'), POLICY, ctx(2)).kind).toBe('retry');
    const outcome = decideOutcome(failed(500, 'api_error'), POLICY, ctx(3));
    expect(outcome).toMatchObject({
      kind: 'dead-letter',
      reason: 'retries_exhausted',
      lastError: { status: 500, type: 'api_error' },
      message: 'gave up after 3 calls; last error: m',
    });
  });

  it('gives up by total wait: a retry that would come past the budget dead-letters now', () => {
    // 50 s after the first call, with a 30 s retry-after: the retry would come at 80 s > 60 s.
    const late = ctx(1, { now: NOW + 50_000 });
    const outcome = decideOutcome(
      failed(429, 'rate_limit_error', { headers: { 'retry-after': '30' } }),
      POLICY,
      late,
    );
    expect(outcome).toMatchObject({ kind: 'dead-letter', reason: 'retries_exhausted' });
    expect(outcome.kind === 'dead-letter' && outcome.message).toMatch(
      /^gave up: the next retry would come 80 s after the first call, over the 60 s retry budget/,
    );
    // The same failure early enough is retried.
    expect(
      decideOutcome(failed(429, 'rate_limit_error', { headers: { 'retry-after': '30' } }), POLICY, ctx(1))
        .kind,
    ).toBe('retry');
  });

  it('caps retries that may pay twice: past maxMaybeBilled a timeout dead-letters as maybe_billed', () => {
    const timeout = failed(null, null, {
      transport: 'timeout',
      maybeBilled: true,
      message: 'Request timed out.',
    });
    expect(decideOutcome(timeout, POLICY, ctx(1, { maybeBilledSoFar: 0 }))).toMatchObject({
      kind: 'retry',
      maybeBilled: true,
    });
    const outcome = decideOutcome(timeout, POLICY, ctx(2, { maybeBilledSoFar: 1 }));
    expect(outcome).toMatchObject({ kind: 'dead-letter', reason: 'maybe_billed' });
    // A refused connection never reached the API: it is retried however many came before.
    const refused = failed(null, null, { transport: 'connection', neverSent: true, maybeBilled: false });
    expect(decideOutcome(refused, POLICY, ctx(2, { maybeBilledSoFar: 1 })).kind).toBe('retry');
  });

  it('a terminal request error dead-letters; a key-wide one trips the breaker with its rule', () => {
    expect(decideOutcome(failed(400, 'invalid_request_error'), POLICY, ctx(1))).toMatchObject({
      kind: 'dead-letter',
      reason: 'terminal',
    });
    const billing = decideOutcome(
      failed(400, 'invalid_request_error', { message: 'Your credit balance is too low' }),
      POLICY,
      ctx(1),
    );
    expect(billing).toMatchObject({ kind: 'trip-breaker', scope: 'key', rule: { condition: 'billing' } });
    expect(decideOutcome(failed(404, 'not_found_error'), POLICY, ctx(1))).toMatchObject({
      kind: 'trip-breaker',
      scope: 'model',
    });
  });
});
