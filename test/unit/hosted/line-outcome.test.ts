import { describe, expect, it } from 'vitest';
import { failureFromResultError } from '../../../src/errors/result-error.js';
import { decideLine, type LineContext } from '../../../src/hosted/line-outcome.js';
import type { RequestJobData } from '../../../src/queue/jobs.js';

const NOW = Date.UTC(2026, 11, 2, 20);
const data: RequestJobData = {
  batch_id: 'b',
  custom_id: 'c',
  index: 0,
  gen: 0,
  params: { model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
};
const context: LineContext = {
  retry: {
    maxAttempts: 3,
    maxRetryWaitMs: 3_600_000,
    maxMaybeBilled: 2,
    backoff: { baseDelayMs: 1, maxDelayMs: 2 },
  },
  now: NOW,
  batchCanceled: false,
  deadline: null,
};

/** An errored line as the Message Batches docs show it: the live API's error body. */
function errored(type: string, message: string) {
  return {
    custom_id: 'c',
    result: { type: 'errored' as const, error: { type: 'error', error: { type, message } } },
  };
}

describe('failureFromResultError', () => {
  it('gives the error body the status the live API sends with its type', () => {
    expect(
      failureFromResultError({ type: 'error', error: { type: 'overloaded_error', message: 'x' } }),
    ).toMatchObject({
      status: 529,
      type: 'overloaded_error',
    });
    expect(
      failureFromResultError({ type: 'error', error: { type: 'invalid_request_error', message: 'x' } })
        .status,
    ).toBe(400);
    // Unreadable: an api_error, which is retried rather than lost.
    expect(failureFromResultError(null)).toMatchObject({ type: 'api_error', status: 500 });
  });
});

describe('decideLine', () => {
  it('keeps a success with its usage', () => {
    const outcome = decideLine(
      {
        custom_id: 'c',
        result: {
          type: 'succeeded',
          message: { id: 'm', usage: { input_tokens: 5, output_tokens: 7 }, stop_reason: 'end_turn' },
        },
      },
      data,
      context,
    );
    expect(outcome).toMatchObject({ kind: 'succeeded', usage: { input_tokens: 5, output_tokens: 7 } });
  });

  it('classifies errored lines with the same table as the live path', () => {
    // The live API's empty credit balance: a 400 invalid_request_error (anthropic-api.md).
    const credits = decideLine(
      errored(
        'invalid_request_error',
        'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.',
      ),
      data,
      context,
    );
    expect(credits).toMatchObject({ kind: 'key-failure', rule: { condition: 'billing' } });
    expect(
      decideLine(errored('invalid_request_error', 'messages: field required'), data, context),
    ).toMatchObject({
      kind: 'dead-letter',
      reason: 'terminal',
    });
    expect(decideLine(errored('not_found_error', 'model: claude-2.0'), data, context).kind).toBe(
      'model-failure',
    );
    const retried = decideLine(errored('overloaded_error', 'Overloaded'), data, context);
    expect(retried).toMatchObject({ kind: 'resend', why: 'retry', data: { calls: 1 } });
    // Out of attempts: dead-lettered as such.
    expect(
      decideLine(errored('overloaded_error', 'Overloaded'), { ...data, calls: 2 }, context),
    ).toMatchObject({
      kind: 'dead-letter',
      reason: 'retries_exhausted',
    });
  });

  it('ends canceled and expired lines, unless the request is still wanted', () => {
    const canceled = { custom_id: 'c', result: { type: 'canceled' as const } };
    const expired = { custom_id: 'c', result: { type: 'expired' as const } };
    expect(decideLine(canceled, data, { ...context, batchCanceled: true }).kind).toBe('canceled');
    // Canceled by auto's move to the live path: sent again.
    expect(decideLine(canceled, data, context)).toMatchObject({ kind: 'resend', why: 'canceled' });
    expect(decideLine(expired, data, context).kind).toBe('expired');
    expect(decideLine(expired, data, { ...context, deadline: NOW + 1 })).toMatchObject({
      kind: 'resend',
      why: 'expired',
    });
    expect(decideLine(expired, data, { ...context, deadline: NOW - 1 }).kind).toBe('expired');
  });
});
