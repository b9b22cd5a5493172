import type { Runtime } from '../runtime.js';
import { LuaScript } from '../redis/lua-script.js';
import { runPaced } from '../redis/paced-steps.js';
import { sweepDeadJobs } from '../queue/dead-job-sweep.js';
import { DEAD_LETTER_QUEUE, REQUESTS_QUEUE } from '../queue/jobs.js';
import { Chunks } from '../hosted/chunks.js';
import { Holds } from '../queue/holds.js';

export interface DeleteBatchResult {
  existed: boolean;
  /** Requests that had no result and were not in flight: they will never be sent. */
  removedRequests: number;
  removedDeadLetters: number;
}

/**
 * custom_ids per page script: each page holds Redis for a few milliseconds, and the pages are
 * paced (src/redis/paced-steps.ts), so other batches' commands get in between.
 */
const PAGE = 250;
/** Dead-letter ids per step of the dead-letter list's compaction. */
const DLQ_CHUNK = 5_000;

/**
 * Marks a batch deleted, gives its id a new incarnation, takes it off the batch list and bumps the
 * send-time epoch, at once: from here no worker sends a request of it, its leftover jobs are
 * known as such even after the same id is submitted again, and the record reads as gone. Runs
 * again unchanged on a delete that died midway (the incarnation moves once).
 * KEYS: batch, batches, incarnations, epoch. ARGV: id, now (ISO).
 * Returns {1, incarnation being deleted} or {0} when there is no such batch.
 */
const MARK_DELETED = new LuaScript(`
local meta = redis.call('HMGET', KEYS[1], 'id', 'incarnation')
if not meta[1] then return {0} end
local inc = meta[2] or '0'
if redis.call('HSETNX', KEYS[1], 'deleted_at', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[1], tonumber(inc) + 1)
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('INCR', KEYS[4])
return {1, inc}
`);

/**
 * One page of a delete, in input order: counts the requests without a result (held by a worker:
 * in flight; else never to be sent) and removes the jobs parked in the delayed set (waiting for a
 * retry: ZREM, O(log N)). Held requests are not jobs: their holds go with the batch's records.
 * Reads go a page at a time (HMGET, ZMSCORE): the calls from Lua are most of the cost. Jobs in the wait list stay, to be dropped when
 * they come up (dead-job-sweep.ts).
 * KEYS: ids, results, generations, delayed set.
 * ARGV: first index, page size, batch id, incarnation, job key prefix.
 * Returns {unsent, in flight, custom_ids read}.
 */
const DELETE_PAGE = new LuaScript(`
local ids = redis.call('LRANGE', KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)
if #ids == 0 then return {0, 0, 0} end
local batch, inc, jobPrefix = ARGV[3], ARGV[4], ARGV[5]
local lines = redis.call('HMGET', KEYS[2], unpack(ids))
local gens = redis.call('HMGET', KEYS[3], unpack(ids))
local jobIds = {}
for i, id in ipairs(ids) do
  if not lines[i] then
    local jobId = batch .. '.' .. id .. '.' .. (gens[i] or '0')
    if inc ~= '0' then jobId = jobId .. '.' .. inc end
    jobIds[#jobIds + 1] = jobId
  end
end
if #jobIds == 0 then return {0, 0, #ids} end
local delayed = redis.call('ZMSCORE', KEYS[4], unpack(jobIds))
local unsent, inFlight = 0, 0
for j, jobId in ipairs(jobIds) do
  local jobKey = jobPrefix .. jobId
  if redis.call('EXISTS', jobKey .. ':lock') == 1 then
    inFlight = inFlight + 1
  else
    unsent = unsent + 1
    if delayed[j] then
      redis.call('ZREM', KEYS[4], jobId)
      redis.call('DEL', jobKey, jobKey .. ':logs')
    end
  end
end
return {unsent, inFlight, #ids}
`);

/**
 * Rewrites the dead-letter queue's wait list without the batch's entries (ids `<batch>.` ...),
 * deleting their job keys: one pass over the list, in chunks copied to a scratch list that then
 * replaces it, instead of one LREM (a scan of the whole list) per entry. One script, so no entry
 * added meanwhile is lost; O(entries in the queue), run only when the batch had errored requests.
 * KEYS: wait list, scratch list. ARGV: batch id, job key prefix, chunk size.
 * Returns the number of entries removed.
 */
const DROP_DEAD_LETTERS = new LuaScript(`
local prefix, jobPrefix, chunk = ARGV[1] .. '.', ARGV[2], tonumber(ARGV[3])
redis.call('DEL', KEYS[2])
local len = redis.call('LLEN', KEYS[1])
local removed = 0
for start = 0, len - 1, chunk do
  local ids = redis.call('LRANGE', KEYS[1], start, start + chunk - 1)
  local keep = {}
  for _, id in ipairs(ids) do
    if string.sub(id, 1, #prefix) == prefix then
      local jobKey = jobPrefix .. id
      redis.call('DEL', jobKey, jobKey .. ':logs')
      removed = removed + 1
    else
      keep[#keep + 1] = id
    end
  end
  if #keep > 0 then redis.call('RPUSH', KEYS[2], unpack(keep)) end
end
if removed > 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) else redis.call('DEL', KEYS[1]) end
else
  redis.call('DEL', KEYS[2])
end
return removed
`);

/**
 * Removes a batch: marks it deleted (nothing is sent from then on, bar requests in flight), then
 * walks its custom_ids in pages to remove its parked jobs, drops its dead-letter entries in one
 * pass, and unlinks its records and results (UNLINK: freed in the background, so a million
 * results do not stall Redis). Its jobs in the wait list are dropped as they come up. A request in
 * flight finishes; its result is dropped, since the record it would update is gone. Cost: about
 * that of a submit, not a scan of the shared wait list per job. Idempotent: rerunning finishes a
 * delete that died midway. An unknown id creates nothing (`existed: false`).
 */
export async function deleteBatch(runtime: Runtime, batchId: string): Promise<DeleteBatchResult> {
  const { keys, redis } = runtime;
  const mark = (await MARK_DELETED.run(
    redis,
    [keys.batch(batchId), keys.batches(), keys.incarnations(), keys.epoch()],
    [batchId, new Date().toISOString()],
  )) as [number, string?];
  if (mark[0] !== 1) return { existed: false, removedRequests: 0, removedDeadLetters: 0 };
  const incarnation = mark[1] ?? '0';
  const jobPrefix = `${keys.bullPrefix}:${REQUESTS_QUEUE}:`;
  let removedRequests = 0;
  let start = 0;
  await runPaced(async () => {
    const [unsent, , read] = (await DELETE_PAGE.run(
      redis,
      [keys.ids(batchId), keys.results(batchId), keys.generations(batchId), `${jobPrefix}delayed`],
      [start, PAGE, batchId, incarnation, jobPrefix],
    )) as [number, number, number];
    removedRequests += unsent;
    start += PAGE;
    return read === PAGE;
  });
  let removedDeadLetters = 0;
  if (Number((await redis.hget(keys.batch(batchId), 'errored')) ?? 0) > 0) {
    const dlqPrefix = `${keys.bullPrefix}:${DEAD_LETTER_QUEUE}:`;
    removedDeadLetters = Number(
      await DROP_DEAD_LETTERS.run(
        redis,
        [`${dlqPrefix}wait`, `${dlqPrefix}wait:compacting`],
        [batchId, dlqPrefix, DLQ_CHUNK],
      ),
    );
  }
  // Its hosted batches (issue 14) go to the trash, which the hosted runner empties: canceled while
  // they run, deleted at the API once ended (it deletes only ended batches).
  const chunks = await new Chunks(runtime).all(batchId);
  const trash = chunks.flatMap((c) =>
    c.hosted_id ? [c.hosted_id, JSON.stringify({ batch: batchId, since: new Date().toISOString() })] : [],
  );
  if (trash.length > 0) await redis.hset(keys.hostedTrash(), ...trash);
  const seq = Number((await redis.hget(keys.batch(batchId), 'chunk_seq')) ?? 0);
  const chunkKeys = [
    keys.chunks(batchId),
    ...Array.from({ length: seq }, (_, i) => keys.chunk(batchId, i + 1)),
  ];
  // Holds (the requests held per reason, not jobs yet) go with the records.
  const holdKeys = await new Holds(runtime).keysOf(batchId);
  await redis.unlink(
    keys.batch(batchId),
    keys.results(batchId),
    keys.ids(batchId),
    keys.generations(batchId),
    ...holdKeys,
    ...chunkKeys,
  );
  await redis.srem(keys.hostedBatches(), batchId);
  await redis.hdel(keys.reconcilerSeen(), batchId);
  await redis.srem(keys.shareBatches(), batchId);
  await redis.hdel(keys.shareState(), batchId);
  // Its cost ledger's reservations and its own pause (issue 15; the rest is in the record).
  await redis.unlink(keys.costLeases(batchId));
  await redis.srem(keys.pausedBatches(), batchId);
  await sweepDeadJobs(runtime);
  return { existed: true, removedRequests, removedDeadLetters };
}
