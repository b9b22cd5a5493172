import { Job } from 'bullmq';
import type { Runtime } from '../runtime.js';
import type { RequestJobData } from './jobs.js';

/**
 * How long non-canary requests are held (as BullMQ delayed jobs) until their canary has an
 * outcome. Far beyond any retry delay, so the release can tell held jobs from retries by their
 * due time; and a fail-safe: a release that somehow never comes lets them run after this.
 */
export const CANARY_HOLD_MS = 7 * 24 * 3_600_000;

/** Batch-record field holding the canary state of a model: `pending` or `released`. */
export function canaryField(model: string): string {
  return `canary:${model}`;
}

/** BullMQ's delayed-set score of a due time (its scripts keep 12 bits for ordering). */
const score = (timestampMs: number) => timestampMs * 0x1000;

/**
 * Marks the model's canary as done and promotes the batch's held requests of that model into the
 * queue. Idempotent: safe to call from every worker that sees the canary end, and again from a
 * resumed submit.
 */
export async function releaseCanary(runtime: Runtime, batchId: string, model: string): Promise<number> {
  await runtime.redis.hset(runtime.keys.batch(batchId), canaryField(model), 'released');
  return releaseHeld(runtime, batchId, model);
}

/** Promotes the held (far-future delayed) requests of one model of a batch. Returns how many. */
export async function releaseHeld(runtime: Runtime, batchId: string, model: string): Promise<number> {
  const { redis, keys } = runtime;
  const delayed = `${keys.bullPrefix}:requests:delayed`;
  const from = score(Date.now() + CANARY_HOLD_MS / 2);
  const prefix = `${batchId}.`;
  const matching: string[] = [];
  const page = 1_000;
  for (let offset = 0; ; offset += page) {
    const ids = await redis.zrangebyscore(delayed, from, '+inf', 'LIMIT', offset, page);
    const ours = ids.filter((id) => id.startsWith(prefix));
    if (ours.length > 0) {
      // A job's name is its model (set by the producer), so one field tells which to release.
      const pipeline = redis.pipeline();
      for (const id of ours) pipeline.hget(`${keys.bullPrefix}:requests:${id}`, 'name');
      const names = (await pipeline.exec()) ?? [];
      ours.forEach((id, i) => {
        if (names[i]?.[1] === model) matching.push(id);
      });
    }
    if (ids.length < page) break;
  }
  let released = 0;
  for (let i = 0; i < matching.length; i += 200) {
    const results = await Promise.all(
      matching.slice(i, i + 200).map(async (id) => {
        const job = await Job.fromId<RequestJobData>(runtime.requests, id);
        if (!job) return 0;
        // A job promoted by another worker meanwhile is no longer delayed: nothing to do.
        return job.promote().then(
          () => 1,
          () => 0,
        );
      }),
    );
    released += results.reduce<number>((a, b) => a + b, 0);
  }
  return released;
}
