import { describe, expect, it } from 'vitest';
import type { MessageParams } from '../../../src/batch/types.js';
import { estimateRequest } from '../../../src/limits/estimate-tokens.js';
import {
  actualCostNano,
  LONG_CONTEXT_TOKENS,
  unpriceableFeature,
  usdToNano,
  worstCaseNano,
  type FrozenPrice,
} from '../../../src/pricing/request-cost.js';

const SONNET: FrozenPrice = { input: 3, output: 15, cache_write: 3.75, cache_write_1h: 6, cache_read: 0.3 };

function params(extra: Partial<MessageParams> = {}): MessageParams {
  return {
    model: 'claude-sonnet-4-6',
    max_tokens: 1_000,
    messages: [{ role: 'user', content: 'x'.repeat(300) }],
    ...extra,
  };
}

describe('request cost in nano-dollars', () => {
  it('worst case: the input estimate at the input rate and all of max_tokens at the output rate', () => {
    const p = params();
    const input = estimateRequest(p).inputTokens;
    expect(worstCaseNano(p, SONNET)).toBe(input * 3_000 + 1_000 * 15_000);
  });

  it('worst case of a request with a breakpoint: every input token a cache write at its TTL rate', () => {
    const block = { type: 'text', text: 'y'.repeat(600), cache_control: { type: 'ephemeral' } };
    const p5 = params({ system: [block] });
    const p1h = params({ system: [{ ...block, cache_control: { type: 'ephemeral', ttl: '1h' } }] });
    const input = estimateRequest(p5).inputTokens;
    expect(worstCaseNano(p5, SONNET)).toBe(input * 3_750 + 1_000 * 15_000);
    expect(worstCaseNano(p1h, SONNET)).toBe(input * 6_000 + 1_000 * 15_000);
  });

  it('worst case over the long-context threshold is priced at the long-context rates', () => {
    const p = params({ messages: [{ role: 'user', content: 'z'.repeat(3 * LONG_CONTEXT_TOKENS + 3) }] });
    const input = estimateRequest(p).inputTokens;
    expect(input).toBeGreaterThan(LONG_CONTEXT_TOKENS);
    expect(worstCaseNano(p, SONNET)).toBe(input * 3_000 * 2 + 1_000 * 15_000 * 1.5);
  });

  it('actual cost prices cache writes by TTL from usage.cache_creation', () => {
    const usage = {
      input_tokens: 100,
      output_tokens: 50,
      cache_creation_input_tokens: 3_000,
      cache_read_input_tokens: 10_000,
      cache_creation: { ephemeral_5m_input_tokens: 1_000, ephemeral_1h_input_tokens: 2_000 },
    };
    expect(actualCostNano(usage, params(), SONNET)).toBe(
      100 * 3_000 + 50 * 15_000 + 1_000 * 3_750 + 2_000 * 6_000 + 10_000 * 300,
    );
    // Without the breakdown: at the rate of the request's longest TTL.
    const { cache_creation: _split, ...bare } = usage;
    const oneHour = params({
      system: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral', ttl: '1h' } }],
    });
    expect(actualCostNano(bare, oneHour, SONNET)).toBe(
      100 * 3_000 + 50 * 15_000 + 3_000 * 6_000 + 10_000 * 300,
    );
    expect(actualCostNano(bare, params(), SONNET)).toBe(
      100 * 3_000 + 50 * 15_000 + 3_000 * 3_750 + 10_000 * 300,
    );
  });

  it('settles at or below the worst case when the estimate held and max_tokens was used up', () => {
    const p = params();
    const estimate = estimateRequest(p).inputTokens;
    const usage = { input_tokens: Math.floor(estimate * 0.75), output_tokens: 1_000 };
    expect(actualCostNano(usage, p, SONNET)).toBeLessThanOrEqual(worstCaseNano(p, SONNET));
  });

  it('refuses server tools, MCP and containers; client tools are priced as tokens', () => {
    expect(
      unpriceableFeature(params({ tools: [{ name: 'f', input_schema: { type: 'object' } }] })),
    ).toBeNull();
    expect(unpriceableFeature(params({ tools: [{ type: 'bash_20250124', name: 'bash' }] }))).toBeNull();
    expect(
      unpriceableFeature(params({ tools: [{ type: 'web_search_20250305', name: 'web_search' }] })),
    ).toMatch(/tools\[0\] has type "web_search_20250305": a server tool/);
    expect(unpriceableFeature(params({ mcp_servers: [] }))).toMatch(/^mcp_servers/);
    expect(unpriceableFeature(params({ container: 'c' }))).toMatch(/^container/);
  });

  it('converts USD to nano-dollars exactly, rounding up', () => {
    expect(usdToNano(1)).toBe(1_000_000_000);
    expect(usdToNano(0.1)).toBe(100_000_000);
    expect(usdToNano(12.345678901)).toBe(12_345_678_901);
  });
});
