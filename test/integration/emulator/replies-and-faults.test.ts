import type Anthropic from '@anthropic-ai/sdk';
import { APIConnectionError, APIError, InternalServerError, OverloadedError } from '@anthropic-ai/sdk';
import { describe, expect, it, vi } from 'vitest';
import { REPLY_PREFIX, replyFingerprint, type EmulatorHandle } from '../../../src/emulator/index.js';
import { KEY, MODEL, emulator, failure, manualClock, params, sdk } from './helpers.js';

function textOf(message: Anthropic.Message): string {
  const block = message.content[0];
  return block?.type === 'text' ? block.text : '';
}

describe('replies', () => {
  it('are deterministic from (seed, content) and carry the prompt fingerprint', async () => {
    const a = await emulator({ seed: 7 });
    const b = await emulator({ seed: 7 });
    const c = await emulator({ seed: 8 });
    const p = params('What is the capital of France?');
    const ra = await sdk(a).messages.create(p);
    const rb = await sdk(b).messages.create(p);
    const rc = await sdk(c).messages.create(p);
    expect(textOf(ra)).toBe(textOf(rb));
    expect(ra.usage).toEqual(rb.usage);
    expect(textOf(ra).startsWith(`${REPLY_PREFIX}${replyFingerprint(p)}`)).toBe(true);
    // Another seed changes the filler, never the fingerprint.
    expect(textOf(rc)).not.toBe(textOf(ra));
    expect(textOf(rc).startsWith(`${REPLY_PREFIX}${replyFingerprint(p)}`)).toBe(true);

    const other = params('What is the capital of Spain?');
    const ro = await sdk(a).messages.create(other);
    expect(replyFingerprint(other)).not.toBe(replyFingerprint(p));
    expect(textOf(ro).startsWith(`${REPLY_PREFIX}${replyFingerprint(other)}`)).toBe(true);
    expect(a.control.log().map((e) => e.promptHash)).toEqual([replyFingerprint(p), replyFingerprint(other)]);
  });

  it('have the Message shape, with length derived from content and cut at max_tokens', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    const full = await client.messages.create(
      params('@@output_tokens:40@@ tell me more', { max_tokens: 100 }),
    );
    expect(full).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: MODEL,
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { output_tokens: 40, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    expect(full.id).toMatch(/^msg_/);
    expect(textOf(full)).toHaveLength(160);

    const cut = await client.messages.create(params('@@output_tokens:40@@ tell me more', { max_tokens: 10 }));
    expect(cut.stop_reason).toBe('max_tokens');
    expect(cut.usage.output_tokens).toBe(10);

    const natural = await client.messages.create(params('no marker here', { max_tokens: 1000 }));
    expect(natural.usage.output_tokens).toBeGreaterThanOrEqual(16);
    expect(natural.usage.output_tokens).toBeLessThanOrEqual(128);
    expect(natural.stop_reason).toBe('end_turn');
  });

  it('stop markers: @@stop:max_tokens@@ and @@stop:refusal@@', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    const truncated = await client.messages.create(
      params('@@stop:max_tokens@@ write a novel', { max_tokens: 50 }),
    );
    expect(truncated.stop_reason).toBe('max_tokens');
    expect(truncated.usage.output_tokens).toBe(50);
    const refused = await client.messages.create(params('@@stop:refusal@@ something bad'));
    expect(refused.stop_reason).toBe('refusal');
  });

  it('count_tokens follows the documented rule', async () => {
    const emu = await emulator();
    const result = await sdk(emu).messages.countTokens({
      model: MODEL,
      system: 'abcdefgh', // 2
      messages: [
        { role: 'user', content: 'abcde' }, // 3 + 2
        { role: 'assistant', content: [{ type: 'text', text: 'abcd' }] }, // 3 + 1
      ],
    });
    expect(result.input_tokens).toBe(11);
  });
});

describe('prompt caching', () => {
  const system = 'You are a careful assistant. '.repeat(40); // 1,160 chars = 290 tokens
  const cachedParams = (question: string) =>
    params(question, {
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }],
    });
  /** Short prompts cache here: the models' real minimums (1,024 to 4,096 tokens) are tested below. */
  const NO_MINIMUM = { minCacheableTokens: 0 } as const;

  it('reports creation, then reads within the TTL (refreshed on use), then creation again after it', async () => {
    const clock = manualClock();
    const emu = await emulator({ ...NO_MINIMUM, clock: clock.now });
    const client = sdk(emu);
    const first = await client.messages.create(cachedParams('question one?')); // 13 chars = 4 tokens + 3
    expect(first.usage).toMatchObject({
      cache_creation_input_tokens: 290,
      cache_read_input_tokens: 0,
      input_tokens: 7,
    });

    clock.advance(4 * 60_000);
    const second = await client.messages.create(cachedParams('question two?'));
    expect(second.usage).toMatchObject({
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 290,
      input_tokens: 7,
    });

    // The read refreshed the entry: 4 more minutes is still within 5 of the last use.
    clock.advance(4 * 60_000);
    const third = await client.messages.create(cachedParams('question three'));
    expect(third.usage.cache_read_input_tokens).toBe(290);

    clock.advance(5 * 60_000 + 1);
    const expired = await client.messages.create(cachedParams('question four'));
    expect(expired.usage).toMatchObject({ cache_creation_input_tokens: 290, cache_read_input_tokens: 0 });

    const stats = emu.control.stats();
    expect(stats.tokens.cacheCreation).toBe(580);
    expect(stats.tokens.cacheRead).toBe(580);
  });

  it('the longest cached prefix is read and the rest up to the last breakpoint written', async () => {
    const emu = await emulator(NO_MINIMUM);
    const client = sdk(emu);
    const history = 'Earlier conversation. '.repeat(20); // 440 chars = 110 tokens
    await client.messages.create(cachedParams('first'));
    const withHistory = await client.messages.create(
      params('ignored', {
        system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }],
        messages: [
          { role: 'user', content: [{ type: 'text', text: history, cache_control: { type: 'ephemeral' } }] },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: 'next question' },
        ],
      }),
    );
    // Read the system prefix (290); write the first message (3 + 110); the rest is plain input.
    expect(withHistory.usage).toMatchObject({
      cache_read_input_tokens: 290,
      cache_creation_input_tokens: 113,
      input_tokens: 3 + 1 + 3 + 4,
    });
  });

  it('ITPM counts input + cache creation but not cache reads', async () => {
    const clock = manualClock();
    const emu = await emulator({ ...NO_MINIMUM, limits: { itpm: 1000 }, clock: clock.now });
    const client = sdk(emu);
    await client.messages.create(cachedParams('q0?'));
    // "q0?" is 1 token + 3 for the message: 1000 - (290 + 4) = 706 left. Each cached repeat then costs
    // only its 4 uncached tokens; 20 of them would not fit if the 290 cached tokens counted too.
    for (let i = 1; i <= 20; i++) await client.messages.create(cachedParams(`q${i % 10}?`));
    expect(emu.control.stats().buckets[MODEL]?.input_tokens?.remaining).toBe(706 - 20 * 4);
  });

  it("a breakpoint under the model's minimum is ignored: no write, no read, all plain input", async () => {
    // Defaults: 4,096 for Haiku 4.5, 2,048 for Sonnet 4.6, 1,024 for the rest.
    const emu = await emulator();
    const client = sdk(emu);
    for (const model of ['claude-haiku-4-5', 'claude-sonnet-4-6', 'claude-opus-4-1']) {
      for (const question of ['one', 'two']) {
        const reply = await client.messages.create({ ...cachedParams(question), model });
        expect(reply.usage).toMatchObject({
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          input_tokens: 290 + 1 + 3,
        });
      }
    }
    expect(emu.control.stats().promptCacheEntries).toBe(0);

    // Per model (globs, first match wins; others keep the table): 290 reaches 200 for Haiku only.
    const tuned = await emulator({ minCacheableTokens: { 'claude-haiku-*': 200 } });
    const tunedClient = sdk(tuned);
    await tunedClient.messages.create(cachedParams('one'));
    expect((await tunedClient.messages.create(cachedParams('two'))).usage.cache_read_input_tokens).toBe(290);
    const sonnet = await tunedClient.messages.create({ ...cachedParams('two'), model: 'claude-opus-4-1' });
    expect(sonnet.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
  });

  it('of two breakpoints, only the one whose prefix reaches the minimum caches', async () => {
    const emu = await emulator({ minCacheableTokens: 300 });
    const history = 'Earlier conversation. '.repeat(20); // 440 chars = 110 tokens
    const twoMarks = params('ignored', {
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }], // 290 < 300
      messages: [
        { role: 'user', content: [{ type: 'text', text: history, cache_control: { type: 'ephemeral' } }] },
        { role: 'user', content: 'next' },
      ],
    });
    const first = await sdk(emu).messages.create(twoMarks);
    expect(first.usage).toMatchObject({
      cache_creation_input_tokens: 290 + 3 + 110,
      cache_read_input_tokens: 0,
    });
    // The system prefix alone was never cached.
    const systemOnly = await sdk(emu).messages.create(cachedParams('other'));
    expect(systemOnly.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    const again = await sdk(emu).messages.create(twoMarks);
    expect(again.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 403 });
  });

  it("requests sent before the writer's response has begun all miss and all pay the write", async () => {
    const emu = await emulator({ ...NO_MINIMUM, latency: { fixedMs: 300 } });
    const client = sdk(emu);
    const parallel = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((q) => client.messages.create(cachedParams(`question ${q}`))),
    );
    for (const reply of parallel) {
      expect(reply.usage).toMatchObject({ cache_creation_input_tokens: 290, cache_read_input_tokens: 0 });
    }
    const after = await client.messages.create(cachedParams('question f'));
    expect(after.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 290 });
    expect(emu.control.stats().tokens).toMatchObject({ cacheCreation: 5 * 290, cacheRead: 290 });
  });

  it("a streamed writer's prefix is readable once its message_start is out, before the stream ends", async () => {
    // 100 output tokens at 20 ms each: the writer streams for about 2 s.
    const emu = await emulator({ ...NO_MINIMUM, latency: { perOutputTokenMs: 20 } });
    const client = sdk(emu, KEY, 60_000);
    const writer = client.messages.stream(cachedParams('write it @@output_tokens:100@@'));
    let ended = false;
    const done = writer.finalMessage().finally(() => {
      ended = true;
    });
    const started = await new Promise<Anthropic.Message>((resolve, reject) => {
      writer.on('streamEvent', (event) => {
        if (event.type === 'message_start') resolve(event.message);
      });
      writer.on('error', reject);
    });
    expect(started.usage).toMatchObject({ cache_creation_input_tokens: 290, cache_read_input_tokens: 0 });

    const reader = await client.messages.create(cachedParams('read it @@output_tokens:1@@'));
    expect(reader.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 290 });
    expect(ended).toBe(false);
    expect((await done).usage.cache_creation_input_tokens).toBe(290);
  });

  it('a streamed request admitted before the writer began still misses', async () => {
    // The writer waits 500 ms before its headers; a second request admitted meanwhile pays the write too.
    const emu = await emulator({ ...NO_MINIMUM, latency: { fixedMs: 500 } });
    const client = sdk(emu, KEY, 60_000);
    const writer = client.messages.stream(cachedParams('first'));
    // Admitted (logged at admission), its response not yet begun.
    await vi.waitFor(() => expect(emu.control.stats().lastSeq).toBe(1), { timeout: 5_000 });
    const second = await client.messages.create(cachedParams('second'));
    expect(second.usage).toMatchObject({ cache_creation_input_tokens: 290, cache_read_input_tokens: 0 });
    expect((await writer.finalMessage()).usage.cache_creation_input_tokens).toBe(290);
  });
});

describe('faults', () => {
  it('@@fault:T:k@@ fails the first k attempts of that content, then succeeds', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    const p = params('flaky job @@fault:overloaded_error:2@@');
    await expect(client.messages.create(p)).rejects.toBeInstanceOf(OverloadedError);
    await expect(client.messages.create(p)).rejects.toBeInstanceOf(OverloadedError);
    const ok = await client.messages.create(p);
    expect(ok.type).toBe('message');
    await client.messages.create(p);
    expect(emu.control.log().map((e) => [e.attempt, e.status])).toEqual([
      [1, 529],
      [2, 529],
      [3, 200],
      [4, 200],
    ]);
    // Other content is unaffected and counted on its own.
    await client.messages.create(params('steady job'));
    expect(emu.control.log().at(-1)?.attempt).toBe(1);
  });

  it('@@fault:T@@ always fails; connection_reset k times then success', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    for (let i = 0; i < 3; i++) {
      await expect(client.messages.create(params('@@fault:api_error@@'))).rejects.toBeInstanceOf(
        InternalServerError,
      );
    }
    const p = params('@@fault:connection_reset:1@@ please');
    const err = await failure(client.messages.create(p));
    expect(err).toBeInstanceOf(APIConnectionError);
    expect((await client.messages.create(p)).type).toBe('message');
  });

  it('a scripted sequence gives the next requests these outcomes in order', async () => {
    const emu = await emulator({
      faults: { script: ['api_error', 'ok', { type: 'rate_limit_error', retryAfterSeconds: 4 }] },
    });
    const client = sdk(emu);
    const outcomes: Array<number | string> = [];
    for (let i = 0; i < 4; i++) {
      try {
        await client.messages.create(params(`scripted ${i}`));
        outcomes.push(200);
      } catch (err) {
        outcomes.push(
          err instanceof APIError
            ? `${err.status}:${(err.headers as Headers | undefined)?.get('retry-after') ?? ''}`
            : 'conn',
        );
      }
    }
    expect(outcomes).toEqual(['500:', 200, '429:4', 200]);
    emu.control.setFaults({ script: ['conflict_error'] });
    await expect(client.messages.create(params('again'))).rejects.toMatchObject({ status: 409 });
  });

  async function outcomesOf(
    emu: EmulatorHandle,
    prompts: string[],
    mode: 'concurrent' | 'sequential-reversed',
  ): Promise<Map<string, string[]>> {
    const client = sdk(emu);
    const result = new Map<string, string[]>();
    // Each prompt retries until success (at most 6 attempts), as a runner's job would.
    const run = async (prompt: string) => {
      const seen: string[] = [];
      for (let attempt = 0; attempt < 6; attempt++) {
        try {
          await client.messages.create(params(prompt));
          seen.push('ok');
          break;
        } catch (err) {
          seen.push(err instanceof APIError ? String(err.status) : 'conn');
        }
      }
      result.set(prompt, seen);
    };
    if (mode === 'concurrent') await Promise.all(prompts.map(run));
    else for (const prompt of [...prompts].reverse()) await run(prompt);
    return result;
  }

  it('seeded probabilities give the same outcomes on rerun whatever the concurrency', async () => {
    const faults = { probabilities: { api_error: 0.25, overloaded_error: 0.2, rate_limit_error: 0.1 } };
    const prompts = Array.from({ length: 40 }, (_, i) => `job number ${i}`);
    const first = await outcomesOf(await emulator({ seed: 42, faults }), prompts, 'concurrent');
    const second = await outcomesOf(await emulator({ seed: 42, faults }), prompts, 'sequential-reversed');
    expect(second).toEqual(first);

    const all = [...first.values()].flat();
    expect(all.filter((o) => o !== 'ok').length).toBeGreaterThan(5);
    expect(new Set(all)).toEqual(new Set(['ok', '500', '529', '429']));

    const otherSeed = await outcomesOf(await emulator({ seed: 43, faults }), prompts, 'concurrent');
    expect(otherSeed).not.toEqual(first);
  });

  it('faults can be changed at run time and stats count them', async () => {
    const emu = await emulator();
    const client = sdk(emu);
    emu.control.setFaults({ probabilities: { overloaded_error: 1 } });
    await expect(client.messages.create(params('a'))).rejects.toBeInstanceOf(OverloadedError);
    emu.control.setFaults({});
    await client.messages.create(params('a'));
    expect(emu.control.stats().faultsInjected).toBe(1);
    expect(emu.control.log()[0]?.fault).toBe('probability');
  });

  it('latency delays replies without changing them', async () => {
    const emu = await emulator({ latency: { fixedMs: 50 } });
    const started = performance.now();
    await sdk(emu).messages.create(params('slow'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });
});
