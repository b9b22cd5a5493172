import { describe, expect, it } from 'vitest';
import { analyzePrompt, type PromptParams } from '../../../src/emulator/prompt-analysis.js';
import { PromptCache } from '../../../src/emulator/prompt-cache.js';
import { ReplyGenerator, replyFingerprint } from '../../../src/emulator/replies.js';
import { MESSAGE_OVERHEAD_TOKENS } from '../../../src/emulator/token-count.js';

const base: PromptParams = { model: 'm', messages: [{ role: 'user', content: 'hello world' }] };

describe('analyzePrompt', () => {
  it('counts ceil(chars/4) per text plus a per-message overhead', () => {
    expect(analyzePrompt(base).inputTokens).toBe(3 + MESSAGE_OVERHEAD_TOKENS);
    const withSystem = analyzePrompt({
      ...base,
      system: [
        { type: 'text', text: 'abcde' },
        { type: 'text', text: 'a' },
      ],
    });
    expect(withSystem.inputTokens).toBe(2 + 1 + 3 + 3);
  });

  it('counts other blocks and tools by their JSON without cache_control', () => {
    const image = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } };
    const a = analyzePrompt({ model: 'm', messages: [{ role: 'user', content: [image] }] });
    expect(a.inputTokens).toBe(Math.ceil(JSON.stringify(image).length / 4) + 3);
    const b = analyzePrompt({
      model: 'm',
      messages: [{ role: 'user', content: [{ ...image, cache_control: { type: 'ephemeral' } }] }],
    });
    expect(b.inputTokens).toBe(a.inputTokens);
    expect(b.promptHash).toBe(a.promptHash);
    const tool = { name: 'lookup', description: 'Looks things up', input_schema: { type: 'object' } };
    expect(analyzePrompt({ ...base, tools: [tool] }).inputTokens).toBe(
      analyzePrompt(base).inputTokens + Math.ceil(JSON.stringify(tool).length / 4),
    );
  });

  it('hashes model, tools, system and messages; a string and a one-text-block content hash alike', () => {
    const asBlock = analyzePrompt({
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello world' }] }],
    });
    expect(asBlock.promptHash).toBe(analyzePrompt(base).promptHash);
    expect(analyzePrompt(base).promptHash).toMatch(/^[0-9a-f]{12}$/);
    const variants: PromptParams[] = [
      { ...base, model: 'n' },
      { ...base, system: 'be brief' },
      { ...base, messages: [{ role: 'assistant', content: 'hello world' }] },
      { ...base, messages: [{ role: 'user', content: 'hello worl' }] },
      { ...base, tools: [{ name: 't' }] },
      // Length-prefixing keeps a split text apart from the joined one.
      {
        model: 'm',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'hello ' },
              { type: 'text', text: 'world' },
            ],
          },
        ],
      },
    ];
    const hashes = new Set([
      analyzePrompt(base).promptHash,
      ...variants.map((v) => analyzePrompt(v).promptHash),
    ]);
    expect(hashes.size).toBe(variants.length + 1);
  });

  it('collects only texts with "@@" and records breakpoints with cumulative tokens', () => {
    expect(analyzePrompt(base).markerTexts).toBeNull();
    const a = analyzePrompt({
      model: 'm',
      system: [{ type: 'text', text: 'x'.repeat(40), cache_control: { type: 'ephemeral' } }],
      messages: [
        {
          role: 'user',
          content: [{ type: 'text', text: 'y'.repeat(8), cache_control: { type: 'ephemeral', ttl: '1h' } }],
        },
        { role: 'user', content: 'z @@fault:api_error@@' },
      ],
    });
    expect(a.markerTexts).toEqual(['z @@fault:api_error@@']);
    expect(a.breakpoints?.map((b) => [b.tokens, b.ttlMs])).toEqual([
      [10, 5 * 60_000],
      [15, 60 * 60_000],
    ]);
  });
});

describe('PromptCache', () => {
  it('reads the longest live prefix and writes up to the last breakpoint', () => {
    let now = 0;
    const cache = new PromptCache(() => now);
    const bps = [
      { key: 'a', tokens: 100, ttlMs: 1000 },
      { key: 'b', tokens: 150, ttlMs: 1000 },
    ];
    expect(cache.peek(bps)).toEqual({ cacheReadTokens: 0, cacheCreationTokens: 150 });
    cache.commit(bps.slice(0, 1));
    expect(cache.peek(bps)).toEqual({ cacheReadTokens: 100, cacheCreationTokens: 50 });
    cache.commit(bps);
    expect(cache.peek(bps)).toEqual({ cacheReadTokens: 150, cacheCreationTokens: 0 });
    now = 1000;
    expect(cache.peek(bps)).toEqual({ cacheReadTokens: 0, cacheCreationTokens: 150 });
    expect(cache.peek(null)).toEqual({ cacheReadTokens: 0, cacheCreationTokens: 0 });
  });
});

describe('ReplyGenerator', () => {
  it('starts with the fingerprint, has 4 characters per output token, and depends on the seed', () => {
    const hash = replyFingerprint(base);
    const gen = new ReplyGenerator(1);
    const reply = gen.build(hash, 1000, null, 50);
    expect(reply).toMatchObject({ outputTokens: 50, stopReason: 'end_turn' });
    expect(reply.text.startsWith(`echo:${hash} `)).toBe(true);
    expect(reply.text).toHaveLength(200);
    expect(gen.build(hash, 1000, null, 50)).toEqual(reply);
    expect(new ReplyGenerator(2).build(hash, 1000, null, 50).text).not.toBe(reply.text);
    const long = gen.build(hash, 100_000, null, 20_000);
    expect(long.text).toHaveLength(80_000);
  });

  it('cuts at max_tokens and keeps the fingerprint whole even when tiny', () => {
    const hash = replyFingerprint(base);
    const gen = new ReplyGenerator(0);
    expect(gen.build(hash, 10, null, 40)).toMatchObject({ outputTokens: 10, stopReason: 'max_tokens' });
    const tiny = gen.build(hash, 1, null, null);
    expect(tiny).toMatchObject({ outputTokens: 1, stopReason: 'max_tokens', text: `echo:${hash}` });
    expect(gen.build(hash, 30, 'max_tokens', null)).toMatchObject({
      outputTokens: 30,
      stopReason: 'max_tokens',
    });
    expect(gen.build(hash, 30, 'refusal', null).stopReason).toBe('refusal');
    const natural = gen.naturalTokens(hash);
    expect(natural).toBeGreaterThanOrEqual(16);
    expect(natural).toBeLessThanOrEqual(128);
  });
});
