/**
 * The shortest prefix each model caches. A breakpoint whose prefix is shorter is ignored: no read, no
 * write, its tokens count as plain input, as the API does ("Below a model's minimum the breakpoint is
 * silently ignored", ../shared/docs/anthropic-api.md, prompt caching). Kept here rather than shared
 * with the runner's table (src/batch/min-cacheable-tokens.ts) because the emulator shares no runner
 * code: tests would otherwise check the runner against itself.
 */

/** Model-id glob (`*` any run) → minimum tokens; the first match wins. */
export type CacheMinimumRules = ReadonlyArray<readonly [glob: string, minTokens: number]>;

/**
 * Figures from anthropic-api.md (gateway docs in 2026): 1,024 for most models, 2,048 for Sonnet 4.6
 * and the Haiku 3 family, 4,096 for Haiku 4.5 and Opus 4.5/4.6.
 */
const DEFAULT_CACHE_MINIMUMS: CacheMinimumRules = [
  ['claude-sonnet-4-6*', 2_048],
  ['claude-3-haiku*', 2_048],
  ['claude-3-5-haiku*', 2_048],
  ['claude-haiku-4-5*', 4_096],
  ['claude-opus-4-5*', 4_096],
  ['claude-opus-4-6*', 4_096],
  ['*', 1_024],
];

export class CacheMinimums {
  readonly #rules: ReadonlyArray<readonly [RegExp, number]>;
  /** Per model id: looked up once, since every request of a model asks again. */
  readonly #byModel = new Map<string, number>();

  /** `rules` first, then the default table. */
  constructor(rules: CacheMinimumRules) {
    this.#rules = [...rules, ...DEFAULT_CACHE_MINIMUMS].map(
      ([glob, min]) => [globRegExp(glob), min] as const,
    );
  }

  minTokens(model: string): number {
    let min = this.#byModel.get(model);
    if (min === undefined) {
      min = this.#rules.find(([re]) => re.test(model))?.[1] ?? 0;
      this.#byModel.set(model, min);
    }
    return min;
  }

  /** The breakpoints whose prefix reaches the model's minimum; null when none does. */
  cacheable<B extends { tokens: number }>(model: string, breakpoints: B[] | null): B[] | null {
    if (breakpoints === null) return null;
    const min = this.minTokens(model);
    if (breakpoints.every((bp) => bp.tokens >= min)) return breakpoints;
    const kept = breakpoints.filter((bp) => bp.tokens >= min);
    return kept.length === 0 ? null : kept;
  }
}

function globRegExp(glob: string): RegExp {
  const source = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}
