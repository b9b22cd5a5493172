import type { MessageParams } from '../batch/types.js';
import { estimateRequest } from '../limits/estimate-tokens.js';
import {
  cacheWrite1h,
  DEFAULT_PRICE_TABLE,
  findPrice,
  type ModelPrice,
  type PriceTable,
} from './price-table.js';

/**
 * Money in the cost ledger is counted in integer nano-dollars (1e-9 USD): a price of P USD per
 * million tokens is P x 1,000 nano-dollars a token, so every rate with up to three decimals is an
 * exact integer and sums never drift the way floats would. 2^53 nano-dollars is $9 million.
 */
const NANO_PER_USD = 1_000_000_000;

/** The rates of one model frozen into a batch record at submit (USD per million tokens). */
export interface FrozenPrice {
  input: number;
  output: number;
  /** Cache writes with the 5-minute TTL. */
  cache_write: number;
  /** Cache writes with the 1-hour TTL. */
  cache_write_1h: number;
  cache_read: number;
}

/**
 * Input above this many tokens (input + cache writes + cache reads) is billed at the long-context
 * rates on the models that accept it (the 1M-token context): 2 x the input rates (cache rates
 * included) and 1.5 x the output rate. The price table has no such entries: the ledger applies
 * the surcharge itself, to the worst case whenever the estimate is over the threshold (the
 * estimate errs high, so it may be applied to a request that will not pay it: the safe side).
 */
export const LONG_CONTEXT_TOKENS = 200_000;

/**
 * Hidden input tokens a request with `tools` may be billed beyond what it carries: the API adds a
 * tool-use system prompt (a few hundred tokens, more with tool_choice any/tool). Added to the worst
 * case of any request with tools.
 */
const TOOL_OVERHEAD_TOKENS = 1_000;

/** A positive amount of USD as nano-dollars (rounded up: a ceiling or a cost never rounds down). */
export function usdToNano(usd: number): number {
  return Math.ceil(usd * NANO_PER_USD - 1e-6);
}

export function nanoToUsd(nano: number): number {
  return nano / NANO_PER_USD;
}

/** Per model of a batch, its price from the table; the models the table does not price. */
export function freezePrices(
  table: PriceTable,
  models: readonly string[],
): { prices: Record<string, FrozenPrice>; unknown: string[] } {
  const prices: Record<string, FrozenPrice> = {};
  const unknown: string[] = [];
  for (const model of models) {
    const price = findPrice(table, model);
    if (price) prices[model] = frozen(price);
    else unknown.push(model);
  }
  return { prices, unknown };
}

function frozen(price: ModelPrice): FrozenPrice {
  return {
    input: price.input,
    output: price.output,
    cache_write: price.cache_write,
    cache_write_1h: cacheWrite1h(price),
    cache_read: price.cache_read,
  };
}

/** Reads the `prices` field of a batch record; an unreadable one prices nothing. */
export function parseFrozenPrices(json: string | null | undefined): Record<string, FrozenPrice> {
  if (!json) return {};
  try {
    const parsed = JSON.parse(json) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, FrozenPrice>) : {};
  } catch {
    return {};
  }
}

/** Price tables of frozen prices, by their JSON; cleared when it holds this many. */
const frozenTables = new Map<string, PriceTable>();
const MAX_FROZEN_TABLES = 256;

/**
 * The prices a batch froze at submit (its record's `prices` field) as a price table, one entry per
 * model id, for estimating its cost where no other table is given (`status`). A record with none
 * frozen (written before prices were) is priced at the built-in table.
 */
export function frozenPriceTable(json: string | null | undefined): PriceTable {
  if (!json) return DEFAULT_PRICE_TABLE;
  // The batches of a deployment share a few price sets: a table made once keeps its compiled
  // globs, so `status` of a thousand batches does not parse and compile a thousand times.
  const known = frozenTables.get(json);
  if (known) return known;
  if (frozenTables.size >= MAX_FROZEN_TABLES) frozenTables.clear();
  const entries: ModelPrice[] = Object.entries(parseFrozenPrices(json)).map(([model, price]) => ({
    match: model,
    input: price.input,
    output: price.output,
    cache_write: price.cache_write,
    cache_read: price.cache_read,
    cache_write_1h: price.cache_write_1h,
  }));
  const table = { entries, source: 'frozen at submit' };
  frozenTables.set(json, table);
  return table;
}

/** Nano-dollars per token of a rate in USD per million tokens (rounded up past three decimals). */
function perToken(usdPerMillion: number): number {
  return Math.ceil(usdPerMillion * 1_000 - 1e-9);
}

/**
 * Tools the API runs itself, billed per use (web search: $10 per 1,000 searches), per container
 * hour (code execution) or with results of unknown size added to the input (web fetch, MCP): the
 * price table cannot price them, so a batch with a ceiling refuses them. Client tools (no `type`,
 * `custom`, and the Anthropic-defined tools the caller runs: bash, text editor, computer use,
 * memory) are billed as tokens only.
 */
const CLIENT_TOOL_TYPES = /^(custom|bash_\d+|text_editor_\d+|computer_\d+|memory_\d+)$/;

/**
 * Why a request cannot be priced by the price table (a feature billed otherwise than by tokens),
 * or null. Checked at submit for batches with a ceiling: the worst case of such a request is
 * unknown, so the ceiling could not be kept.
 */
export function unpriceableFeature(params: MessageParams): string | null {
  const tools = params['tools'];
  if (Array.isArray(tools)) {
    for (const [i, tool] of tools.entries()) {
      const type = (tool as { type?: unknown } | null)?.type;
      if (type !== undefined && !(typeof type === 'string' && CLIENT_TOOL_TYPES.test(type))) {
        return `tools[${i}] has type ${JSON.stringify(type)}: a server tool, billed per use or with results of unknown size, which the price table cannot price`;
      }
    }
  }
  if (params['mcp_servers'] !== undefined) {
    return 'mcp_servers: MCP tool results are added to the input server-side, in amounts the price table cannot bound';
  }
  if (params['container'] !== undefined) {
    return 'container: code execution is billed per container hour, which the price table cannot price';
  }
  return null;
}

/** The TTL of the longest-lived cache breakpoint in a request, or null when it has none. */
function cacheTtl(params: MessageParams): '5m' | '1h' | null {
  let ttl: '5m' | '1h' | null = null;
  const visit = (block: unknown): void => {
    if (!block || typeof block !== 'object') return;
    const control = (block as { cache_control?: { ttl?: unknown } | null }).cache_control;
    if (control && typeof control === 'object') ttl = control.ttl === '1h' ? '1h' : (ttl ?? '5m');
  };
  const tools = params['tools'];
  if (Array.isArray(tools)) tools.forEach(visit);
  if (Array.isArray(params.system)) params.system.forEach(visit);
  for (const message of params.messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (Array.isArray(content)) content.forEach(visit);
  }
  // Automatic caching at the top level (`cache_control` on the request) writes too.
  visit(params);
  return ttl;
}

/**
 * The most one call of this request can cost, in nano-dollars: its input estimate (3 characters a
 * token, errs high; plus {@link TOOL_OVERHEAD_TOKENS} with tools) all billed as a cache write at
 * its breakpoints' highest TTL rate when it has any (a request auto-caching marked, even one whose
 * prefix should be cached already: the entry may have expired, and then it writes it again), else
 * as input; and `max_tokens` of output. Over {@link LONG_CONTEXT_TOKENS}, at the long-context rates.
 */
export function worstCaseNano(params: MessageParams, price: FrozenPrice): number {
  let input = estimateRequest(params).inputTokens;
  if (Array.isArray(params['tools']) && (params['tools'] as unknown[]).length > 0) {
    input += TOOL_OVERHEAD_TOKENS;
  }
  const ttl = cacheTtl(params);
  const inputRate = ttl === '1h' ? price.cache_write_1h : ttl === '5m' ? price.cache_write : price.input;
  const long = input > LONG_CONTEXT_TOKENS;
  const inputCost = input * perToken(inputRate) * (long ? 2 : 1);
  const outputCost = Math.ceil(params.max_tokens * perToken(price.output) * (long ? 1.5 : 1));
  return inputCost + outputCost;
}

/** The usage block of a response, as far as cost goes. */
export interface CostUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  /** Cache writes by TTL (absent from older responses and from the emulator). */
  cache_creation?: {
    ephemeral_5m_input_tokens?: number | null;
    ephemeral_1h_input_tokens?: number | null;
  } | null;
}

/**
 * What a call cost, in nano-dollars (rounded up), from its usage: cache writes priced by TTL from
 * `usage.cache_creation`; when the response has no breakdown, all of them at the rate of the
 * request's longest breakpoint TTL (the dearer one when in doubt).
 */
export function actualCostNano(usage: CostUsage, params: MessageParams, price: FrozenPrice): number {
  const n = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  const created = n(usage.cache_creation_input_tokens);
  let write5m: number;
  let write1h: number;
  const split = usage.cache_creation;
  if (split && (split.ephemeral_5m_input_tokens != null || split.ephemeral_1h_input_tokens != null)) {
    write1h = n(split.ephemeral_1h_input_tokens);
    write5m = Math.max(n(split.ephemeral_5m_input_tokens), created - write1h);
  } else if (cacheTtl(params) === '1h') {
    write1h = created;
    write5m = 0;
  } else {
    write5m = created;
    write1h = 0;
  }
  const read = n(usage.cache_read_input_tokens);
  const input = n(usage.input_tokens);
  const long = input + write5m + write1h + read > LONG_CONTEXT_TOKENS;
  const inputSide =
    input * perToken(price.input) +
    write5m * perToken(price.cache_write) +
    write1h * perToken(price.cache_write_1h) +
    read * perToken(price.cache_read);
  const outputSide = n(usage.output_tokens) * perToken(price.output);
  return inputSide * (long ? 2 : 1) + Math.ceil(outputSide * (long ? 1.5 : 1));
}

/**
 * The dearest rates over a batch's frozen prices: what a model without a price of its own (a
 * `dlq retry --model` replacement) is reserved at, the safe side. Null when there are none.
 */
export function dearestPrice(prices: Record<string, FrozenPrice>): FrozenPrice | null {
  const all = Object.values(prices);
  if (all.length === 0) return null;
  const max = (pick: (p: FrozenPrice) => number) => Math.max(...all.map(pick));
  return {
    input: max((p) => p.input),
    output: max((p) => p.output),
    cache_write: max((p) => p.cache_write),
    cache_write_1h: max((p) => p.cache_write_1h),
    cache_read: max((p) => p.cache_read),
  };
}
