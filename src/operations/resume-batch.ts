import { BatchNotFoundError } from '../errors/batch-not-found-error.js';
import { BatchConflictError } from '../errors/runner-errors.js';
import { CostLedger } from '../limits/cost-ledger.js';
import { checkMaxCost } from '../pricing/batch-cost.js';
import { nanoToUsd, parseFrozenPrices, usdToNano } from '../pricing/request-cost.js';
import { rewarmAfterPause } from '../queue/rewarm.js';
import type { Runtime } from '../runtime.js';

export interface ResumeBatchOptions {
  /**
   * A new cost ceiling in USD (a positive number above the spend so far): raises (or lowers) the
   * batch's ceiling, or gives one to a batch submitted without. Default: the ceiling stays.
   */
  maxCost?: number | undefined;
}

export interface ResumeBatchResult {
  /** The batch-scoped pause reasons lifted (e.g. `cost_ceiling`); empty when it was not paused. */
  lifted: string[];
  /**
   * Auto-cached models whose prefix had outlived its cache TTL during the pause: one request of
   * each goes first and writes it again, the rest follow at its first token (src/queue/rewarm.ts).
   */
  rewarmed: string[];
  /** The ceiling now (USD), or null when the batch has none. */
  ceilingUsd: number | null;
  /** Settled spend so far (USD). */
  spentUsd: number;
}

/**
 * `claude-batch resume BATCH [--max-cost N]`: lifts the batch's own pauses (its cost ceiling, not
 * the queue's pause or the key-wide breaker, which plain `resume` lifts) and sets its ceiling. The
 * dispatcher sends its held requests again at its next round; the rest of the queue is untouched.
 * Throws BatchNotFoundError for an unknown id, BatchConflictError when the ceiling cannot be set
 * (not above the spend so far; a model without a frozen price; a request the prices cannot price).
 */
export async function resumeBatch(
  runtime: Runtime,
  batchId: string,
  options: ResumeBatchOptions = {},
): Promise<ResumeBatchResult> {
  const maxCost = checkMaxCost(options.maxCost, batchId);
  const { redis, keys } = runtime;
  const record = await redis.hgetall(keys.batch(batchId));
  if (!record['id'] || record['deleted_at']) throw new BatchNotFoundError(batchId, keys.bullPrefix);
  const lifted = Object.keys(record)
    .filter((field) => field.startsWith('pause:'))
    .map((field) => field.slice('pause:'.length));
  let ceiling: number | null = null;
  if (maxCost !== undefined) {
    ceiling = usdToNano(maxCost);
    checkCanHaveCeiling(batchId, record);
    const committed = Number(record['cost_spent'] ?? 0) + Number(record['cost_reserved'] ?? 0);
    if (ceiling <= committed) {
      throw new BatchConflictError(
        `--max-cost: must be above what batch ${batchId} has spent and reserved so far ($${nanoToUsd(committed)}), got ${maxCost}`,
      );
    }
  }
  // Paused longer than its prefix's cache TTL: one request per auto-cached model writes the prefix
  // again before the rest go (they would all miss it at once).
  const since = pausedSince(record);
  const rewarmed = since === null ? [] : await rewarmAfterPause(runtime, batchId, since);
  const ledger = new CostLedger({ redis, keys });
  try {
    const state = await ledger.resume(batchId, ceiling);
    if (!state) throw new BatchNotFoundError(batchId, keys.bullPrefix);
    runtime.logger.info('batch resumed', {
      batch_id: batchId,
      lifted,
      ...(rewarmed.length > 0 ? { cache_rewarmed: rewarmed } : {}),
      ceiling_usd: state.ceiling === null ? null : nanoToUsd(state.ceiling),
    });
    return {
      lifted,
      rewarmed,
      ceilingUsd: state.ceiling === null ? null : nanoToUsd(state.ceiling),
      spentUsd: nanoToUsd(state.spent),
    };
  } finally {
    ledger.close();
  }
}

/** When the batch's earliest own pause began (ms), or null when it is not paused. */
function pausedSince(record: Record<string, string>): number | null {
  let since: number | null = null;
  for (const [field, json] of Object.entries(record)) {
    if (!field.startsWith('pause:')) continue;
    try {
      const at = Date.parse((JSON.parse(json) as { since?: string }).since ?? '');
      if (Number.isFinite(at)) since = since === null ? at : Math.min(since, at);
    } catch {
      // An unreadable pause says nothing of when: no re-warm for it.
    }
  }
  return since;
}

/** A ceiling needs a frozen price for every model of the batch and nothing the prices cannot price. */
function checkCanHaveCeiling(batchId: string, record: Record<string, string>): void {
  if (record['cost_unpriceable']) {
    throw new BatchConflictError(
      `--max-cost: batch ${batchId} has requests the price table cannot price (${record['cost_unpriceable']}), so a ceiling could not be kept`,
    );
  }
  const prices = parseFrozenPrices(record['prices']);
  let models: string[] = [];
  try {
    models = Object.keys(JSON.parse(record['models'] ?? '{}') as Record<string, number>);
  } catch {
    // Unreadable: judged by the prices alone.
  }
  const missing = record['prices'] === undefined ? models : models.filter((m) => !(m in prices));
  if (missing.length > 0) {
    throw new BatchConflictError(
      `--max-cost: batch ${batchId} has no frozen price for ${missing.join(', ')} (submitted before ceilings, or the model was not in the price table), so a ceiling could not be kept`,
    );
  }
}
