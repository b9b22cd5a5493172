import type { Runtime } from '../runtime.js';
import { LuaScript } from '../redis/lua-script.js';
import { runPaced } from '../redis/paced-steps.js';
import { canceledLine } from '../store/result-line.js';
import { sweepDeadJobs } from '../queue/dead-job-sweep.js';
import { Chunks } from '../hosted/chunks.js';
import { Holds } from '../queue/holds.js';
import { REQUESTS_QUEUE } from '../queue/jobs.js';

export interface CancelResult {
  existed: boolean;
  /** Requests ended as canceled by this call. */
  canceled: number;
  /** Requests in flight: they finish, and the batch is `canceling` until they have. */
  inFlight: number;
}

/**
 * custom_ids per page script: each page holds Redis for a few milliseconds (about 20 µs an id),
 * and the pages are paced (src/redis/paced-steps.ts), so other batches' commands get in between.
 */
const PAGE = 250;
const PLACEHOLDER = 'custom-id-placeholder';

/**
 * Marks a batch canceled and bumps the send-time epoch, at once: from here no worker sends a
 * request of the batch (each confirms the epoch just before sending). Nothing is created for an
 * unknown id or a batch being deleted.
 * KEYS: batch, epoch. ARGV: now (ISO). Returns {1, incarnation} or {0}.
 */
const MARK_CANCELED = new LuaScript(`
local meta = redis.call('HMGET', KEYS[1], 'id', 'deleted_at', 'incarnation')
if not meta[1] or meta[2] then return {0} end
redis.call('HSETNX', KEYS[1], 'canceled_at', ARGV[1])
redis.call('INCR', KEYS[2])
return {1, meta[3] or '0'}
`);

/**
 * Cancels one page of the batch's requests, in input order: each request with no results line
 * whose job no worker holds (BullMQ's `<job>:lock`) gets its `canceled` line, and the counts move,
 * all at once. A job held by a worker is in flight and ends with its own result. A job parked in
 * the delayed set (waiting for a retry) is removed there and then (ZREM, O(log N)); a job in the
 * wait list is left where it is, to be dropped when it comes up (see dead-job-sweep.ts): removing
 * it from the list would cost a scan of the whole list. Held requests (not jobs yet) lose their
 * holds at the end of the cancel. What can be read or written a page at a time is (HMGET,
 * ZMSCORE, one HSET of the lines): the calls from Lua, not the commands, are most of the cost.
 * Idempotent: a request with a line is skipped, so a cancel killed midway is finished by rerunning.
 * A request in a hosted batch (issue 14) is in flight too: the hosted runner cancels the hosted
 * batch, and its line comes with the results (succeeded if the API had done it).
 * KEYS: batch, ids, results, generations, stats, delayed set, then the batch's open chunks.
 * ARGV: first index, page size, batch id, incarnation, job key prefix, now (ISO), the canceled
 * line's text before and after the custom_id.
 * Returns {canceled, in flight, custom_ids read}.
 */
const CANCEL_PAGE = new LuaScript(`
local ids = redis.call('LRANGE', KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)
if #ids == 0 then return {0, 0, 0} end
local batch, inc, jobPrefix = ARGV[3], ARGV[4], ARGV[5]
local lines = redis.call('HMGET', KEYS[3], unpack(ids))
local gens = redis.call('HMGET', KEYS[4], unpack(ids))
local open, jobIds = {}, {}
for i, id in ipairs(ids) do
  if not lines[i] then
    local jobId = batch .. '.' .. id .. '.' .. (gens[i] or '0')
    if inc ~= '0' then jobId = jobId .. '.' .. inc end
    open[#open + 1] = id
    jobIds[#jobIds + 1] = jobId
  end
end
if #open == 0 then return {0, 0, #ids} end
local delayed = redis.call('ZMSCORE', KEYS[6], unpack(jobIds))
local writes, canceled, inFlight = {}, 0, 0
for j, id in ipairs(open) do
  local jobKey = jobPrefix .. jobIds[j]
  local hosted = false
  for k = 7, #KEYS do
    if redis.call('HEXISTS', KEYS[k], jobIds[j]) == 1 then hosted = true break end
  end
  if hosted or redis.call('EXISTS', jobKey .. ':lock') == 1 then
    inFlight = inFlight + 1
  else
    writes[#writes + 1] = id
    writes[#writes + 1] = ARGV[7] .. id .. ARGV[8]
    canceled = canceled + 1
    if delayed[j] then
      redis.call('ZREM', KEYS[6], jobIds[j])
      redis.call('DEL', jobKey, jobKey .. ':logs')
    end
  end
end
if canceled > 0 then
  redis.call('HSET', KEYS[3], unpack(writes))
  local left = redis.call('HINCRBY', KEYS[1], 'processing', -canceled)
  redis.call('HINCRBY', KEYS[1], 'canceled', canceled)
  redis.call('HINCRBY', KEYS[5], 'canceled', canceled)
  if left <= 0 and redis.call('HGET', KEYS[1], 'submit_state') == 'submitted' then
    redis.call('HSETNX', KEYS[1], 'ended_at', ARGV[6])
  end
end
return {canceled, inFlight, #ids}
`);

/**
 * Cancels a batch: pending, delayed and held requests end as `canceled` in results; requests in
 * flight finish. The batch is marked (and the epoch bumped) first, so nothing more is sent once
 * this returns; then the requests are canceled in paced pages of {@link PAGE}, each one Lua script, so
 * the cost is that of a submit, not of a removal per job from the shared wait list. The jobs left
 * in the wait list are dropped as they come up. Idempotent: running it again finishes what a
 * cancel that died left. An unknown id creates nothing (`existed: false`).
 */
export async function cancelBatch(runtime: Runtime, batchId: string): Promise<CancelResult> {
  const { redis, keys } = runtime;
  const now = new Date().toISOString();
  const mark = (await MARK_CANCELED.run(redis, [keys.batch(batchId), keys.epoch()], [now])) as [
    number,
    string?,
  ];
  if (mark[0] !== 1) return { existed: false, canceled: 0, inFlight: 0 };
  const incarnation = mark[1] ?? '0';
  const jobPrefix = `${keys.bullPrefix}:${REQUESTS_QUEUE}:`;
  // custom_ids need no JSON escaping (CUSTOM_ID_PATTERN), so the line is head + id + tail.
  const [lineHead, lineTail] = canceledLine(PLACEHOLDER).split(PLACEHOLDER) as [string, string];
  // Marked canceled, the batch packs no more chunks: these are all it has.
  const chunkKeys = (await new Chunks(runtime).openNumbers(batchId)).map((n) => keys.chunk(batchId, n));
  let canceled = 0;
  let inFlight = 0;
  let start = 0;
  await runPaced(async () => {
    const [n, held, read] = (await CANCEL_PAGE.run(
      redis,
      [
        keys.batch(batchId),
        keys.ids(batchId),
        keys.results(batchId),
        keys.generations(batchId),
        keys.stats(),
        `${jobPrefix}delayed`,
        ...chunkKeys,
      ],
      [start, PAGE, batchId, incarnation, jobPrefix, now, lineHead, lineTail],
    )) as [number, number, number];
    canceled += n;
    inFlight += held;
    start += PAGE;
    return read === PAGE;
  });
  // Every held request has its canceled line now: what is left of the holds goes (requests held
  // by a submit still running; none is sent: one the dispatcher took meanwhile becomes a job its
  // worker drops, the batch being canceled).
  const holds = new Holds(runtime);
  await redis.unlink(...(await holds.keysOf(batchId)));
  await redis.srem(keys.shareBatches(), batchId);
  await sweepDeadJobs(runtime);
  return { existed: true, canceled, inFlight };
}
