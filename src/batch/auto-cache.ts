/**
 * Automatic prompt caching, the pure part (issue 15 item 2): find the prefix most of a model's
 * requests share and put one `cache_control` breakpoint at its end.
 *
 * Two passes over the input, so submit can stream a million lines: {@link AutoCachePlanner.observe}
 * each request in the first (memory bounded by the model count, {@link MAX_PREFIX_BLOCKS} and
 * {@link TRACKED_PREFIXES_PER_DEPTH}, not by the request count), {@link AutoCachePlanner.decide} once,
 * then {@link applyAutoCache} each request in the second. The decision is plain JSON, so it can be
 * stored with the batch and applied again by another process.
 *
 * What may change in a request (../shared/docs/anthropic-api.md, prompt caching): one
 * `cache_control: {type: 'ephemeral'}` (with `ttl: '1h'` when asked) on the last block of the shared
 * prefix, a whole block (a breakpoint closes the prefix after the block it is on, so blocks are never
 * split), and a string `system` turned into the one text block it stands for, since a string cannot
 * carry the marker. Nothing else: a request that already says anything about caching, does not share
 * the prefix, or whose prefix is under the model's minimum cacheable length is returned as it is
 * (the very same object). Adding one breakpoint to a request that had none never exceeds the API's 4.
 */
import { minCacheableTokens, type MinCacheableRule } from './min-cacheable-tokens.js';
import { PrefixCounter, type PrefixTally } from './prefix-counter.js';
import { hasCacheControl, prefixBlocks, prefixTokens, type BlockLocation } from './prefix-blocks.js';
import type { MessageParams } from './types.js';

/**
 * Share of a model's eligible requests (those with no cache_control of their own) that must have the
 * prefix: at least half. The others are outliers and stay as written.
 */
export const MAJORITY_SHARE = 0.5;

/** Fewer than two requests sharing a prefix gain nothing: the write costs more than plain input. */
const MIN_SHARING_REQUESTS = 2;

/** Blocks of a request looked at; a prefix longer than this is cached up to here. */
const MAX_PREFIX_BLOCKS = 128;

/**
 * Distinct prefixes counted per depth (see prefix-counter.ts): a count is exact while no more compete,
 * and a majority prefix is always found; its count may be under-reported by at most 1/64 of the requests.
 */
const TRACKED_PREFIXES_PER_DEPTH = 64;

export type CacheTtl = '5m' | '1h';

export type AutoCacheOutcome =
  /** A breakpoint is added to the requests sharing the prefix. */
  | 'breakpoint'
  /** No prefix is shared by enough requests. */
  | 'no_shared_prefix'
  /** The shared prefix is shorter than the model's minimum cacheable length: the API would ignore it. */
  | 'under_minimum'
  /** The shared blocks cannot carry a breakpoint (string message content, thinking or empty text blocks). */
  | 'no_markable_block';

/** What auto-caching does to one model's requests; also the `--dry-run` summary row. */
export interface ModelCachePlan {
  model: string;
  /** The model's requests observed. */
  requests: number;
  /** Requests with cache_control of their own (or a shape not understood): left as written. */
  ineligible: number;
  /** Eligible requests sharing the prefix up to the breakpoint (a lower bound; see TRACKED_PREFIXES_PER_DEPTH). */
  sharing: number;
  /** Blocks in the cached prefix (tools, system blocks, message blocks); 0 when none. */
  prefixBlocks: number;
  /** Key of that prefix (prefix-blocks.ts); null when none. */
  prefixKey: string | null;
  /** Estimated tokens of the prefix (estimate-tokens.ts, errs high); 0 when none. */
  prefixTokens: number;
  /** The model's minimum cacheable length. */
  minTokens: number;
  outcome: AutoCacheOutcome;
}

export interface AutoCacheDecision {
  ttl: CacheTtl;
  models: Record<string, ModelCachePlan>;
}

export interface DecideOptions {
  /** '5m' (default) for live batches, '1h' when gaps are expected. */
  ttl?: CacheTtl;
  /** Overrides of the minimum cacheable lengths (min-cacheable-tokens.ts), first match wins. */
  minTokens?: readonly MinCacheableRule[];
}

interface ModelTally {
  requests: number;
  ineligible: number;
  /** One counter per depth: index d counts prefixes of d + 1 blocks. */
  depths: PrefixCounter[];
}

export class AutoCachePlanner {
  readonly #models = new Map<string, ModelTally>();

  /** First pass: counts the request's prefixes. */
  observe(params: MessageParams): void {
    let tally = this.#models.get(params.model);
    if (tally === undefined) {
      tally = { requests: 0, ineligible: 0, depths: [] };
      this.#models.set(params.model, tally);
    }
    tally.requests++;
    const blocks = hasCacheControl(params) ? null : prefixBlocks(params, MAX_PREFIX_BLOCKS);
    if (blocks === null) {
      tally.ineligible++;
      return;
    }
    for (let d = 0; d < blocks.length; d++) {
      const b = blocks[d];
      if (b === undefined) break;
      const counter = (tally.depths[d] ??= new PrefixCounter(TRACKED_PREFIXES_PER_DEPTH));
      counter.add(b.key, b.parentKey, b.chars, b.markable);
    }
  }

  /** Once every request was observed: the plan per model. */
  decide(options: DecideOptions = {}): AutoCacheDecision {
    const models: Record<string, ModelCachePlan> = {};
    for (const [model, tally] of this.#models)
      models[model] = planModel(model, tally, options.minTokens ?? []);
    return { ttl: options.ttl ?? '5m', models };
  }
}

function planModel(model: string, tally: ModelTally, overrides: readonly MinCacheableRule[]): ModelCachePlan {
  const plan: ModelCachePlan = {
    model,
    requests: tally.requests,
    ineligible: tally.ineligible,
    sharing: 0,
    prefixBlocks: 0,
    prefixKey: null,
    prefixTokens: 0,
    minTokens: minCacheableTokens(model, overrides),
    outcome: 'no_shared_prefix',
  };
  const needed = Math.max(
    MIN_SHARING_REQUESTS,
    Math.ceil((tally.requests - tally.ineligible) * MAJORITY_SHARE),
  );
  // The deepest prefix enough requests share...
  let depth = tally.depths.length;
  let found: PrefixTally | undefined;
  while (depth > 0) {
    const top = tally.depths[depth - 1]?.top();
    if (top !== undefined && top.count - top.error >= needed) {
      found = top;
      break;
    }
    depth--;
  }
  if (found === undefined) return plan;
  let shared: PrefixTally = found;
  // ...then back along its own shorter prefixes (each shared at least as widely) to a block that can
  // carry the breakpoint.
  while (!shared.markable) {
    depth--;
    const parent: PrefixTally | undefined =
      depth > 0 ? tally.depths[depth - 1]?.get(shared.parentKey) : undefined;
    if (parent === undefined) return { ...plan, outcome: 'no_markable_block' };
    shared = parent;
  }
  const tokens = prefixTokens(shared.chars);
  return {
    ...plan,
    sharing: shared.count - shared.error,
    prefixBlocks: depth,
    prefixKey: shared.key,
    prefixTokens: tokens,
    outcome: tokens >= plan.minTokens ? 'breakpoint' : 'under_minimum',
  };
}

/**
 * Second pass: the request with the breakpoint added, or the very same object when it is left as
 * written. Only the objects on the way to the marked block are copied; the input is never mutated.
 */
export function applyAutoCache(decision: AutoCacheDecision, params: MessageParams): MessageParams {
  const plan = decision.models[params.model];
  if (plan === undefined || plan.outcome !== 'breakpoint' || plan.prefixKey === null) return params;
  if (hasCacheControl(params)) return params;
  const blocks = prefixBlocks(params, plan.prefixBlocks);
  const last = blocks?.[plan.prefixBlocks - 1];
  if (last === undefined || last.key !== plan.prefixKey) return params;
  const cacheControl = decision.ttl === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
  return mark(params, last.location, cacheControl);
}

function mark(params: MessageParams, at: BlockLocation, cacheControl: object): MessageParams {
  const withMark = (block: unknown) => ({
    ...(block as Record<string, unknown>),
    cache_control: cacheControl,
  });
  switch (at.kind) {
    case 'tool': {
      const tools = [...(params['tools'] as unknown[])];
      tools[at.index] = withMark(tools[at.index]);
      return { ...params, tools };
    }
    case 'system': {
      if (at.fromString) return { ...params, system: [withMark({ type: 'text', text: params.system })] };
      const system = [...(params.system as unknown[])];
      system[at.index] = withMark(system[at.index]);
      return { ...params, system };
    }
    case 'message': {
      const messages = [...params.messages];
      const message = messages[at.message] as Record<string, unknown>;
      const content = [...(message['content'] as unknown[])];
      content[at.index] = withMark(content[at.index]);
      messages[at.message] = { ...message, content };
      return { ...params, messages };
    }
  }
}

/** Estimated tokens of each model's cached prefix (models without a breakpoint are absent). */
export function cachedPrefixTokens(decision: AutoCacheDecision): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [model, plan] of Object.entries(decision.models)) {
    if (plan.outcome === 'breakpoint') out[model] = plan.prefixTokens;
  }
  return out;
}

const OUTCOME_WORDS: Record<AutoCacheOutcome, string> = {
  breakpoint: 'breakpoint added',
  no_shared_prefix: 'no prefix that can carry a breakpoint is shared by half the requests',
  under_minimum: 'prefix under the minimum cacheable length: left as written',
  no_markable_block: 'the shared blocks cannot carry a breakpoint: left as written',
};

/** One line per model for `submit --dry-run`. */
export function describeAutoCache(decision: AutoCacheDecision): string[] {
  return Object.values(decision.models).map((p) => {
    const share = `${p.sharing} of ${p.requests} requests share`;
    const prefix =
      p.prefixBlocks === 0
        ? 'no prefix'
        : `a prefix of ${p.prefixBlocks} block${p.prefixBlocks === 1 ? '' : 's'}, ~${p.prefixTokens} tokens (minimum ${p.minTokens})`;
    const ttl = p.outcome === 'breakpoint' ? `, ttl ${decision.ttl}` : '';
    return `${p.model}: ${share} ${prefix}: ${OUTCOME_WORDS[p.outcome]}${ttl}`;
  });
}
