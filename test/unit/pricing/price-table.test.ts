import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_PRICES,
  DEFAULT_PRICE_TABLE,
  HOSTED_PRICE_FACTOR,
  PriceTableError,
  costAt,
  estimateBatchCost,
  findPrice,
  loadPriceTable,
} from '../../../src/pricing/price-table.js';
import { frozenPriceTable } from '../../../src/pricing/request-cost.js';

describe('prices file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'claude-batch-prices-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function load(content: unknown) {
    const file = join(dir, 'prices.json');
    await writeFile(file, JSON.stringify(content));
    return { file, table: loadPriceTable(file) };
  }

  it('fills the cache rates from the input rate, and puts the file before the built-in table', async () => {
    const { table } = await load([{ match: 'my-model*', input: 2, output: 10 }]);
    const { entries } = await table;
    expect(entries[0]).toEqual({
      match: 'my-model*',
      input: 2,
      output: 10,
      cache_write: 2.5,
      cache_read: 0.2,
    });
    expect(entries.slice(1)).toEqual(DEFAULT_PRICES);
    const only = await load({ models: [{ match: 'm', input: 1, output: 1 }], include_defaults: false });
    expect((await only.table).entries).toHaveLength(1);
  });

  const cases: Array<[string, unknown, string]> = [
    [
      'a wrong type',
      [{ match: 'claude-*', input: 'cheap', output: 1 }],
      'entry 0, field "input": expected a number >= 0 (USD per million tokens), got "cheap"',
    ],
    [
      'a negative rate',
      [
        { match: 'a', input: 1, output: 1 },
        { match: 'b', input: 1, output: 1, cache_read: -0.5 },
      ],
      'entry 1, field "cache_read": expected a number >= 0 (USD per million tokens), got -0.5',
    ],
    [
      'an unknown field in an entry (a misspelt rate would be priced at its default)',
      { models: [{ match: 'a', input: 1, output: 1, cache_writes: 2 }] },
      'field "models", entry 0, field "cache_writes": unknown field (value 2); expected match, input, output, cache_write, cache_read',
    ],
    [
      'an unknown top-level field, before the problems it explains',
      { models: 'all', include_default: false },
      'field "include_default": unknown field (value false); expected models, include_defaults',
    ],
    [
      'neither an array nor an object',
      3,
      'expected an array of prices or an object with a "models" array, got 3',
    ],
    ['no models', {}, 'field "models": expected an array of prices, got nothing'],
    [
      'a non-boolean include_defaults',
      { models: [], include_defaults: 'no' },
      'field "include_defaults": expected true or false, got "no"',
    ],
  ];
  for (const [title, content, message] of cases) {
    it(`refuses ${title}, naming the file, the field, the value and what it takes`, async () => {
      const { file, table } = await load(content);
      await expect(table).rejects.toThrow(PriceTableError);
      await expect(table).rejects.toThrow(`${file}: ${message}`);
    });
  }
});

describe('a batch cost with hosted answers', () => {
  const usage = (output: number) => ({
    input_tokens: 2_000_000,
    output_tokens: output,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  });
  const none = usage(0);
  none.input_tokens = 0;

  it('prices the hosted part at half the list price, from the same table', () => {
    const table = { entries: DEFAULT_PRICES, source: 'built-in' };
    const price = findPrice(table, 'claude-sonnet-4-6')!;
    const all = usage(1_000_000);
    const hostedUsage = usage(500_000);
    const live = estimateBatchCost(
      { usage: all, usage_hosted: none, models: { 'claude-sonnet-4-6': 3 } },
      table,
    );
    expect(live).toEqual({ usd: costAt(price, all), exact: true, unpriced: [], hosted_usd: 0 });
    const hosted = estimateBatchCost(
      { usage: all, usage_hosted: hostedUsage, models: { 'claude-sonnet-4-6': 3 } },
      table,
    );
    expect(hosted.hosted_usd).toBeCloseTo(costAt(price, hostedUsage) * HOSTED_PRICE_FACTOR, 9);
    expect(hosted.usd).toBeCloseTo(costAt(price, all) - costAt(price, hostedUsage) / 2, 9);
    // All hosted: exactly half of the same usage live.
    const allHosted = estimateBatchCost(
      { usage: all, usage_hosted: all, models: { 'claude-sonnet-4-6': 3 } },
      table,
    );
    expect(allHosted.usd).toBeCloseTo(live.usd! / 2, 9);
  });

  it('knows no cost for a batch no model of which has a price', () => {
    const table = { entries: DEFAULT_PRICES, source: 'built-in' };
    const all = usage(1);
    expect(estimateBatchCost({ usage: all, usage_hosted: all, models: { 'my-model': 1 } }, table)).toEqual({
      usd: null,
      exact: false,
      unpriced: ['my-model'],
      hosted_usd: null,
    });
  });

  it('prices a batch at the prices it froze at submit', () => {
    const frozen = frozenPriceTable(
      JSON.stringify({
        'claude-sonnet-4-6': { input: 1, output: 2, cache_write: 1.25, cache_write_1h: 2, cache_read: 0.1 },
      }),
    );
    expect(findPrice(frozen, 'claude-sonnet-4-6')).toMatchObject({ input: 1, output: 2 });
    expect(findPrice(frozen, 'claude-sonnet-4-5')).toBeNull();
    expect(frozenPriceTable(null)).toBe(DEFAULT_PRICE_TABLE);
  });
});
