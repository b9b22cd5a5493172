import type Anthropic from '@anthropic-ai/sdk';
import {
  type APIError,
  APIConnectionError,
  APIConnectionTimeoutError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ContentTooLargeError,
  GatewayTimeoutError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  PaymentRequiredError,
  PermissionDeniedError,
  RateLimitError,
} from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import type { EmulatorOptions } from '../../../src/emulator/index.js';
import { KEY, MODEL, emulator, failure, params, sdk } from './helpers.js';

/** Limits high enough never to trip, so every answer past the model check carries the headers. */
const ROOMY_LIMITS = { rpm: 10_000, itpm: 10_000_000, otpm: 10_000_000 };

interface Row {
  name: string;
  status: number;
  type: string;
  errorClass: abstract new (...args: never[]) => APIError;
  /** Whether the anthropic-ratelimit-* headers come with this answer (every API answer carries them, as the live API's do). */
  rateLimitHeaders: boolean;
  options?: EmulatorOptions;
  call: (client: Anthropic, bad: Anthropic) => Promise<unknown>;
}

const ROWS: Row[] = [
  {
    name: '400 invalid_request_error (bad max_tokens)',
    status: 400,
    type: 'invalid_request_error',
    errorClass: BadRequestError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('hi', { max_tokens: 0 })),
  },
  {
    name: '400 invalid_request_error (marker)',
    status: 400,
    type: 'invalid_request_error',
    errorClass: BadRequestError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('@@fault:invalid_request_error@@')),
  },
  {
    name: '401 authentication_error (unknown key)',
    status: 401,
    type: 'authentication_error',
    errorClass: AuthenticationError,
    rateLimitHeaders: true,
    call: (_c, bad) => bad.messages.create(params('hi')),
  },
  {
    name: '403 permission_error (forbidden model)',
    status: 403,
    type: 'permission_error',
    errorClass: PermissionDeniedError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('hi', { model: 'claude-opus-4-1' })),
  },
  {
    // The default: the shape the live API has been seen to send (anthropic-api.md).
    name: '400 invalid_request_error "credit balance is too low" (credits spent, live shape)',
    status: 400,
    type: 'invalid_request_error',
    errorClass: BadRequestError,
    rateLimitHeaders: true,
    options: { credits: { balance: 0 } },
    call: (c) => c.messages.create(params('hi')),
  },
  {
    name: '403 billing_error (credits spent, older status)',
    status: 403,
    type: 'billing_error',
    errorClass: PermissionDeniedError,
    rateLimitHeaders: true,
    options: { credits: { balance: 0 }, billingErrorStatus: 403 },
    call: (c) => c.messages.create(params('hi')),
  },
  {
    name: '402 billing_error (newer status)',
    status: 402,
    type: 'billing_error',
    errorClass: PaymentRequiredError,
    rateLimitHeaders: true,
    options: { credits: { balance: 0 }, billingErrorStatus: 402 },
    call: (c) => c.messages.create(params('hi')),
  },
  {
    name: '404 not_found_error (unknown model)',
    status: 404,
    type: 'not_found_error',
    errorClass: NotFoundError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('hi', { model: 'claude-nonexistent-9' })),
  },
  {
    name: '413 request_too_large (body over maxBodyBytes)',
    status: 413,
    type: 'request_too_large',
    errorClass: ContentTooLargeError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('x'.repeat(80 * 1024))),
  },
  {
    name: '429 rate_limit_error (RPM bucket)',
    status: 429,
    type: 'rate_limit_error',
    errorClass: RateLimitError,
    rateLimitHeaders: true,
    options: { limits: { ...ROOMY_LIMITS, rpm: 1 } },
    call: async (c) => {
      await c.messages.create(params('first'));
      return c.messages.create(params('second'));
    },
  },
  {
    name: '429 rate_limit_error (spend cap)',
    status: 429,
    type: 'rate_limit_error',
    errorClass: RateLimitError,
    rateLimitHeaders: true,
    options: { spendCapReached: true },
    call: (c) => c.messages.create(params('hi')),
  },
  {
    name: '500 api_error',
    status: 500,
    type: 'api_error',
    errorClass: InternalServerError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('@@fault:api_error@@')),
  },
  {
    name: '529 overloaded_error',
    status: 529,
    type: 'overloaded_error',
    errorClass: OverloadedError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('@@fault:overloaded_error@@')),
  },
  {
    name: '504 timeout_error',
    status: 504,
    type: 'timeout_error',
    errorClass: GatewayTimeoutError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('@@fault:timeout_error@@')),
  },
  {
    name: '409 conflict_error',
    status: 409,
    type: 'conflict_error',
    errorClass: ConflictError,
    rateLimitHeaders: true,
    call: (c) => c.messages.create(params('@@fault:conflict_error@@')),
  },
];

describe('the error table through @anthropic-ai/sdk', () => {
  it.each(ROWS)('$name', async (row) => {
    const emu = await emulator({
      apiKeys: [KEY],
      forbiddenModels: ['claude-opus-4-1'],
      maxBodyBytes: 64 * 1024,
      limits: ROOMY_LIMITS,
      ...row.options,
    });
    const err = await failure(row.call(sdk(emu), sdk(emu, 'sk-not-a-known-key')));

    expect(err).toBeInstanceOf(row.errorClass);
    const apiError = err as APIError<
      number,
      Headers,
      { type: string; error: { type: string }; request_id: string }
    >;
    expect(apiError.status).toBe(row.status);
    expect(apiError.error.type).toBe('error');
    expect(apiError.error.error.type).toBe(row.type);
    expect(apiError.requestID).toMatch(/^req_/);
    expect(apiError.headers.get('request-id')).toBe(apiError.requestID);
    expect(apiError.error.request_id).toBe(apiError.requestID);
    expect(apiError.headers.get('anthropic-ratelimit-requests-limit') !== null).toBe(row.rateLimitHeaders);
    if (row.rateLimitHeaders) {
      expect(apiError.headers.get('anthropic-ratelimit-input-tokens-remaining')).toMatch(/^\d+000$|^0$/);
      expect(apiError.headers.get('anthropic-ratelimit-output-tokens-reset')).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
      );
    }

    const log = emu.control.log();
    const last = log[log.length - 1];
    expect(last?.requestId).toBe(apiError.requestID);
    expect(last?.status).toBe(row.status);
    expect(last?.errorType).toBe(row.type);
  });

  it('429 from a bucket carries retry-after in whole seconds and names the limit', async () => {
    const emu = await emulator({ limits: { rpm: 1 } });
    const client = sdk(emu);
    await client.messages.create(params('first'));
    const err = (await failure(client.messages.create(params('second')))) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((err.error as { error: { message: string } }).error.message).toContain('1 requests per minute');
  });

  it('429 spend cap has error_code enforced_spend_limit_reached and no retry-after', async () => {
    const emu = await emulator({ spendCapReached: true });
    const err = (await failure(sdk(emu).messages.create(params('hi')))) as RateLimitError;
    expect(err.headers.get('retry-after')).toBeNull();
    expect((err.error as { error: { details: { error_code: string } } }).error.details.error_code).toBe(
      'enforced_spend_limit_reached',
    );
    expect(err.errorCode).toBe('enforced_spend_limit_reached');
  });

  it('connection_reset surfaces as APIConnectionError (not a timeout)', async () => {
    const emu = await emulator();
    const err = await failure(sdk(emu).messages.create(params('@@fault:connection_reset@@')));
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(err).not.toBeInstanceOf(APIConnectionTimeoutError);
    expect(emu.control.log()[0]).toMatchObject({ status: 0, errorType: 'connection_reset', fault: 'marker' });
  });

  it('hang surfaces as APIConnectionTimeoutError with a short client timeout', async () => {
    const emu = await emulator();
    const err = await failure(sdk(emu, KEY, 300).messages.create(params('@@fault:hang@@')));
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(emu.control.log()[0]).toMatchObject({ status: 0, errorType: 'hang' });
  });

  it('a hung request does not keep close() waiting', async () => {
    const emu = await emulator();
    const pending = sdk(emu, KEY, 30_000).messages.create(params('@@fault:hang@@'));
    pending.catch(() => {});
    await expect
      .poll(() => emu.control.stats().requests, { timeout: 10_000, interval: 5 })
      .toBeGreaterThan(0);
    await emu.close();
    await expect(pending).rejects.toBeInstanceOf(APIConnectionError);
  });

  it('success carries request-id and the rate-limit headers, with token remaining rounded to the thousand', async () => {
    const emu = await emulator({ limits: { rpm: 50, itpm: 30_000, otpm: 8_000 } });
    const { data, response } = await sdk(emu)
      .messages.create(params('hello there', { max_tokens: 100 }))
      .withResponse();
    expect(data.type).toBe('message');
    expect(data.model).toBe(MODEL);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(response.headers.get('anthropic-ratelimit-requests-limit')).toBe('50');
    expect(response.headers.get('anthropic-ratelimit-requests-remaining')).toBe('49');
    expect(response.headers.get('anthropic-ratelimit-input-tokens-limit')).toBe('30000');
    // 30,000 minus a few input tokens rounds down to 29,000.
    expect(response.headers.get('anthropic-ratelimit-input-tokens-remaining')).toBe('29000');
    expect(response.headers.get('anthropic-ratelimit-output-tokens-limit')).toBe('8000');
    expect(response.headers.get('anthropic-ratelimit-output-tokens-remaining')).toBe('7000');
    const reset = response.headers.get('anthropic-ratelimit-requests-reset');
    expect(reset).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(reset ?? '')).toBeGreaterThan(Date.now());
  });
});
