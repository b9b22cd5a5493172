import { LuaScript } from '../redis/lua-script.js';
import type { Runtime } from '../runtime.js';
import { requestJob, type RequestJobData } from './jobs.js';

/** Requests moved per script of a release or a dispatch: each holds Redis for about a millisecond. */
const PAGE = 500;

/**
 * The hold reason of requests waiting for their batch's turn: every request is submitted held, and
 * the dispatcher (`Dispatcher`) sends them round-robin across batches, weighted by priority.
 * Other reasons (a model's canary) release into this one, not into the queue.
 */
export const SHARE_REASON = 'share';

/** A held request: its job id and its job data as JSON, exactly what `requestJob` enqueues. */
export type HeldEntry = readonly [jobId: string, dataJson: string];

/**
 * Moves up to a page of held requests from one reason's hash to the batch's share, and notes that
 * the batch holds some for its share. One script: a request is always in one hash or the other.
 * KEYS: from, share, holds, share batches. ARGV: page size, batch id, share reason.
 * Returns how many moved.
 */
const RELEASE_PAGE = new LuaScript(`
local entries = redis.call('HRANDFIELD', KEYS[1], tonumber(ARGV[1]), 'WITHVALUES')
if #entries == 0 then return 0 end
local fields = {}
for i = 1, #entries, 2 do fields[#fields + 1] = entries[i] end
redis.call('HSET', KEYS[2], unpack(entries))
redis.call('HDEL', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[2])
return #fields
`);

/**
 * Takes up to a page of the batch's share to send: moves them to its dispatching hash, where they
 * stay until their jobs exist. What a previous take left there (its dispatcher died or lost the
 * lock before its jobs were added, or adding failed) is taken again first, flagged as such.
 * KEYS: share, dispatching. ARGV: page size.
 * Returns {1 (a take left over) or 0, job id, data, job id, data, ...}.
 */
const TAKE = new LuaScript(`
local n = tonumber(ARGV[1])
if redis.call('HLEN', KEYS[2]) > 0 then
  local left = redis.call('HRANDFIELD', KEYS[2], n, 'WITHVALUES')
  table.insert(left, 1, 1)
  return left
end
local entries = redis.call('HRANDFIELD', KEYS[1], n, 'WITHVALUES')
if #entries == 0 then return {0} end
local fields = {}
for i = 1, #entries, 2 do fields[#fields + 1] = entries[i] end
redis.call('HSET', KEYS[2], unpack(entries))
redis.call('HDEL', KEYS[1], unpack(fields))
table.insert(entries, 1, 0)
return entries
`);

/**
 * One hold-and-release mechanism for every reason a request waits behind something else: its
 * model's canary, its batch's fair share (a paused batch later). A held request is not a BullMQ
 * job: it is an entry of the hash of its (batch, reason), job id → job data, and becomes a job
 * only when the dispatcher sends it. Holding costs one field of a hash (a delayed job cost
 * twice a plain job's Redis time at submit, and its promotion as much again); and release and
 * dispatch take exactly the hash's entries, never by paging a shared structure by offset, so
 * requests that leave meanwhile (a cancel, a delete) cannot make them skip any.
 *
 * Releasing a reason moves its entries into the batch's {@link SHARE_REASON} hash (one script per
 * page, so an entry is always in one hash or the other); only {@link dispatch} makes jobs of them.
 * The release state of a reason lives in the batch record, in the field named by the reason
 * (`canary:<model>` = `released`): the reconciler finds a reason marked released whose hash is not
 * empty (a release that died midway) and releases it again.
 *
 * Every step keeps each request in at least one lawful place (src/worker/request-places.ts):
 * held → dispatching (one script) → queued (its job is added before its dispatching entry goes).
 */
export class Holds {
  constructor(private readonly runtime: Runtime) {}

  /**
   * Holds these requests for `reason`. Re-holding a request already held overwrites its entry with
   * the same job id. A release running at the same time misses them, so the caller releases again
   * afterwards if the reason was released meanwhile (the producer does).
   */
  async hold(batchId: string, reason: string, entries: readonly HeldEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const { redis, keys } = this.runtime;
    const multi = redis
      .multi()
      .hset(keys.held(batchId, reason), ...entries.flat())
      .sadd(keys.holds(batchId), reason);
    // After the entries, so a dispatcher that drops the batch from the set as empty meanwhile
    // either sees these entries on its re-check or is followed by this SADD.
    if (reason === SHARE_REASON) multi.sadd(keys.shareBatches(), batchId);
    await multi.exec();
  }

  /** Whether the batch record marks this reason released. */
  async isReleased(batchId: string, reason: string): Promise<boolean> {
    return (await this.runtime.redis.hget(this.runtime.keys.batch(batchId), reason)) === 'released';
  }

  /** Requests held for one reason. */
  async count(batchId: string, reason: string): Promise<number> {
    return this.runtime.redis.hlen(this.runtime.keys.held(batchId, reason));
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
   * Releases every request held for (batch, reason) to the batch's share, where the dispatcher
   * takes them in turn; and forgets the reason. Exact and idempotent: a release that dies midway
   * leaves the rest in the hash for the next one. Returns how many this call moved. Releasing
   * {@link SHARE_REASON} itself is the dispatcher's business.
   */
  async release(batchId: string, reason: string): Promise<number> {
    if (reason === SHARE_REASON) return 0;
    const { redis, keys } = this.runtime;
    const key = keys.held(batchId, reason);
    const scriptKeys = [key, keys.held(batchId, SHARE_REASON), keys.holds(batchId), keys.shareBatches()];
    let moved = 0;
    for (;;) {
      const n = Number(await RELEASE_PAGE.run(redis, scriptKeys, [PAGE, batchId, SHARE_REASON]));
      if (n === 0) break;
      moved += n;
    }
    // A reason with nothing left held is forgotten (a later `hold` adds it back).
    await redis.srem(keys.holds(batchId), reason);
    if ((await redis.hlen(key)) > 0) await redis.sadd(keys.holds(batchId), reason);
    return moved;
  }

  /**
   * Sends up to `count` of the batch's requests held for its share into the queue (behind what
   * waits there): each page is taken into the batch's dispatching hash, its jobs are added, then
   * its entries go. A page left there by a dispatcher that died is sent first, its jobs flagged
   * `resumed` (one may have run already: its worker looks for a result before sending). Job ids
   * make adding idempotent. `stillHolds` is asked before each page's jobs are added: false (the
   * dispatcher's lock was lost) leaves the page to the lock's next holder. Requests are taken in
   * no particular order. Returns how many jobs were added.
   */
  async dispatch(batchId: string, count: number, stillHolds?: () => Promise<boolean>): Promise<number> {
    const { redis, keys, requests } = this.runtime;
    const dispatching = keys.dispatching(batchId);
    const scriptKeys = [keys.held(batchId, SHARE_REASON), dispatching];
    let added = 0;
    // A few pages at most: a page left over does not count, but must not keep the caller long.
    for (let round = 0; round < 4 && added < count; round++) {
      const reply = (await TAKE.run(redis, scriptKeys, [Math.min(PAGE, count - added)])) as Array<
        number | string
      >;
      if (reply.length < 3) break;
      const leftOver = Number(reply[0]) === 1;
      const ids: string[] = [];
      const jobs = [];
      for (let i = 1; i + 1 < reply.length; i += 2) {
        ids.push(String(reply[i]));
        const data = JSON.parse(String(reply[i + 1])) as RequestJobData;
        if (leftOver) data.resumed = true;
        jobs.push(requestJob(data));
      }
      if (stillHolds && !(await stillHolds())) break;
      await requests.addBulk(jobs);
      await redis.hdel(dispatching, ...ids);
      added += ids.length;
    }
    return added;
  }

  /** The batch's reasons with requests still held. */
  async reasons(batchId: string): Promise<string[]> {
    return this.runtime.redis.smembers(this.runtime.keys.holds(batchId));
  }

  /**
   * Requests held for their share or being dispatched, over every batch with some that is not
   * paused on its own (issue 15: those wait for `resume BATCH`): work the dispatcher will put in
   * the queue by itself, so a worker waiting for idleness must not stop before it.
   */
  async waitingForShare(): Promise<number> {
    const { redis, keys } = this.runtime;
    const [batches, paused] = await Promise.all([
      redis.smembers(keys.shareBatches()),
      redis.smembers(keys.pausedBatches()),
    ]);
    const ids = batches.filter((id) => !paused.includes(id));
    if (ids.length === 0) return 0;
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hlen(keys.held(id, SHARE_REASON)).hlen(keys.dispatching(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
  }

  /**
   * Requests held (behind a canary, for their share, or being dispatched) over every batch not
   * paused on its own: work still to be sent. Those behind a canary wait for it; a canary removed
   * by an operator leaves them for the reconciler to release.
   */
  async waitingToSend(): Promise<number> {
    const { redis, keys, store } = this.runtime;
    const [ids, paused] = await Promise.all([store.list(), redis.smembers(keys.pausedBatches())]);
    return this.heldOf(ids.filter((id) => !paused.includes(id)));
  }

  /**
   * Requests held (behind a canary, for their share, or being dispatched) over these batches: those
   * submitted that are not jobs yet, which Bull Board does not show. Two round trips.
   */
  async heldOf(batchIds: readonly string[]): Promise<number> {
    if (batchIds.length === 0) return 0;
    const { redis, keys } = this.runtime;
    const reasons = redis.pipeline();
    for (const id of batchIds) reasons.smembers(keys.holds(id));
    const replies = (await reasons.exec()) ?? [];
    const counts = redis.pipeline();
    batchIds.forEach((id, i) => {
      counts.hlen(keys.dispatching(id));
      for (const reason of (replies[i]?.[1] ?? []) as string[]) counts.hlen(keys.held(id, reason));
    });
    return ((await counts.exec()) ?? []).reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
  }

  /**
   * Releases the batch's reasons that are marked released but still hold requests (a release
   * that died, or a request held after the release ran). Returns requests moved to the share.
   */
  async releaseOverdue(batchId: string): Promise<number> {
    let moved = 0;
    for (const reason of await this.reasons(batchId)) {
      if (await this.isReleased(batchId, reason)) moved += await this.release(batchId, reason);
    }
    return moved;
  }

  /** Keys of the batch's holds (its reasons' hashes, its share and dispatching), for removing them. */
  async keysOf(batchId: string): Promise<string[]> {
    const { keys } = this.runtime;
    const reasons = new Set([SHARE_REASON, ...(await this.reasons(batchId))]);
    return [
      keys.holds(batchId),
      keys.dispatching(batchId),
      ...[...reasons].map((r) => keys.held(batchId, r)),
    ];
  }
}
