import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { nonEmptyString, nonNegativeNumber, parseFile, strictRecord } from '../config/file-schema.js';
import { globToRegExp } from '../model-glob.js';
import type { UsageTotals } from '../store/batch-record.js';

const RATE = 'a number >= 0 (USD per million tokens)';

/**
 * One entry of a prices file: USD per million tokens for the models whose id matches `match` (a
 * glob: `*` any run, `?` one character). Unknown fields are refused: a misspelt rate would
 * otherwise be priced at its default.
 */
const modelPriceSchema = strictRecord({
  match: nonEmptyString('a non-empty model id glob, e.g. "claude-sonnet-4*"'),
  input: nonNegativeNumber(RATE),
  output: nonNegativeNumber(RATE),
  /** Cache writes (`cache_creation_input_tokens`), 5-minute TTL. Default 1.25 x input. */
  cache_write: nonNegativeNumber(RATE).optional(),
  /** Cache reads (`cache_read_input_tokens`). Default 0.1 x input. */
  cache_read: nonNegativeNumber(RATE).optional(),
  /** Cache writes with the 1-hour TTL (`usage.cache_creation.ephemeral_1h_input_tokens`). Default 2 x input. */
  cache_write_1h: nonNegativeNumber(RATE).optional(),
}).transform((entry): ModelPrice => ({
  match: entry.match,
  input: entry.input,
  output: entry.output,
  cache_write: entry.cache_write ?? entry.input * 1.25,
  cache_read: entry.cache_read ?? entry.input * 0.1,
  ...(entry.cache_write_1h !== undefined ? { cache_write_1h: entry.cache_write_1h } : {}),
}));

/** A price with every rate filled in (USD per million tokens). */
export interface ModelPrice {
  match: string;
  input: number;
  output: number;
  /** Cache writes at the 5-minute TTL. */
  cache_write: number;
  cache_read: number;
  /** Cache writes at the 1-hour TTL; absent: 2 x input (see {@link cacheWrite1h}). */
  cache_write_1h?: number;
}

/** The 1-hour cache write rate of a price: its own, else 2 x input (Anthropic's published ratio). */
export function cacheWrite1h(price: Omit<ModelPrice, 'match'>): number {
  return price.cache_write_1h ?? price.input * 2;
}

const modelPricesSchema = z.array(modelPriceSchema, { error: 'an array of prices' });

/** The object form of a prices file (see {@link PRICES_FILE_HELP}). */
const pricesFileSchema = strictRecord(
  {
    models: modelPricesSchema,
    include_defaults: z.boolean({ error: 'true or false' }).optional(),
  },
  'an array of prices or an object with a "models" array',
);

/** Prices in order: the first entry whose glob matches the whole model id applies. */
export interface PriceTable {
  entries: readonly ModelPrice[];
  /** Where the table came from, for the page footer: `built-in` or the file's path. */
  source: string;
}

/**
 * List prices of the Messages API (standard tier, USD per million tokens; cache writes at the
 * 5-minute rate) for current and recent Claude models, as published at https://www.anthropic.com/pricing
 * in early 2026. Long-context (>200K input) surcharges and regional endpoints are not modelled;
 * the hosted Batches API's discount is applied to the hosted answers by {@link estimateBatchCost}.
 * Order matters: Opus 4 and 4.1 are listed before the `claude-opus-4*` catch-all that prices Opus 4.5 and later. Override or extend with `--prices FILE`.
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
in USD per million tokens (cache_write, the 5-minute cache write, defaults to 1.25 x input;
cache_write_1h to 2 x input; cache_read to 0.1 x input). The
first entry whose glob matches the model id wins; the file's entries come before the built-in table,
which still prices other models unless "include_defaults" is false. Unknown fields are refused.`;

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

/** Validates a parsed prices file (see {@link PRICES_FILE_HELP}) and builds the table. */
function parsePriceTable(json: unknown, source: string): PriceTable {
  const fail = (message: string) => new PriceTableError(message);
  // The array form has no top-level field, so its errors name entries only ("entry 2").
  const file = Array.isArray(json)
    ? { models: parseFile(modelPricesSchema, json, source, fail), include_defaults: undefined }
    : parseFile(pricesFileSchema, json, source, fail);
  const entries = file.models;
  return { entries: (file.include_defaults ?? true) ? [...entries, ...DEFAULT_PRICES] : entries, source };
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

/**
 * What the hosted Message Batches API charges against the list price: half (its `batch` service
 * tier; issue 14). Applied to the usage of the answers it gave (`usage_hosted` of a batch).
 */
export const HOSTED_PRICE_FACTOR = 0.5;

/** A batch's estimated cost, the hosted API's answers at {@link HOSTED_PRICE_FACTOR} of the list price. */
export interface BatchCostEstimate extends CostEstimate {
  /**
   * Of `usd`, what the answers of the hosted API cost (at half price): 0 for a batch all live;
   * null when no model of the batch has a price.
   */
  hosted_usd: number | null;
}

/**
 * The one price of a batch's usage, wherever a cost is shown (`status`, the dashboard, /metrics):
 * its usage at the table's rates, less the hosted discount on the part the hosted API answered
 * (`usage_hosted`, also counted in `usage`): `estimateCost(usage) - 0.5 x estimateCost(usage_hosted)`.
 * Usage is kept per batch, not per model or path, so a batch mixing models has rates averaged by
 * requests on both paths alike.
 */
export function estimateBatchCost(
  batch: { usage: UsageTotals; usage_hosted: UsageTotals; models: Record<string, number> },
  table: PriceTable,
): BatchCostEstimate {
  const all = estimateCost(batch.usage, batch.models, table);
  if (all.usd === null) return { ...all, hosted_usd: null };
  const hostedList = estimateCost(batch.usage_hosted, batch.models, table).usd ?? 0;
  const hosted = hostedList * HOSTED_PRICE_FACTOR;
  return { ...all, usd: all.usd - hosted, hosted_usd: hosted };
}
