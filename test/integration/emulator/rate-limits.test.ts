import { RateLimitError } from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { emulator, failure, manualClock, params, sdk } from './helpers.js';

function retryAfterOf(err: RateLimitError): number {
  return Number(err.headers.get('retry-after'));
}

function messageOf(err: RateLimitError): string {
  return (err.error as { error: { message: string } }).error.message;
}

describe('rate-limit buckets (injected clock)', () => {
  it('RPM: a burst of R passes, R+1 gets 429 naming the request limit, and passes after retry-after', async () => {
    const clock = manualClock();
    const R = 5;
    const emu = await emulator({ limits: { rpm: R }, clock: clock.now });
    const client = sdk(emu);
    for (let i = 0; i < R; i++) await client.messages.create(params(`burst ${i}`));

    const err = (await failure(client.messages.create(params('one too many')))) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.status).toBe(429);
    const retryAfter = retryAfterOf(err);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // One request refills in 60/R seconds.
    expect(retryAfter).toBe(60 / R);
    expect(messageOf(err)).toContain(`of ${R} requests per minute`);
    expect(emu.control.log().at(-1)).toMatchObject({
      status: 429,
      rateLimit: 'requests',
      retryAfterSeconds: 12,
    });

    // A refused request consumes nothing: asking again at once gives the same wait.
    const again = (await failure(client.messages.create(params('still too many')))) as RateLimitError;
    expect(retryAfterOf(again)).toBe(retryAfter);

    clock.advance(retryAfter * 1000 - 1);
    await expect(client.messages.create(params('a little early'))).rejects.toBeInstanceOf(RateLimitError);
    clock.advance(1);
    const ok = await client.messages.create(params('after the wait'));
    expect(ok.type).toBe('message');
    expect(emu.control.stats().rateLimited.requests).toBe(3);
  });

  it('the bucket refills continuously rather than resetting each minute', async () => {
    const clock = manualClock();
    const emu = await emulator({ limits: { rpm: 60 }, clock: clock.now });
    const client = sdk(emu);
    for (let i = 0; i < 60; i++) await client.messages.create(params(`fill ${i}`));
    await expect(client.messages.create(params('empty'))).rejects.toBeInstanceOf(RateLimitError);
    // 60 RPM refills one request per second.
    clock.advance(1000);
    await client.messages.create(params('one refilled'));
    await expect(client.messages.create(params('only one'))).rejects.toBeInstanceOf(RateLimitError);
    clock.advance(3000);
    for (let i = 0; i < 3; i++) await client.messages.create(params(`three more ${i}`));
    await expect(client.messages.create(params('and no more'))).rejects.toBeInstanceOf(RateLimitError);
  });

  it('ITPM: long prompts exhaust the input-token bucket; 429 names input tokens; passes after retry-after', async () => {
    const clock = manualClock();
    const emu = await emulator({ limits: { itpm: 1000 }, clock: clock.now });
    const client = sdk(emu);
    // 1,588 characters = 397 tokens, plus 3 for the message: 400 input tokens.
    const long = (i: number) => `${i} `.padEnd(1588, 'x');
    const first = await client.messages.create(params(long(1)));
    expect(first.usage.input_tokens).toBe(400);
    await client.messages.create(params(long(2)));

    const err = (await failure(client.messages.create(params(long(3))))) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(messageOf(err)).toContain('of 1000 input tokens per minute');
    // 200 left, 400 needed: 200 tokens at 1000/60 per second is 12 s.
    expect(retryAfterOf(err)).toBe(12);
    expect(err.headers.get('anthropic-ratelimit-input-tokens-limit')).toBe('1000');
    expect(err.headers.get('anthropic-ratelimit-input-tokens-remaining')).toBe('0');

    // A short prompt still fits into what is left: refusals are per request size.
    await client.messages.create(params('short'));
    clock.advance(retryAfterOf(err) * 1000 + 1000);
    await client.messages.create(params(long(3)));
    expect(emu.control.stats().rateLimited.input_tokens).toBe(1);
  });

  it('a request refused by one limit consumes none of the others', async () => {
    const clock = manualClock();
    const emu = await emulator({ limits: { rpm: 100, itpm: 100 }, clock: clock.now });
    const client = sdk(emu);
    await client.messages.create(params('x'.repeat(360))); // 93 tokens
    for (let i = 0; i < 5; i++) {
      await expect(client.messages.create(params(`${i}`.padEnd(360, 'y')))).rejects.toBeInstanceOf(
        RateLimitError,
      );
    }
    const buckets = emu.control.stats().buckets['claude-haiku-4-5'];
    expect(buckets?.requests?.remaining).toBe(99);
    expect(buckets?.input_tokens?.remaining).toBe(7);
  });

  it('OTPM reserve mode: max_tokens is reserved up front and the unused part given back', async () => {
    const clock = manualClock();
    const emu = await emulator({ limits: { otpm: 100, otpmMode: 'reserve' }, clock: clock.now });
    const client = sdk(emu);
    const r1 = await client.messages.create(params('@@output_tokens:20@@ a', { max_tokens: 60 }));
    expect(r1.usage.output_tokens).toBe(20);
    // Each request reserves 60 and returns the 40 it did not use: 100 → 80 → 60 → 40.
    await client.messages.create(params('@@output_tokens:20@@ b', { max_tokens: 60 }));
    await client.messages.create(params('@@output_tokens:20@@ c', { max_tokens: 60 }));
    // 40 left, 60 needed: 20 tokens at 100/60 per second is 12 s.
    const err = (await failure(
      client.messages.create(params('@@output_tokens:20@@ d', { max_tokens: 60 })),
    )) as RateLimitError;
    expect(messageOf(err)).toContain('of 100 output tokens per minute');
    expect(retryAfterOf(err)).toBe(12);
    // A smaller reservation fits in what is left.
    await client.messages.create(params('@@output_tokens:10@@ e', { max_tokens: 40 }));
  });

  it('OTPM produced mode: admission needs a positive level, output is charged when produced', async () => {
    const clock = manualClock();
    const emu = await emulator({ limits: { otpm: 60, otpmMode: 'produced' }, clock: clock.now });
    const client = sdk(emu);
    await client.messages.create(params('@@output_tokens:50@@ a', { max_tokens: 1000 }));
    // 10 left; the next may start and drives the bucket to -40.
    await client.messages.create(params('@@output_tokens:50@@ b', { max_tokens: 1000 }));
    const err = (await failure(client.messages.create(params('c', { max_tokens: 1000 })))) as RateLimitError;
    expect(messageOf(err)).toContain('output tokens per minute');
    // From -40 to 1 at one token per second.
    expect(retryAfterOf(err)).toBe(41);
    clock.advance(41_000);
    await client.messages.create(params('c', { max_tokens: 1000 }));
  });

  it('limits per model keep separate buckets; setLimits replaces them at run time', async () => {
    const clock = manualClock();
    const emu = await emulator({
      limits: { byModel: { 'claude-haiku-4-5': { rpm: 1 } }, default: { rpm: 2 } },
      clock: clock.now,
    });
    const client = sdk(emu);
    await client.messages.create(params('h1'));
    await expect(client.messages.create(params('h2'))).rejects.toBeInstanceOf(RateLimitError);
    await client.messages.create(params('s1', { model: 'claude-sonnet-4-6' }));
    await client.messages.create(params('s2', { model: 'claude-sonnet-4-6' }));
    await expect(client.messages.create(params('s3', { model: 'claude-sonnet-4-6' }))).rejects.toBeInstanceOf(
      RateLimitError,
    );
    emu.control.setLimits(null);
    await client.messages.create(params('h3'));
    emu.control.setLimits({ rpm: 1 });
    await client.messages.create(params('h4'));
    await expect(client.messages.create(params('h5'))).rejects.toBeInstanceOf(RateLimitError);
  });

  it('injected rate_limit_error markers carry their retry-after (default 1 s)', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    const plain = (await failure(
      client.messages.create(params('@@fault:rate_limit_error@@')),
    )) as RateLimitError;
    expect(retryAfterOf(plain)).toBe(1);
    const custom = (await failure(
      client.messages.create(params('@@fault:rate_limit_error:1:7@@')),
    )) as RateLimitError;
    expect(retryAfterOf(custom)).toBe(7);
    expect(emu.control.stats().rateLimited.injected).toBe(2);
  });
});
