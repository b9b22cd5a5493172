import type { Runtime } from '../runtime.js';
import { requestJobId } from './jobs.js';

export interface DeleteBatchResult {
  existed: boolean;
  /** Queued (waiting or delayed) requests removed unsent. */
  removedRequests: number;
  removedDeadLetters: number;
}

const PAGE = 500;

/**
 * Removes a batch: its queued requests first (so none is sent after), its dead-letter entries,
 * then its records and results. A request in flight finishes; its result is dropped, since the
 * batch record it would update is gone.
 */
export async function deleteBatch(runtime: Runtime, batchId: string): Promise<DeleteBatchResult> {
  const { store, keys, redis } = runtime;
  const existed = (await redis.exists(keys.batch(batchId))) === 1;
  let removedRequests = 0;
  let removedDeadLetters = 0;
  for (let start = 0; ; start += PAGE) {
    const ids = await redis.lrange(keys.ids(batchId), start, start + PAGE - 1);
    if (ids.length === 0) break;
    const [gens, results] = await Promise.all([
      redis.hmget(keys.generations(batchId), ...ids),
      redis.hmget(keys.results(batchId), ...ids),
    ]);
    const jobs = ids.flatMap((customId, i) => {
      const last = Number(gens[i] ?? 0);
      // A request with a result is not "removed unsent", though BullMQ may keep its completed job.
      const unsent = results[i] === null;
      return Array.from({ length: last + 1 }, (_, gen) => ({
        id: requestJobId(batchId, customId, gen),
        unsent,
      }));
    });
    const [requests, deadLetters] = await Promise.all([
      Promise.all(jobs.map(({ id }) => runtime.requests.remove(id).catch(() => 0))),
      Promise.all(jobs.map(({ id }) => runtime.deadLetters.remove(id).catch(() => 0))),
    ]);
    removedRequests += requests.filter((n, i) => n === 1 && jobs[i]!.unsent).length;
    removedDeadLetters += deadLetters.filter((n) => n === 1).length;
  }
  await store.deleteRecords(batchId);
  return { existed, removedRequests, removedDeadLetters };
}
