import { globToRegExp } from '../model-glob.js';

/** One row of the table: models matching `match` (a model-id glob) cache prefixes of at least `minTokens`. */
export interface MinCacheableRule {
  match: string;
  minTokens: number;
}

/**
 * The shortest prefix each model caches; under it the API silently ignores a breakpoint. Figures from
 * ../shared/docs/anthropic-api.md (prompt caching, gateway docs in 2026: they change, hence the
 * overrides): 1,024 for most models, 2,048 for Sonnet 4.6 and the Haiku 3 family, 4,096 for
 * Haiku 4.5 and Opus 4.5/4.6. First match wins; the last row catches every other model.
 */
export const DEFAULT_MIN_CACHEABLE_TOKENS: readonly MinCacheableRule[] = [
  { match: 'claude-sonnet-4-6*', minTokens: 2_048 },
  { match: 'claude-3-haiku*', minTokens: 2_048 },
  { match: 'claude-3-5-haiku*', minTokens: 2_048 },
  { match: 'claude-haiku-4-5*', minTokens: 4_096 },
  { match: 'claude-opus-4-5*', minTokens: 4_096 },
  { match: 'claude-opus-4-6*', minTokens: 4_096 },
  { match: '*', minTokens: 1_024 },
];

/** The minimum for `model`: the first matching override, else the first matching default row. */
export function minCacheableTokens(model: string, overrides: readonly MinCacheableRule[] = []): number {
  for (const rule of overrides) if (globToRegExp(rule.match).test(model)) return rule.minTokens;
  for (const rule of DEFAULT_MIN_CACHEABLE_TOKENS) {
    if (globToRegExp(rule.match).test(model)) return rule.minTokens;
  }
  // Unreachable while the table ends with '*'; the API's most common figure otherwise.
  return 1_024;
}
