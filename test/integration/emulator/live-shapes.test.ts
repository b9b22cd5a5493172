/**
 * The emulator answers like the live API (anthropic-api.md, "What the live API has been seen to
 * send"): rate-limit headers on every response, error codes, the concurrency 429, streaming, and
 * bodies that are not the API's. Each shape through the real SDK over HTTP.
 */
import {
  APIError,
  ContentTooLargeError,
  InternalServerError,
  PaymentRequiredError,
  RateLimitError,
  ServiceUnavailableError,
} from '@anthropic-ai/sdk';
import { describe, expect, it, vi } from 'vitest';
import { emulator, failure, KEY, params, sdk } from './helpers.js';

const VERSION = '2023-06-01';

function apiError(err: unknown): APIError {
  expect(err).toBeInstanceOf(APIError);
  return err as APIError;
}

describe('rate-limit headers on every response', () => {
  it('an emulator without limits reports the unlimited tier on 200, 4xx and other routes', async () => {
    const emu = await emulator({ apiKeys: [KEY] });
    const client = sdk(emu);
    const { response } = await client.messages.create(params('hello')).withResponse();
    expect(response.headers.get('anthropic-ratelimit-requests-limit')).toBe('1000000');
    expect(response.headers.get('anthropic-ratelimit-requests-remaining')).toBe('1000000');
    expect(response.headers.get('anthropic-ratelimit-input-tokens-limit')).toBe('1000000000');
    expect(response.headers.get('anthropic-ratelimit-output-tokens-limit')).toBe('1000000000');
    expect(response.headers.get('anthropic-ratelimit-output-tokens-reset')).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    const bad = apiError(await failure(client.messages.create(params('x', { max_tokens: 10_000_000 }))));
    expect(bad.status).toBe(400);
    expect(bad.headers?.get('anthropic-ratelimit-requests-limit')).toBe('1000000');
    const unauth = apiError(await failure(sdk(emu, 'sk-wrong').messages.create(params('x'))));
    expect(unauth.status).toBe(401);
    expect(unauth.headers?.get('anthropic-ratelimit-requests-limit')).toBe('1000000');
    const counted = await client.messages.countTokens(params('x')).withResponse();
    expect(counted.response.headers.get('anthropic-ratelimit-input-tokens-limit')).toBe('1000000000');
  });

  it('with only rpm set, rpm comes from its bucket and the rest from the unlimited tier', async () => {
    const emu = await emulator({ limits: { rpm: 50 } });
    const { response } = await sdk(emu).messages.create(params('hello')).withResponse();
    expect(response.headers.get('anthropic-ratelimit-requests-limit')).toBe('50');
    expect(response.headers.get('anthropic-ratelimit-requests-remaining')).toBe('49');
    expect(response.headers.get('anthropic-ratelimit-input-tokens-limit')).toBe('1000000000');
  });
});

describe('error.details.error_code faults', () => {
  it.each([
    ['organization_on_hold', 400, 'invalid_request_error', null],
    ['cmek_key_disabled', 400, 'invalid_request_error', null],
    ['linked_organization_billing_unavailable', 402, 'billing_error', null],
    ['linked_organization_spend_limit_reached', 402, 'billing_error', null],
    ['contract_spend_limit_reached', 429, 'rate_limit_error', null],
    ['enforced_spend_limit_reached', 429, 'rate_limit_error', null],
    ['ramp_limit_exceeded', 429, 'rate_limit_error', '1'],
    ['cmek_context_unavailable', 503, 'api_error', null],
    ['cmek_key_unreachable', 503, 'api_error', null],
  ] as const)('@@fault:%s@@ → %i %s with the code in details', async (code, status, type, retryAfter) => {
    const emu = await emulator();
    const err = apiError(await failure(sdk(emu).messages.create(params(`@@fault:${code}@@`))));
    expect(err.status).toBe(status);
    expect(err.errorCode).toBe(code);
    expect((err.error as { error: { type: string; details: unknown } }).error).toMatchObject({
      type,
      details: { error_code: code },
    });
    expect(err.headers?.get('retry-after') ?? null).toBe(retryAfter);
    expect(err.requestID).toMatch(/^req_/);
    if (status === 402) expect(err).toBeInstanceOf(PaymentRequiredError);
    if (status === 429) expect(err).toBeInstanceOf(RateLimitError);
    if (status === 503) expect(err).toBeInstanceOf(ServiceUnavailableError);
  });

  it('a scripted {type, errorCode} and the control API reach the same answer; a mismatched type is refused', async () => {
    const emu = await emulator({
      faults: {
        script: [{ type: 'rate_limit_error', errorCode: 'ramp_limit_exceeded', retryAfterSeconds: 7 }],
      },
    });
    const err = apiError(await failure(sdk(emu).messages.create(params('scripted'))));
    expect(err.errorCode).toBe('ramp_limit_exceeded');
    expect(err.headers?.get('retry-after')).toBe('7');
    const put = await fetch(`${emu.url}/_emulator/faults`, {
      method: 'PUT',
      body: JSON.stringify({ script: [{ type: 'billing_error', errorCode: 'organization_on_hold' }] }),
    });
    expect(put.status).toBe(400);
    const message = ((await put.json()) as { error: { message: string } }).error.message;
    expect(message).toContain('faults.script.0.type');
    expect(message).toContain('"billing_error"');
    expect(message).toContain('invalid_request_error');
    emu.control.setFaults({ script: ['linked_organization_spend_limit_reached'] });
    const paid = apiError(await failure(sdk(emu).messages.create(params('control'))));
    expect(paid.status).toBe(402);
    expect(paid.errorCode).toBe('linked_organization_spend_limit_reached');
  });
});

describe('concurrency limit', () => {
  it('request N+1 in flight gets 429 with the concurrent-connections message and retry-after', async () => {
    const emu = await emulator({ maxConcurrent: 2, latency: { fixedMs: 60_000 } });
    const client = sdk(emu, KEY, 120_000);
    const slow = [client.messages.create(params('one')), client.messages.create(params('two'))];
    await vi.waitFor(() => expect(emu.control.stats().inFlight).toBe(2), { timeout: 20_000 });
    const err = apiError(await failure(client.messages.create(params('three'))));
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.message).toContain('Number of concurrent connections has exceeded your rate limit');
    expect(err.headers?.get('retry-after')).toBe('1');
    expect(emu.control.stats().rateLimited.concurrency).toBe(1);
    // Lifted at run time over HTTP: the next request is admitted although two are still in flight.
    const put = await fetch(`${emu.url}/_emulator/max-concurrent`, {
      method: 'PUT',
      body: JSON.stringify({ maxConcurrent: null }),
    });
    expect(await put.json()).toEqual({ maxConcurrent: null });
    emu.control.setLatency({});
    await expect(client.messages.create(params('four'))).resolves.toMatchObject({ type: 'message' });
    await emu.close();
    await Promise.allSettled(slow);
  });

  it('a finished request leaves the count', async () => {
    const emu = await emulator({ maxConcurrent: 1 });
    const client = sdk(emu);
    for (let i = 0; i < 3; i++) await client.messages.create(params(`seq ${i}`));
    await vi.waitFor(() => expect(emu.control.stats().inFlight).toBe(0));
  });
});

describe('streaming', () => {
  it('SSE in the API order; finalMessage() equals the non-streamed reply (id aside)', async () => {
    const emu = await emulator({ seed: 7 });
    const client = sdk(emu);
    const p = params('stream me @@output_tokens:30@@');
    const plain = await client.messages.create(p);
    const stream = client.messages.stream(p);
    let texts = 0;
    stream.on('text', () => texts++);
    const final = await stream.finalMessage();
    const { id: _plainId, ...plainRest } = plain;
    const {
      id: finalId,
      parsed_output: _parsed,
      ...finalRest
    } = final as typeof final & {
      parsed_output?: unknown;
    };
    expect(finalId).toMatch(/^msg_/);
    expect(finalRest).toEqual(plainRest);
    expect(texts).toBe(Math.ceil(plain.content[0]?.type === 'text' ? plain.content[0].text.length / 16 : 0));

    const raw = await fetch(`${emu.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'anthropic-version': VERSION, 'content-type': 'application/json' },
      body: JSON.stringify({ ...p, stream: true }),
    });
    expect(raw.headers.get('content-type')).toContain('text/event-stream');
    expect(raw.headers.get('anthropic-ratelimit-requests-limit')).toBe('1000000');
    const events = [...(await raw.text()).matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(events.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(events.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(new Set(events.slice(3, -3))).toEqual(new Set(['content_block_delta']));
  });

  it('deltas are paced by perOutputTokenMs, so a long generation streams steadily', async () => {
    const emu = await emulator({ latency: { perOutputTokenMs: 10 } });
    const stream = sdk(emu, KEY, 60_000).messages.stream(params('slowly @@output_tokens:80@@'));
    const arrivals: number[] = [];
    stream.on('text', () => arrivals.push(performance.now()));
    await stream.finalMessage();
    expect(arrivals).toHaveLength(20);
    // 80 tokens at 10 ms: about 800 ms from first to last delta; bursts would arrive together.
    const spread = (arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0);
    expect(spread).toBeGreaterThan(500);
  });

  it('a mid-stream error event after K deltas reaches the SDK as an APIError with the body', async () => {
    const emu = await emulator();
    const stream = sdk(emu).messages.stream(
      params('@@stream_fault:overloaded_error:3@@ @@output_tokens:60@@'),
    );
    let texts = 0;
    stream.on('text', () => texts++);
    const err = apiError(await failure(stream.finalMessage()));
    expect(texts).toBe(3);
    expect((err.error as { error: { type: string } }).error.type).toBe('overloaded_error');
    // The same marker does nothing to a request that is not streamed.
    await expect(
      sdk(emu).messages.create(params('@@stream_fault:overloaded_error:3@@ @@output_tokens:60@@')),
    ).resolves.toMatchObject({ type: 'message' });
  });

  it('a scripted afterDeltas fault and a reset mid-stream', async () => {
    const emu = await emulator({ faults: { script: [{ type: 'api_error', afterDeltas: 2 }] } });
    const scripted = sdk(emu).messages.stream(params('scripted @@output_tokens:40@@'));
    const err = apiError(await failure(scripted.finalMessage()));
    expect((err.error as { error: { type: string } }).error.type).toBe('api_error');

    const reset = sdk(emu).messages.stream(
      params('@@stream_fault:connection_reset:2@@ @@output_tokens:40@@'),
    );
    let texts = 0;
    reset.on('text', () => texts++);
    const cut = await failure(reset.finalMessage());
    expect(cut).toBeInstanceOf(Error);
    expect(texts).toBe(2);
  });
});

describe('bodies that are not the API', () => {
  it.each([
    ['html_502', 502, 'text/html'],
    ['html_503', 503, 'text/html'],
    ['html_504', 504, 'text/html'],
    ['empty_502', 502, null],
    ['empty_503', 503, null],
    ['empty_504', 504, null],
    ['html_413', 413, 'text/html'],
  ] as const)('@@fault:%s@@ → %i with no JSON error type', async (fault, status, contentType) => {
    const emu = await emulator();
    const err = apiError(await failure(sdk(emu).messages.create(params(`@@fault:${fault}@@`))));
    expect(err.status).toBe(status);
    expect(err.headers?.get('content-type') ?? null).toBe(contentType);
    expect(err.headers?.get('request-id') ?? null).toBeNull();
    expect((err.error as { error?: { type?: string } } | undefined)?.error?.type).toBeUndefined();
    if (status === 413) expect(err).toBeInstanceOf(ContentTooLargeError);
    else expect(err).toBeInstanceOf(InternalServerError);
  });

  it('reset_mid_response: headers of a 200, then the connection is cut', async () => {
    const emu = await emulator();
    const err = await failure(sdk(emu).messages.create(params('@@fault:reset_mid_response@@')));
    expect(err).toBeInstanceOf(Error);
    // Not an API error: there is no status to classify by, only a broken connection.
    expect(err).not.toBeInstanceOf(RateLimitError);
    expect(emu.control.log().at(-1)).toMatchObject({ errorType: 'reset_mid_response', status: 0 });
  });

  it('injected 529 and 500 carry no retry-after', async () => {
    const emu = await emulator();
    for (const [fault, status] of [
      ['overloaded_error', 529],
      ['api_error', 500],
    ] as const) {
      const err = apiError(await failure(sdk(emu).messages.create(params(`@@fault:${fault}@@`))));
      expect(err.status).toBe(status);
      expect(err.headers?.get('retry-after')).toBeNull();
      expect(err.headers?.get('anthropic-ratelimit-requests-limit')).toBe('1000000');
    }
  });
});
