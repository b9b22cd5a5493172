import { readFile } from 'node:fs/promises';
import { globToRegExp } from '../model-glob.js';
import type { UsageTotals } from '../store/batch-record.js';

/** USD per million tokens for the models whose id matches `match` (a glob: `*` any run, `?` one character). */
export interface ModelPrice {
  match: string;
  input: number;
  output: number;
  /** Cache writes (`cache_creation_input_tokens`), 5-minute TTL. */
  cache_write: number;
  /** Cache reads (`cache_read_input_tokens`). */
  cache_read: number;
}

/** Prices in order: the first entry whose glob matches the whole model id applies. */
export interface PriceTable {
  entries: readonly ModelPrice[];
  /** Where the table came from, for the page footer: `built-in` or the file's path. */
  source: string;
}

/**
 * List prices of the Messages API (standard tier, USD per million tokens; cache writes at the
 * 5-minute rate) for current and recent Claude models, as published at https://www.anthropic.com/pricing
 * in early 2026. Long-context (>200K input) surcharges, the Batches API discount and regional
 * endpoints are not modelled. Order matters: Opus 4 and 4.1 are listed before the `claude-opus-4*`
 * catch-all that prices Opus 4.5 and later. Override or extend with `--prices FILE`.
 */
export const DEFAULT_PRICES: readonly ModelPrice[] = [
  { match: 'claude-opus-4-1*', input: 15, output: 75, cache_write: 18.75, cache_read: 1.5 },
  { match: 'claude-opus-4-0*', input: 15, output: 75, cache_write: 18.75, cache_read: 1.5 },
  { match: 'claude-opus-4-2025*', input: 15, output: 75, cache_write: 18.75, cache_read: 1.5 },
  { match: 'claude-opus-4*', input: 5, output: 25, cache_write: 6.25, cache_read: 0.5 },
  { match: 'claude-sonnet-4*', input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 },
  { match: 'claude-haiku-4*', input: 1, output: 5, cache_write: 1.25, cache_read: 0.1 },
  { match: 'claude-3-7-sonnet*', input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 },
  { match: 'claude-3-5-sonnet*', input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 },
  { match: 'claude-3-5-haiku*', input: 0.8, output: 4, cache_write: 1, cache_read: 0.08 },
  { match: 'claude-3-opus*', input: 15, output: 75, cache_write: 18.75, cache_read: 1.5 },
  { match: 'claude-3-haiku*', input: 0.25, output: 1.25, cache_write: 0.3, cache_read: 0.03 },
];

export const DEFAULT_PRICE_TABLE: PriceTable = { entries: DEFAULT_PRICES, source: 'built-in' };

/** A prices file that cannot be used; the message names the file and the entry. */
export class PriceTableError extends Error {
  override name = 'PriceTableError';
}

export const PRICES_FILE_HELP = `A prices file is JSON: either an array of entries, or
  { "models": [entries], "include_defaults": true }
where an entry is
  { "match": "claude-sonnet-4*", "input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3 }
in USD per million tokens (cache_write defaults to 1.25 x input, cache_read to 0.1 x input). The
first entry whose glob matches the model id wins; the file's entries come before the built-in table,
which still prices other models unless "include_defaults" is false.`;

const matchers = new WeakMap<ModelPrice, RegExp>();

/** The price of a model id, or null when no entry matches. */
export function findPrice(table: PriceTable, model: string): ModelPrice | null {
  for (const entry of table.entries) {
    let re = matchers.get(entry);
    if (!re) matchers.set(entry, (re = globToRegExp(entry.match)));
    if (re.test(model)) return entry;
  }
  return null;
}

function rate(value: unknown, where: string, field: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new PriceTableError(`${where}: "${field}" must be a number >= 0 (USD per million tokens)`);
  }
  return value;
}

/** Validates a parsed prices file (see {@link PRICES_FILE_HELP}) and builds the table. */
function parsePriceTable(json: unknown, source: string): PriceTable {
  let list: unknown;
  let includeDefaults = true;
  if (Array.isArray(json)) {
    list = json;
  } else if (json !== null && typeof json === 'object') {
    const obj = json as Record<string, unknown>;
    list = obj['models'];
    if (obj['include_defaults'] !== undefined) {
      if (typeof obj['include_defaults'] !== 'boolean') {
        throw new PriceTableError(`${source}: "include_defaults" must be true or false`);
      }
      includeDefaults = obj['include_defaults'];
    }
  }
  if (!Array.isArray(list)) {
    throw new PriceTableError(`${source}: expected an array of prices or an object with a "models" array`);
  }
  const entries = list.map((item: unknown, i): ModelPrice => {
    const where = `${source}: entry ${i}`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw new PriceTableError(`${where}: expected an object`);
    }
    const e = item as Record<string, unknown>;
    if (typeof e['match'] !== 'string' || e['match'] === '') {
      throw new PriceTableError(
        `${where}: "match" must be a non-empty model id glob, e.g. "claude-sonnet-4*"`,
      );
    }
    const input = rate(e['input'], where, 'input');
    return {
      match: e['match'],
      input,
      output: rate(e['output'], where, 'output'),
      cache_write: rate(e['cache_write'], where, 'cache_write', input * 1.25),
      cache_read: rate(e['cache_read'], where, 'cache_read', input * 0.1),
    };
  });
  return { entries: includeDefaults ? [...entries, ...DEFAULT_PRICES] : entries, source };
}

/** Reads `--prices FILE`. */
export async function loadPriceTable(file: string): Promise<PriceTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PriceTableError(
      `cannot read prices file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PriceTableError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parsePriceTable(json, file);
}

/** An estimated cost in USD. */
export interface CostEstimate {
  /** Null when no model of the batch has a price. */
  usd: number | null;
  /**
   * False when the batch mixes models: usage is kept per batch, not per model, so the cost uses
   * rates averaged by each model's share of the requests.
   */
  exact: boolean;
  /** Models of the batch with no price (their share is left out). */
  unpriced: string[];
}

/** Cost of one usage total at one model's rates. */
export function costAt(price: Omit<ModelPrice, 'match'>, usage: UsageTotals): number {
  return (
    (usage.input_tokens * price.input +
      usage.output_tokens * price.output +
      usage.cache_creation_input_tokens * price.cache_write +
      usage.cache_read_input_tokens * price.cache_read) /
    1_000_000
  );
}

/** Estimates a batch's cost from its usage and its requests per model. */
export function estimateCost(
  usage: UsageTotals,
  models: Record<string, number>,
  table: PriceTable,
): CostEstimate {
  const unpriced: string[] = [];
  const priced: { price: ModelPrice; weight: number }[] = [];
  let totalWeight = 0;
  for (const [model, requests] of Object.entries(models)) {
    const weight = Math.max(0, requests);
    totalWeight += weight;
    const price = findPrice(table, model);
    if (price) priced.push({ price, weight });
    else unpriced.push(model);
  }
  if (priced.length === 0) return { usd: null, exact: false, unpriced };
  const blended = { input: 0, output: 0, cache_write: 0, cache_read: 0 };
  for (const { price, weight } of priced) {
    const share = totalWeight > 0 ? weight / totalWeight : 1 / priced.length;
    blended.input += price.input * share;
    blended.output += price.output * share;
    blended.cache_write += price.cache_write * share;
    blended.cache_read += price.cache_read * share;
  }
  return { usd: costAt(blended, usage), exact: priced.length === 1 && unpriced.length === 0, unpriced };
}
