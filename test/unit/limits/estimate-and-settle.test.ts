import { describe, expect, it } from 'vitest';
import {
  actualCost,
  estimateRequest,
  parseRateLimitHeaders,
  settlementDelta,
} from '../../../src/limits/index.js';

const prose =
  'The quick brown fox jumps over the lazy dog while the committee deliberates about budgets, tokens and limits. ';

describe('estimateRequest', () => {
  it('errs high against chars/4 on text', () => {
    for (const repeat of [1, 10, 200]) {
      const text = prose.repeat(repeat);
      const est = estimateRequest({
        model: 'm',
        max_tokens: 100,
        system: text,
        messages: [
          { role: 'user', content: text },
          { role: 'user', content: [{ type: 'text', text }] },
        ],
      });
      expect(est.inputTokens).toBeGreaterThan(Math.ceil((3 * text.length) / 4));
      expect(est.outputTokens).toBe(100);
    }
  });

  it('counts tools, and reserves max_tokens or the configured output estimate', () => {
    const base = { model: 'm', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] };
    const withTools = estimateRequest({ ...base, tools: [{ name: 'x', description: 'y'.repeat(400) }] });
    expect(withTools.inputTokens).toBeGreaterThan(estimateRequest(base).inputTokens + 100);
    expect(estimateRequest(base, 200).outputTokens).toBe(200);
    expect(estimateRequest(base, 5000).outputTokens).toBe(1000);
  });

  it('costs an image by its pixels, not by its base64 size', () => {
    const image = {
      type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: 'A'.repeat(3_000_000) },
    };
    const est = estimateRequest({
      model: 'm',
      max_tokens: 10,
      messages: [{ role: 'user', content: [image] }],
    });
    expect(est.inputTokens).toBeGreaterThanOrEqual(1600);
    expect(est.inputTokens).toBeLessThan(10_000);
  });
});

describe('settlement math', () => {
  const charged = { requests: 1, inputTokens: 5000, outputTokens: 1000 };

  it('input counts input + cache creation, not cache reads; output counts output', () => {
    const usage = {
      input_tokens: 100,
      output_tokens: 250,
      cache_creation_input_tokens: 400,
      cache_read_input_tokens: 9000,
    };
    expect(actualCost(usage)).toEqual({ requests: 1, inputTokens: 500, outputTokens: 250 });
    expect(settlementDelta(charged, usage)).toEqual({ requests: 0, inputTokens: -4500, outputTokens: -750 });
    expect(
      settlementDelta(charged, {
        input_tokens: 7000,
        output_tokens: 1000,
        cache_creation_input_tokens: null,
      }),
    ).toEqual({
      requests: 0,
      inputTokens: 2000,
      outputTokens: 0,
    });
  });

  it('a failed call refunds tokens, keeps the request; a release refunds all; unlimited dimensions stay untouched', () => {
    expect(settlementDelta(charged, null)).toEqual({ requests: 0, inputTokens: -5000, outputTokens: -1000 });
    expect(settlementDelta(charged, null, true)).toEqual({
      requests: -1,
      inputTokens: -5000,
      outputTokens: -1000,
    });
    expect(
      settlementDelta(
        { requests: 1, inputTokens: 0, outputTokens: 0 },
        { input_tokens: 10, output_tokens: 10 },
      ),
    ).toEqual({ requests: 0, inputTokens: 0, outputTokens: 0 });
  });

  it('parses the rate-limit headers, ignoring what does not parse', () => {
    const parsed = parseRateLimitHeaders({
      'anthropic-ratelimit-requests-limit': '50',
      'anthropic-ratelimit-requests-remaining': '49',
      'anthropic-ratelimit-requests-reset': '2026-01-01T00:00:01Z',
      'anthropic-ratelimit-input-tokens-limit': 'lots',
      'anthropic-ratelimit-input-tokens-remaining': '0',
      'anthropic-ratelimit-output-tokens-limit': '0',
    });
    expect(parsed.requests).toEqual({ limit: 50, remaining: 49, reset: Date.parse('2026-01-01T00:00:01Z') });
    expect(parsed.inputTokens).toEqual({ remaining: 0 });
    expect(parsed.outputTokens).toEqual({});
  });
});
