import type { Runtime } from '../runtime.js';
import { SHARE_REASON } from './holds.js';

/**
 * The batches paused on their own (issue 15: a cost ceiling reached), as opposed to the queue-wide
 * pause of `claude-batch pause` and the key-wide breaker. Each such pause is a `pause:<reason>`
 * field of the batch record (JSON: reason, message, since, fix, and the reason's own figures) and
 * the batch's id in {@link KeyLayout.pausedBatches}; `resume BATCH` lifts them all
 * (src/operations/resume-batch.ts).
 */

/**
 * Leaves out of the dispatcher's claims the batches paused on their own: their held requests stay
 * held until the pause is lifted. One SMEMBERS per dispatch round.
 */
export async function withoutPausedBatches<T extends { id: string }>(
  runtime: Pick<Runtime, 'redis' | 'keys'>,
  claims: T[],
): Promise<T[]> {
  if (claims.length === 0) return claims;
  const paused = await runtime.redis.smembers(runtime.keys.pausedBatches());
  if (paused.length === 0) return claims;
  const skip = new Set(paused);
  return claims.filter((claim) => !skip.has(claim.id));
}

/**
 * Requests held for the share of the batches paused on their own, which wait for `resume BATCH`,
 * not for a worker (`worker --until-idle` must not wait for them). One SMEMBERS, and one HLEN per
 * paused batch.
 */
export async function heldOfPausedBatches(runtime: Pick<Runtime, 'redis' | 'keys'>): Promise<number> {
  const ids = await runtime.redis.smembers(runtime.keys.pausedBatches());
  if (ids.length === 0) return 0;
  const pipeline = runtime.redis.pipeline();
  for (const id of ids) pipeline.hlen(runtime.keys.held(id, SHARE_REASON));
  const replies = (await pipeline.exec()) ?? [];
  return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
}
