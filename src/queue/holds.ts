import { Job } from 'bullmq';
import type { Runtime } from '../runtime.js';
import type { RequestJobData } from './jobs.js';

/**
 * How long held requests wait, as BullMQ delayed jobs, for their release. Far beyond any retry
 * delay; and a fail-safe: a release that somehow never comes (and no reconciler runs) lets them
 * run after this.
 */
export const HOLD_MS = 7 * 24 * 3_600_000;

/** Job ids promoted per round of a release. */
const RELEASE_PAGE = 500;

/** BullMQ's error code for "the job is not in the delayed set" (moved on, or removed). */
const NOT_IN_STATE = -3;

/**
 * One hold-and-release mechanism for every reason a request waits behind something else (the
 * canary of its model today; a paused batch or fair share later). A held request is a BullMQ
 * delayed job due in {@link HOLD_MS}, AND a member of the set of its (batch, reason): release
 * promotes exactly the set's members, never by paging a shared structure by offset, so jobs that
 * leave the delayed set meanwhile (another release, a cancel, a delete) cannot make it skip any.
 *
 * The release state of a reason lives in the batch record, in the field named by the reason
 * (`canary:<model>` = `released`): the reconciler finds a reason marked released whose set is not
 * empty (a release that died midway) and releases it again.
 */
export class Holds {
  constructor(private readonly runtime: Runtime) {}

  /**
   * Records that these jobs (already added, delayed by {@link HOLD_MS}) are held for `reason`.
   * Called after the jobs are added: a release running in between misses them, so the caller
   * releases again afterwards if the reason was released meanwhile (the producer does).
   */
  async record(batchId: string, reason: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    const { redis, keys } = this.runtime;
    await redis
      .multi()
      .sadd(keys.holds(batchId), reason)
      .sadd(keys.held(batchId, reason), ...jobIds)
      .exec();
  }

  /** Whether the batch record marks this reason released. */
  async isReleased(batchId: string, reason: string): Promise<boolean> {
    return (await this.runtime.redis.hget(this.runtime.keys.batch(batchId), reason)) === 'released';
  }

  /** Marks the reason released in the batch record (only if the record exists), then releases. */
  async markReleasedAndRelease(batchId: string, reason: string): Promise<number> {
    const { redis, keys } = this.runtime;
    // HSET on a deleted batch would resurrect a partial record: only mark an existing one.
    if ((await redis.hexists(keys.batch(batchId), 'id')) === 1) {
      await redis.hset(keys.batch(batchId), reason, 'released');
    }
    return this.release(batchId, reason);
  }

  /**
   * Promotes every job held for (batch, reason) into the queue, and forgets them. Exact and
   * idempotent: a member leaves the set only once promoted, or once known not to be delayed any
   * more (promoted by another releaser, canceled, deleted, removed by an operator); a release that
   * dies midway leaves the rest in the set for the next one. Returns how many this call promoted.
   */
  async release(batchId: string, reason: string): Promise<number> {
    const { redis, keys, requests } = this.runtime;
    const key = keys.held(batchId, reason);
    let promoted = 0;
    for (;;) {
      const ids = await redis.srandmember(key, RELEASE_PAGE);
      if (ids.length === 0) break;
      const outcomes = await Promise.all(
        ids.map((id) =>
          // promote needs only the id: no need to read the job's (large) data first.
          new Job<RequestJobData>(requests, '', {} as RequestJobData, {}, id).promote().then(
            () => 1,
            (err: unknown) => {
              if ((err as { code?: number }).code === NOT_IN_STATE) return 0;
              throw err;
            },
          ),
        ),
      );
      promoted += outcomes.reduce<number>((a, b) => a + b, 0);
      await redis.srem(key, ...ids);
    }
    // A reason with nothing left held is forgotten (a later `record` adds it back).
    await redis.srem(keys.holds(batchId), reason);
    if ((await redis.scard(key)) > 0) await redis.sadd(keys.holds(batchId), reason);
    return promoted;
  }

  /** The batch's reasons with requests still held. */
  async reasons(batchId: string): Promise<string[]> {
    return this.runtime.redis.smembers(this.runtime.keys.holds(batchId));
  }

  /**
   * Releases the batch's reasons that are marked released but still hold requests (a release
   * that died, or a job recorded after the release ran). Returns requests promoted.
   */
  async releaseOverdue(batchId: string): Promise<number> {
    let promoted = 0;
    for (const reason of await this.reasons(batchId)) {
      if (await this.isReleased(batchId, reason)) promoted += await this.release(batchId, reason);
    }
    return promoted;
  }

  /** Keys of the batch's holds, for deleting its records. */
  async keysOf(batchId: string): Promise<string[]> {
    const { keys } = this.runtime;
    return [keys.holds(batchId), ...(await this.reasons(batchId)).map((r) => keys.held(batchId, r))];
  }
}
