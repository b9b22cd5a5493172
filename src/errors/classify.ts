import { effectiveType, type ApiFailure } from './api-failure.js';
import { backoffDelayMs, type BackoffOptions } from './backoff.js';
import {
  fallbackRule,
  foldMessage,
  lookup,
  RULES_BY_ERROR_CODE,
  RULES_BY_MESSAGE,
  RULES_BY_TYPE,
  TYPE_BY_STATUS,
  type ErrorRule,
} from './error-table.js';
import { retryAfterMs, shouldRetryHeader } from './retry-hints.js';

/** What to do with one failed call: the single decision point, free of side effects. */
export type Verdict =
  | {
      action: 'retry';
      /** When to send again: the larger of the server's hint and our jittered backoff. */
      delayMs: number;
      /** The server's hint alone (ms), null if it gave none. */
      hintMs: number | null;
      type: string;
      rule: ErrorRule;
    }
  | { action: 'dead-letter'; type: string; rule: ErrorRule };

export interface ClassifyContext {
  /** How many retries this request already had (0 before the first retry). */
  retriesSoFar: number;
  backoff: BackoffOptions;
  random?: (() => number) | undefined;
  now?: number;
}

/**
 * Finds the rule for a failure: error code, then (for code-less answers) the message, then body
 * type, then status. The reported type is always the API's own (or, for a typeless answer, the
 * status's), so dead-letter entries and results lines keep what the API sent; the rule's
 * `condition` says what the runner makes of it.
 */
export function ruleFor(failure: ApiFailure): { type: string; rule: ErrorRule } {
  const type =
    failure.type ??
    (failure.status === null ? undefined : lookup(TYPE_BY_STATUS, failure.status)) ??
    effectiveType(failure);
  if (failure.errorCode) {
    const byCode = lookup(RULES_BY_ERROR_CODE, failure.errorCode);
    if (byCode) return { type, rule: byCode };
  } else if (failure.status !== null) {
    const folded = foldMessage(failure.message);
    const byMessage = RULES_BY_MESSAGE.find(
      (m) => m.statuses.includes(failure.status!) && m.pattern.test(folded),
    );
    if (byMessage) return { type, rule: byMessage.rule };
  }
  const rule = lookup(RULES_BY_TYPE, type);
  if (rule) return { type, rule };
  if (failure.status === null) return { type, rule: RULES_BY_TYPE['connection_error']! };
  return { type, rule: fallbackRule(failure.status) };
}

/**
 * Decides retry or dead-letter. Server hints win: `x-should-retry` can veto or force a retry of a
 * request-scoped error (never of a key- or model-wide one, which would fail again for certain),
 * and `retry-after(-ms)` sets the floor of the delay.
 */
export function classify(failure: ApiFailure, context: ClassifyContext): Verdict {
  const { type, rule } = ruleFor(failure);
  let retry = rule.disposition === 'retryable';
  const header = shouldRetryHeader(failure.headers);
  if (header !== null && rule.scope === 'request') retry = header;
  if (!retry) return { action: 'dead-letter', type, rule };

  const hintMs = retryAfterMs(failure.headers, context.now);
  const backoff = backoffDelayMs(context.retriesSoFar, context.backoff, context.random);
  return { action: 'retry', delayMs: Math.max(hintMs ?? 0, backoff), hintMs, type, rule };
}

/**
 * How long every worker should hold the failure's model class (ms), or null: only an answer the
 * table says is about the class's rate (a plain 429 rate_limit_error, a ramp limit) holds it; a
 * spend cap or any other 429 does not. The hint is the server's `retry-after`.
 */
export function classHoldMs(failure: ApiFailure, now?: number): number | null {
  if (failure.status !== 429 || !ruleFor(failure).rule.holdsClass) return null;
  return retryAfterMs(failure.headers, now);
}
