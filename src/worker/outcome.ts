import type { CallResult } from '../claude/claude-client.js';
import { effectiveType } from '../errors/api-failure.js';
import type { BackoffOptions } from '../errors/backoff.js';
import { classify } from '../errors/classify.js';
import type { Condition, ErrorRule } from '../errors/error-table.js';
import type { DeadLetterReason, LastError } from '../queue/jobs.js';

/**
 * How one attempt at a request ends, as a value. Deciding it has no side effects;
 * `applyOutcome` is the one place that acts on it.
 */
export type Outcome =
  | { kind: 'succeeded'; call: Extract<CallResult, { ok: true }> }
  | {
      kind: 'retry';
      delayMs: number;
      lastError: LastError;
      /** The failure may have been billed: this retry may pay twice (counted per request, batch, /metrics). */
      maybeBilled: boolean;
    }
  | {
      kind: 'dead-letter';
      reason: DeadLetterReason;
      lastError: LastError;
      message?: string;
      /** The runner-level condition behind it (a request not sent because its model's breaker is open: `model`). */
      condition?: Condition | null;
    }
  /**
   * An error that will repeat for every request of the key (`key`) or of the model (`model`):
   * this request dead-letters with its own error, and the breaker acts for the rest, with the
   * rule's condition and fix.
   */
  | {
      kind: 'trip-breaker';
      scope: 'key' | 'model';
      lastError: LastError;
      errorCode: string | null;
      rule: ErrorRule;
    }
  /** The batch was canceled before this request was sent. */
  | { kind: 'canceled' };

/** The retry budget of one request. */
export interface RetryPolicy {
  /** API calls per request, the first included. Default 10. */
  maxAttempts: number;
  /** Total time from the first call to the last retry's send time. Default 3,600,000 ms. */
  maxRetryWaitMs: number;
  /** Retries after a failure that may have been billed (timeout, cut connection). Default 2. */
  maxMaybeBilled: number;
  backoff: BackoffOptions;
}

export interface AttemptContext {
  /** API calls made, this one included. */
  calls: number;
  /** When the first call was sent (ms). */
  firstAt: number;
  /** Retries so far that followed a failure that may have been billed. */
  maybeBilledSoFar?: number;
  now: number;
  random?: () => number;
}

export function decideOutcome(result: CallResult, policy: RetryPolicy, context: AttemptContext): Outcome {
  if (result.ok) return { kind: 'succeeded', call: result };
  const { failure } = result;
  const verdict = classify(failure, {
    retriesSoFar: context.calls - 1,
    backoff: policy.backoff,
    random: context.random,
    now: context.now,
  });
  const lastError: LastError = {
    status: failure.status,
    type: verdict.type || effectiveType(failure),
    message: failure.message,
    request_id: failure.requestId,
  };
  if (verdict.action === 'dead-letter') {
    if (verdict.rule.scope === 'request') return { kind: 'dead-letter', reason: 'terminal', lastError };
    return {
      kind: 'trip-breaker',
      scope: verdict.rule.scope,
      lastError,
      errorCode: failure.errorCode,
      rule: verdict.rule,
    };
  }

  if (context.calls >= policy.maxAttempts) {
    return {
      kind: 'dead-letter',
      reason: 'retries_exhausted',
      lastError,
      message: `gave up after ${context.calls} calls; last error: ${failure.message}`,
    };
  }
  if (context.now + verdict.delayMs - context.firstAt > policy.maxRetryWaitMs) {
    return {
      kind: 'dead-letter',
      reason: 'retries_exhausted',
      lastError,
      message: `gave up: the next retry would come ${Math.round((context.now + verdict.delayMs - context.firstAt) / 1000)} s after the first call, over the ${Math.round(policy.maxRetryWaitMs / 1000)} s retry budget; last error: ${failure.message}`,
    };
  }
  const maybeBilled = failure.maybeBilled === true;
  const soFar = context.maybeBilledSoFar ?? 0;
  if (maybeBilled && soFar >= policy.maxMaybeBilled) {
    return {
      kind: 'dead-letter',
      reason: 'maybe_billed',
      lastError,
      message:
        `not sent again: sent ${soFar + 1} times with no complete answer (last: ${failure.message}); ` +
        'each may have been processed and billed, and the API has no idempotency key. ' +
        '`claude-batch dlq retry --id` it to accept paying again.',
    };
  }
  return { kind: 'retry', delayMs: verdict.delayMs, lastError, maybeBilled };
}
