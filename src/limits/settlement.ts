import type { BudgetAmounts, CallReport } from './rate-budget.js';

/** Amounts per dimension: requests, input tokens (ITPM), output tokens (OTPM). */
export type DimensionAmounts = BudgetAmounts;

export const DIMENSIONS = ['requests', 'inputTokens', 'outputTokens'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** The words used in messages and the `anthropic-ratelimit-<word>-*` headers, per dimension. */
export const DIMENSION_INFO: Readonly<
  Record<Dimension, { limit: 'rpm' | 'itpm' | 'otpm'; header: string; words: string }>
> = {
  requests: { limit: 'rpm', header: 'requests', words: 'requests per minute' },
  inputTokens: { limit: 'itpm', header: 'input-tokens', words: 'input tokens per minute' },
  outputTokens: { limit: 'otpm', header: 'output-tokens', words: 'output tokens per minute' },
};

/**
 * What a call really cost against each limit: ITPM counts input_tokens + cache_creation_input_tokens
 * (cache reads do not count against it), OTPM counts output_tokens.
 */
export function actualCost(usage: NonNullable<CallReport['usage']>): DimensionAmounts {
  return {
    requests: 1,
    inputTokens: nonNegative(usage.input_tokens) + nonNegative(usage.cache_creation_input_tokens),
    outputTokens: nonNegative(usage.output_tokens),
  };
}

/**
 * The correction to apply at settlement, per dimension: positive charges more, negative refunds.
 * A failed call (usage null) is charged no tokens (its reservation is refunded) but keeps its request:
 * the API saw it. `release` (the call was never sent) refunds the request too.
 */
export function settlementDelta(
  charged: DimensionAmounts,
  usage: CallReport['usage'],
  release = false,
): DimensionAmounts {
  if (release)
    return {
      requests: -charged.requests,
      inputTokens: -charged.inputTokens,
      outputTokens: -charged.outputTokens,
    };
  if (usage === null)
    return { requests: 0, inputTokens: -charged.inputTokens, outputTokens: -charged.outputTokens };
  const actual = actualCost(usage);
  return {
    requests: 0,
    inputTokens: charged.inputTokens > 0 ? actual.inputTokens - charged.inputTokens : 0,
    outputTokens: charged.outputTokens > 0 ? actual.outputTokens - charged.outputTokens : 0,
  };
}

/** One dimension's `anthropic-ratelimit-*` values (undefined when absent or unparsable). */
export interface HeaderLimits {
  limit?: number;
  remaining?: number;
  /** Epoch ms. */
  reset?: number;
}

/** Reads the `anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}` headers. */
export function parseRateLimitHeaders(
  headers: Readonly<Record<string, string>>,
): Record<Dimension, HeaderLimits> {
  const out = {} as Record<Dimension, HeaderLimits>;
  for (const dim of DIMENSIONS) {
    const base = `anthropic-ratelimit-${DIMENSION_INFO[dim].header}-`;
    const entry: HeaderLimits = {};
    const limit = count(headers[`${base}limit`]);
    if (limit !== undefined && limit > 0) entry.limit = limit;
    const remaining = count(headers[`${base}remaining`]);
    if (remaining !== undefined) entry.remaining = remaining;
    const reset = headers[`${base}reset`];
    if (reset !== undefined) {
      const at = Date.parse(reset);
      if (Number.isFinite(at)) entry.reset = at;
    }
    out[dim] = entry;
  }
  return out;
}

function count(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

function nonNegative(value: number | null | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}
