import type { CacheTtl } from '../batch/auto-cache.js';
import type { Runtime } from '../runtime.js';
import { canaryField, canaryIdField } from './canary.js';
import { SHARE_REASON } from './holds.js';
import { requestJob, type RequestJobData } from './jobs.js';

/** Batch-record field: the models whose prefix auto-caching marked, and its TTL (JSON). */
export const AUTO_CACHE_FIELD = 'auto_cache';

export interface AutoCacheNote {
  ttl: CacheTtl;
  /** Models given a breakpoint. */
  models: string[];
}

const TTL_MS: Record<CacheTtl, number> = { '5m': 5 * 60_000, '1h': 60 * 60_000 };

/** Held entries read per HSCAN of the share while looking for a model's requests. */
const SCAN_COUNT = 500;

/**
 * After a pause longer than its prefix's cache TTL, a batch's cache entry is gone: resumed as it
 * is, its requests in flight at once would all write the prefix (1.25x or 2x input each) instead
 * of one writing it and the rest reading it. So, before the pause is lifted, each auto-cached
 * model goes through its canary again: one held request of it is sent first (flagged canary, at
 * the head of the queue) and the model's other held requests wait behind it, in the
 * `canary:<model>` hold, until its response begins (src/queue/canary.ts releases them to the
 * batch's share, as at submit). A model whose canary is still pending is left alone: that canary
 * writes the prefix. Returns the models sent through a canary again.
 *
 * Safe to die at any step: the canary fields are set before the writer's job is added, and its
 * held requests moved after, so a writer that runs (or is parked, the batch being still paused,
 * and dispatched later) releases what was moved behind it, and the reconciler releases a pending
 * canary whose request has its result. A rerun finds the model pending and leaves it.
 */
export async function rewarmAfterPause(
  runtime: Runtime,
  batchId: string,
  pausedSinceMs: number,
  now = Date.now(),
): Promise<string[]> {
  const { redis, keys } = runtime;
  const json = await redis.hget(keys.batch(batchId), AUTO_CACHE_FIELD);
  if (json === null) return [];
  let note: AutoCacheNote;
  try {
    note = JSON.parse(json) as AutoCacheNote;
  } catch {
    return [];
  }
  if (!(now - pausedSinceMs > TTL_MS[note.ttl])) return [];
  const rewarmed: string[] = [];
  for (const model of note.models) {
    if ((await redis.hget(keys.batch(batchId), canaryField(model))) === 'pending') continue;
    if (await sendWriterFirst(runtime, batchId, model)) rewarmed.push(model);
  }
  return rewarmed;
}

/** One held request of the model first, as its canary; the model's other held requests behind it. */
async function sendWriterFirst(runtime: Runtime, batchId: string, model: string): Promise<boolean> {
  const { redis, keys } = runtime;
  const share = keys.held(batchId, SHARE_REASON);
  const behind = keys.held(batchId, canaryField(model));
  let writer: RequestJobData | null = null;
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(share, cursor, 'COUNT', SCAN_COUNT);
    cursor = next;
    const moving: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const data = JSON.parse(flat[i + 1]!) as RequestJobData;
      if (data.params.model !== model) continue;
      if (writer === null) {
        writer = data;
        await startWriter(runtime, batchId, model, flat[i]!, data);
      } else moving.push(flat[i]!, flat[i + 1]!);
    }
    if (moving.length > 0) {
      const fields = moving.filter((_, i) => i % 2 === 0);
      await redis
        .multi()
        .hset(behind, ...moving)
        .hdel(share, ...fields)
        .sadd(keys.holds(batchId), canaryField(model))
        .exec();
    }
  } while (cursor !== '0');
  return writer !== null;
}

/** Marks the model's canary pending on this request, and sends it to the head of the queue. */
async function startWriter(
  runtime: Runtime,
  batchId: string,
  model: string,
  jobId: string,
  data: RequestJobData,
): Promise<void> {
  const { redis, keys } = runtime;
  await redis.hset(keys.batch(batchId), canaryField(model), 'pending', canaryIdField(model), data.custom_id);
  // It writes the prefix: its budget estimate counts the prefix in full.
  const { cached_prefix: _written, ...writer } = data;
  await runtime.requests.addBulk([requestJob({ ...writer, canary: true }, true)]);
  await redis.hdel(keys.held(batchId, SHARE_REASON), jobId);
}
