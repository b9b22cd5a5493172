import type { ErrorRule } from '../errors/error-table.js';
import { failureFromResultError } from '../errors/result-error.js';
import type { LastError, RequestJobData } from '../queue/jobs.js';
import { decideOutcome, type RetryPolicy } from '../worker/outcome.js';
import type { HostedResultLine } from './hosted-api.js';

/** The usage block of a hosted message (its `service_tier` is `batch`). */
interface HostedUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/**
 * What one hosted result line means for its request, as a value (deciding has no side effects;
 * the hosted runner's `applyLine` is the one place that acts on it). The same error table and
 * retry policy as the live path decide errored lines.
 */
export type LineOutcome =
  | {
      kind: 'succeeded';
      messageJson: string;
      usage: HostedUsage;
      stopReason: string | null;
    }
  /** A request's own terminal failure, or one out of retries: its dead-letter entry and errored line. */
  | { kind: 'dead-letter'; reason: 'terminal' | 'retries_exhausted'; lastError: LastError; message?: string }
  /**
   * A failure of the whole model: dead-lettered like a terminal one, and counted towards the
   * model's breaker.
   */
  | { kind: 'model-failure'; lastError: LastError; rule: ErrorRule }
  /**
   * A failure of the whole key (credits, key, spend limit, organisation): the key-wide breaker
   * trips; the request was not processed (not billed), so it is held again, not dead-lettered,
   * and goes out again once the breaker's fix resumes the queue.
   */
  | {
      kind: 'key-failure';
      lastError: LastError;
      errorCode: string | null;
      rule: ErrorRule;
      data: RequestJobData;
    }
  /** Held again for its batch's share, to be sent again on the path its batch takes now. */
  | { kind: 'resend'; data: RequestJobData; why: 'retry' | 'expired' | 'canceled' }
  | { kind: 'canceled' }
  | { kind: 'expired' };

export interface LineContext {
  retry: RetryPolicy;
  now: number;
  /** The batch was canceled: canceled lines end as such. */
  batchCanceled: boolean;
  /** The batch's deadline (ms) or null: an expired request is sent again while it is ahead. */
  deadline: number | null;
}

export function decideLine(line: HostedResultLine, data: RequestJobData, context: LineContext): LineOutcome {
  const result = line.result;
  switch (result.type) {
    case 'succeeded': {
      const message = (result.message ?? {}) as { usage?: Partial<HostedUsage>; stop_reason?: string | null };
      const usage = message.usage ?? {};
      return {
        kind: 'succeeded',
        messageJson: JSON.stringify(result.message),
        usage: {
          input_tokens: usage.input_tokens ?? 0,
          output_tokens: usage.output_tokens ?? 0,
          cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
          cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
        },
        stopReason: message.stop_reason ?? null,
      };
    }
    case 'canceled':
      // Canceled by `cancel BATCH`: it ends so. Otherwise by `auto` moving to the live path (or by
      // someone at the Console): the request is still wanted.
      return context.batchCanceled ? { kind: 'canceled' } : { kind: 'resend', data, why: 'canceled' };
    case 'expired':
      // Not processed within the API's 24 h. With a deadline still ahead it goes out again (a
      // deadline past 24 h is allowed for that); otherwise it ends `expired`, as the API's would.
      return context.deadline !== null && context.now < context.deadline && !context.batchCanceled
        ? { kind: 'resend', data, why: 'expired' }
        : { kind: 'expired' };
    case 'errored': {
      const failure = failureFromResultError(result.error);
      const calls = (data.calls ?? 0) + 1;
      const firstAt = data.first_at ?? context.now;
      const outcome = decideOutcome({ ok: false, failure }, context.retry, {
        calls,
        firstAt,
        now: context.now,
        maybeBilledSoFar: data.maybe_billed ?? 0,
      });
      switch (outcome.kind) {
        case 'retry':
          return {
            kind: 'resend',
            why: 'retry',
            data: { ...data, calls, first_at: firstAt, last_error: outcome.lastError },
          };
        case 'trip-breaker':
          return outcome.scope === 'key'
            ? {
                kind: 'key-failure',
                lastError: outcome.lastError,
                errorCode: outcome.errorCode,
                rule: outcome.rule,
                data: { ...data, last_error: outcome.lastError },
              }
            : { kind: 'model-failure', lastError: outcome.lastError, rule: outcome.rule };
        case 'dead-letter':
          return {
            kind: 'dead-letter',
            reason: outcome.reason === 'retries_exhausted' ? 'retries_exhausted' : 'terminal',
            lastError: outcome.lastError,
            ...(outcome.message !== undefined ? { message: outcome.message } : {}),
          };
        default:
          // decideOutcome answers nothing else for a failure.
          return { kind: 'dead-letter', reason: 'terminal', lastError: failureAsLastError(failure) };
      }
    }
  }
}

function failureAsLastError(failure: ReturnType<typeof failureFromResultError>): LastError {
  return {
    status: failure.status,
    type: failure.type ?? 'api_error',
    message: failure.message,
    request_id: failure.requestId,
  };
}
