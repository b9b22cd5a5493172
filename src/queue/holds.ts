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
 * The hold reason of requests waiting for their batch's turn: every request is submitted held, and
 * the dispatcher (`Dispatcher`) promotes them round-robin across batches, weighted by priority.
 * Other reasons (a model's canary) release into this one, not into the queue.
 */
export const SHARE_REASON = 'share';

/**
 * One hold-and-release mechanism for every reason a request waits behind something else: its
 * model's canary, its batch's fair share (a paused batch later). A held request is a BullMQ
 * delayed job due in {@link HOLD_MS}, AND a member of the set of its (batch, reason): release and
 * dispatch take exactly the set's members, never by paging a shared structure by offset, so jobs
 * that leave the delayed set meanwhile (another release, a cancel, a delete) cannot make it skip any.
 *
 * Releasing a reason moves its members into the batch's {@link SHARE_REASON} set (same slot: one
 * MULTI per page, so a member is always in one set or the other); only {@link dispatch} promotes
 * jobs into the queue. The release state of a reason lives in the batch record, in the field
 * named by the reason (`canary:<model>` = `released`): the reconciler finds a reason marked
 * released whose set is not empty (a release that died midway) and releases it again.
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
    const multi = redis
      .multi()
      .sadd(keys.holds(batchId), reason)
      .sadd(keys.held(batchId, reason), ...jobIds);
    // After the members, so a dispatcher that drops the batch from the set as empty meanwhile
    // either sees these members on its re-check or is followed by this SADD.
    if (reason === SHARE_REASON) multi.sadd(keys.shareBatches(), batchId);
    await multi.exec();
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
   * Releases every job held for (batch, reason) to the batch's share, where the dispatcher takes
   * them in turn; and forgets the reason. Exact and idempotent: each page moves its members in one
   * MULTI, so a release that dies midway leaves the rest in the set for the next one. Returns how
   * many this call moved. Releasing {@link SHARE_REASON} itself is the dispatcher's business.
   */
  async release(batchId: string, reason: string): Promise<number> {
    if (reason === SHARE_REASON) return 0;
    const { redis, keys } = this.runtime;
    const key = keys.held(batchId, reason);
    const share = keys.held(batchId, SHARE_REASON);
    let moved = 0;
    for (;;) {
      const ids = await redis.srandmember(key, RELEASE_PAGE);
      if (ids.length === 0) break;
      await redis
        .multi()
        .sadd(share, ...ids)
        .srem(key, ...ids)
        .sadd(keys.holds(batchId), SHARE_REASON)
        .sadd(keys.shareBatches(), batchId)
        .exec();
      moved += ids.length;
    }
    // A reason with nothing left held is forgotten (a later `record` adds it back).
    await redis.srem(keys.holds(batchId), reason);
    if ((await redis.scard(key)) > 0) await redis.sadd(keys.holds(batchId), reason);
    return moved;
  }

  /**
   * Promotes up to `count` of the batch's requests held for its share into the queue (behind what
   * waits there), and forgets them: a member leaves the set only once promoted, or once known not
   * to be delayed any more (promoted by another dispatcher, canceled, deleted, removed by an
   * operator). Members are taken in no particular order. Returns how many were promoted.
   */
  async dispatch(batchId: string, count: number): Promise<number> {
    const { redis, keys } = this.runtime;
    const key = keys.held(batchId, SHARE_REASON);
    let promoted = 0;
    // A few rounds at most: members found gone do not count, but must not keep the caller long.
    for (let round = 0; round < 4 && promoted < count; round++) {
      const ids = await redis.srandmember(key, Math.min(RELEASE_PAGE, count - promoted));
      if (ids.length === 0) break;
      promoted += await this.promote(ids);
      await redis.srem(key, ...ids);
    }
    return promoted;
  }

  /** Promotes these delayed jobs; those no longer delayed are skipped. Returns how many moved. */
  private async promote(ids: readonly string[]): Promise<number> {
    const { requests } = this.runtime;
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
    return outcomes.reduce<number>((a, b) => a + b, 0);
  }

  /** The batch's reasons with requests still held. */
  async reasons(batchId: string): Promise<string[]> {
    return this.runtime.redis.smembers(this.runtime.keys.holds(batchId));
  }

  /**
   * Releases the batch's reasons that are marked released but still hold requests (a release
   * that died, or a job recorded after the release ran). Returns requests moved to the share.
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
