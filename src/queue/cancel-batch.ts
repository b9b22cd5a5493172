import { Job } from 'bullmq';
import type { Runtime } from '../runtime.js';
import { canceledLine } from '../store/result-line.js';
import { requestJobId, type RequestJobData } from './jobs.js';

export interface CancelResult {
  existed: boolean;
  /** Requests ended as canceled by this call. */
  canceled: number;
  /** Requests in flight: they finish, and the batch is `canceling` until they have. */
  inFlight: number;
}

const PAGE = 500;

/**
 * Cancels a batch: pending, delayed and held requests end as `canceled` in results; requests in
 * flight finish (a retry they schedule is canceled when it comes up, by the workers' gate).
 * Idempotent: running it again finishes what a cancel that died left.
 */
export async function cancelBatch(runtime: Runtime, batchId: string): Promise<CancelResult> {
  const { redis, keys, store } = runtime;
  if ((await redis.hsetnx(keys.batch(batchId), 'canceled_at', new Date().toISOString())) === 0) {
    if ((await redis.exists(keys.batch(batchId))) === 0) return { existed: false, canceled: 0, inFlight: 0 };
  }
  let canceled = 0;
  let inFlight = 0;
  for (let start = 0; ; start += PAGE) {
    const ids = await redis.lrange(keys.ids(batchId), start, start + PAGE - 1);
    if (ids.length === 0) break;
    const [results, gens] = await Promise.all([
      redis.hmget(keys.results(batchId), ...ids),
      redis.hmget(keys.generations(batchId), ...ids),
    ]);
    const open = ids
      .map((id, i) => ({ id, gen: Number(gens[i] ?? 0) }))
      .filter((_, i) => results[i] === null);
    const outcomes = await Promise.all(
      open.map(async ({ id, gen }) => {
        const jobId = requestJobId(batchId, id, gen);
        // Remove first: a locked (active) job is not removed, and finishes with its own result.
        const removed = await runtime.requests.remove(jobId);
        if (removed !== 1 && (await Job.fromId<RequestJobData>(runtime.requests, jobId))) return 'in-flight';
        // Removed now, or gone already (a cancel that died between the two steps).
        const status = await store.finalize(batchId, id, gen, { kind: 'canceled', line: canceledLine(id) });
        return status === 'written' ? 'canceled' : 'other';
      }),
    );
    canceled += outcomes.filter((o) => o === 'canceled').length;
    inFlight += outcomes.filter((o) => o === 'in-flight').length;
  }
  return { existed: true, canceled, inFlight };
}
