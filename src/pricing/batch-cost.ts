import { InputError } from '../batch/input-error.js';
import type { MessageParams } from '../batch/types.js';
import { BatchConflictError, InputValidationError } from '../errors/runner-errors.js';
import { LuaScript } from '../redis/lua-script.js';
import type { Runtime } from '../runtime.js';
import { DEFAULT_PRICE_TABLE, PRICES_FILE_HELP, type PriceTable } from './price-table.js';
import {
  freezePrices,
  nanoToUsd,
  unpriceableFeature,
  usdToNano,
  worstCaseNano,
  type FrozenPrice,
} from './request-cost.js';

/** Requests with a feature the price table cannot price, reported at submit (the rest are counted). */
const MAX_REPORTED = 20;

/** What one model's requests would reserve at most (USD), as the ledger reserves them. */
interface ModelWorstCase {
  /** Sum of the requests' worst cases. */
  total: number;
  /** The largest single worst case: a request larger than the ceiling can never be sent. */
  largest: number;
}

/** The cost side of a submit, in {@link SubmitResult}. */
export interface SubmitCost {
  /** The ceiling asked for (USD), or null. */
  maxCostUsd: number | null;
  /** Where the prices came from: `built-in` or the prices file. */
  pricesSource: string;
  /** Per priced model, its requests' worst cases (every input token a cache write, all of max_tokens). */
  worstCaseUsd: Record<string, ModelWorstCase>;
}

/** Checks a `maxCost` given to submit or run: a positive finite number of USD. */
export function checkMaxCost(value: unknown, source: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InputValidationError(
      source,
      [],
      `--max-cost: must be a positive number of US dollars, got ${typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? typeof value)} (${typeof value})`,
    );
  }
  return value;
}

/**
 * The submit side of a batch's cost (issue 15): watches every valid request during the scan for
 * features the price table cannot price and sums worst cases; then refuses, when a ceiling is
 * set, unknown models and those features; then freezes the batch's prices and its ceiling into
 * its record.
 */
export class BatchCostPlan {
  readonly maxCost: number | undefined;
  readonly table: PriceTable;
  private readonly unpriceable: InputError[] = [];
  private unpriceableCount = 0;
  private firstUnpriceable: string | null = null;
  private readonly worst = new Map<string, ModelWorstCase>();
  private frozen: Record<string, FrozenPrice> | null = null;

  constructor(
    private readonly sourceName: string,
    maxCost: unknown,
    table: PriceTable | undefined,
  ) {
    this.maxCost = checkMaxCost(maxCost, sourceName);
    this.table = table ?? DEFAULT_PRICE_TABLE;
  }

  /** Called by the scan with each valid request (params as written, before auto-caching). */
  observe(params: MessageParams, line: number, customId: string): void {
    const feature = unpriceableFeature(params);
    if (feature !== null) {
      this.unpriceableCount++;
      this.firstUnpriceable ??= `${customId}: ${feature}`;
      if (this.unpriceable.length < MAX_REPORTED) {
        this.unpriceable.push(new InputError(this.sourceName, line, `params (${customId})`, feature));
      }
    }
    const price = this.priceOf(params.model);
    if (!price) return;
    // As the ledger reserves it with auto-caching's breakpoint: every input token a cache write.
    const amount = worstCaseNano({ ...params, cache_control: { type: 'ephemeral' } }, price);
    const w = this.worst.get(params.model) ?? { total: 0, largest: 0 };
    w.total += amount;
    w.largest = Math.max(w.largest, amount);
    this.worst.set(params.model, w);
  }

  private readonly prices = new Map<string, FrozenPrice | null>();
  private priceOf(model: string): FrozenPrice | null {
    let price = this.prices.get(model);
    if (price === undefined) {
      price = freezePrices(this.table, [model]).prices[model] ?? null;
      this.prices.set(model, price);
    }
    return price;
  }

  /** What a submit reports of its cost. */
  summary(): SubmitCost {
    const worstCaseUsd: Record<string, ModelWorstCase> = {};
    for (const [model, w] of this.worst) {
      worstCaseUsd[model] = { total: nanoToUsd(w.total), largest: nanoToUsd(w.largest) };
    }
    return { maxCostUsd: this.maxCost ?? null, pricesSource: this.table.source, worstCaseUsd };
  }

  /**
   * After a clean scan: with a ceiling, refuses models the table does not price and requests it
   * cannot price (naming each, and how to add a price); then freezes the prices.
   */
  check(models: readonly string[]): void {
    const { prices, unknown } = freezePrices(this.table, models);
    this.frozen = prices;
    if (this.maxCost === undefined) return;
    if (unknown.length > 0) {
      throw new InputValidationError(
        this.sourceName,
        [],
        `--max-cost: no price for model${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in the ${this.table.source} price table, ` +
          `so the ceiling could not be kept. Add ${unknown.length > 1 ? 'their prices' : 'its price'} with --prices FILE.\n${PRICES_FILE_HELP}`,
      );
    }
    if (this.unpriceableCount > 0) {
      const more = this.unpriceableCount - this.unpriceable.length;
      throw new InputValidationError(
        this.sourceName,
        this.unpriceable,
        `--max-cost: ${this.unpriceableCount} request${this.unpriceableCount > 1 ? 's use' : ' uses'} features the price table cannot price` +
          `${more > 0 ? ` (${more} not shown)` : ''}, so the ceiling could not be kept; submit them without --max-cost, or remove the feature`,
      );
    }
  }

  /**
   * Freezes the prices (always: `resume --max-cost` may add a ceiling later) and, on a new batch,
   * the ceiling into its record. A batch whose prices are frozen already keeps its ceiling: a
   * resubmit asking for another one is refused, naming `resume BATCH --max-cost N`, the one way to
   * change it (a resubmit may be a crashed submit run again, and must not move the ceiling silently).
   */
  async apply(runtime: Runtime, batchId: string): Promise<void> {
    if (this.frozen === null) throw new Error('BatchCostPlan.apply before check');
    const ceiling = this.maxCost === undefined ? '' : String(usdToNano(this.maxCost));
    const reply = (await FREEZE.run(
      runtime.redis,
      [runtime.keys.batch(batchId)],
      [JSON.stringify(this.frozen), ceiling, this.firstUnpriceable ?? ''],
    )) as [number, string];
    const [status, current] = reply;
    if (Number(status) === 1 || this.maxCost === undefined) return;
    if (current === ceiling) return;
    const now = current === '' ? 'none' : `$${nanoToUsd(Number(current))}`;
    throw new BatchConflictError(
      `batch ${batchId} exists with cost ceiling ${now}; a resubmit does not change it: ` +
        `\`claude-batch resume ${batchId} --max-cost ${this.maxCost}\` does`,
    );
  }
}

/**
 * KEYS: batch. ARGV: prices JSON, ceiling (nano, '' none), first unpriceable request ('' none).
 * Sets them unless the prices are frozen already. Returns {1 set | 0 kept, current ceiling ('' none)}.
 */
const FREEZE = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return {0, ''} end
if redis.call('HEXISTS', KEYS[1], 'prices') == 1 then
  return {0, redis.call('HGET', KEYS[1], 'max_cost') or ''}
end
redis.call('HSET', KEYS[1], 'prices', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'max_cost', ARGV[2], 'cost_spent', 0, 'cost_reserved', 0) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'cost_unpriceable', ARGV[3]) end
return {1, ARGV[2]}
`);
