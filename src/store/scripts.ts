/**
 * The Lua scripts behind every state change of a batch record. Each one is atomic, and each is
 * safe to run twice (a process may die after Redis applied it but before it heard back).
 */

/**
 * Creates a batch record, or finds the existing one for a resumed submit. A new record takes the
 * batch id's incarnation (bumped by every `delete` of that id, kept after it).
 * A batch created again under a deleted id bumps the send-time epoch: workers that saw the delete
 * cached the id as gone, and must read it again before they judge its new jobs.
 * KEYS: batch, batches, schema, incarnations, epoch. ARGV: id, fingerprint, total, source, createdAt(ms),
 * createdAtIso, schemaVersion, models(json), canary models (json array; each gets
 * `canary:<model>` = pending), priority (its fair-share weight; '' = keep, or 1 when created).
 * A resumed submit given a priority changes the batch's: that is how a running batch is re-weighted.
 * Returns {status, submitState, incarnation}: status 1 = created, 0 = resumed, -1 = id taken by
 * other content, -2 = schema of this prefix is newer than this runner, -3 = a delete of this id
 * is unfinished.
 */
export const CREATE_BATCH = `
local schema = redis.call('GET', KEYS[3])
if schema and tonumber(schema) > tonumber(ARGV[7]) then return {-2, schema, '0'} end
if not schema then redis.call('SET', KEYS[3], ARGV[7]) end
local fp = redis.call('HGET', KEYS[1], 'fingerprint')
if fp then
  if redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then return {-3, '', '0'} end
  local inc = redis.call('HGET', KEYS[1], 'incarnation') or '0'
  if fp ~= ARGV[2] then return {-1, fp, inc} end
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'priority', ARGV[10]) end
  return {0, redis.call('HGET', KEYS[1], 'submit_state') or 'submitting', inc}
end
local inc = redis.call('HGET', KEYS[4], ARGV[1]) or '0'
-- No fingerprint: no batch. Clear whatever is there (a stray field written by an older runner's
-- cancel of an unknown id) so it cannot cancel the batch created now.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'fingerprint', ARGV[2], 'total', ARGV[3], 'source', ARGV[4],
  'created_at', ARGV[6], 'processing', ARGV[3], 'succeeded', 0, 'errored', 0, 'canceled', 0,
  'enqueued', 0, 'submit_state', 'submitting', 'models', ARGV[8], 'incarnation', inc,
  'priority', ARGV[10] ~= '' and ARGV[10] or '1')
for _, model in ipairs(cjson.decode(ARGV[9])) do
  redis.call('HSET', KEYS[1], 'canary:' .. model, 'pending')
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if inc ~= '0' then redis.call('INCR', KEYS[5]) end
return {1, 'submitting', inc}
`;

/**
 * Records that requests [from, to) of the batch are enqueued, and appends their custom_ids to the
 * input-order list, once: a resumed submit that redoes a chunk does not append it twice.
 * KEYS: batch, ids. ARGV: from, to, complete(0|1), now (ISO), custom_id...
 * Returns the new enqueued count.
 */
export const COMMIT_CHUNK = `
local enqueued = tonumber(redis.call('HGET', KEYS[1], 'enqueued') or '0')
if enqueued == tonumber(ARGV[1]) then
  for i = 5, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
  enqueued = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'enqueued', enqueued)
end
if ARGV[3] == '1' and enqueued == tonumber(redis.call('HGET', KEYS[1], 'total')) then
  redis.call('HSET', KEYS[1], 'submit_state', 'submitted')
  if tonumber(redis.call('HGET', KEYS[1], 'processing')) <= 0 then
    redis.call('HSETNX', KEYS[1], 'ended_at', ARGV[4])
  end
end
return enqueued
`;

/**
 * Writes a request's one results line and moves it out of `processing`, with its usage and error
 * type, all at once. A second call for the same request (a redelivered job) changes nothing.
 * KEYS: batch, results, generations, stats, model failures, storm counts, then optional guards:
 *   keys that must not exist (the request's job, its dead-letter entry: the reconciler ends only a
 *   lost request).
 * ARGV: custom_id, generation, kind (succeeded|errored|canceled), result line, error type or '',
 *   input, output, cache creation, cache read tokens, truncated (0|1), refused (0|1), now (ISO),
 *   API calls of this last attempt (0|1), model (a success resets its model-breaker count),
 *   ms this attempt waited for the rate budget, runner-level condition of an errored one or '',
 *   API key fingerprint of the call or '' (a success ends that key's run of failures), the job's
 *   incarnation, the path that answered ('live', 'hosted' or '': counted in `served:<path>` for a
 *   succeeded or errored line; a hosted answer's usage is also counted in `hosted:<field>`, priced
 *   at half). Kind may also be `expired` (a hosted request the API did not process in time).
 * Returns 1 written, 0 already written, -1 stale generation, -2 batch deleted (or being deleted,
 * or deleted and submitted again: the job is of an older incarnation), -3 a guard exists.
 */
export const FINALIZE_REQUEST = `
local meta = redis.call('HMGET', KEYS[1], 'id', 'deleted_at', 'incarnation')
if not meta[1] or meta[2] or (meta[3] or '0') ~= (ARGV[18] or '0') then return -2 end
local gen = redis.call('HGET', KEYS[3], ARGV[1]) or '0'
if gen ~= ARGV[2] then return -1 end
for i = 7, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return -3 end
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[4]) == 0 then return 0 end
local left = redis.call('HINCRBY', KEYS[1], 'processing', -1)
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[1], 'err:' .. ARGV[5], 1)
  redis.call('HINCRBY', KEYS[4], 'errored:' .. ARGV[5], 1)
end
if ARGV[13] == '1' then redis.call('HINCRBY', KEYS[4], 'calls', 1) end
if ARGV[3] == 'succeeded' then
  redis.call('HDEL', KEYS[5], ARGV[14])
  if (ARGV[17] or '') ~= '' then redis.call('HDEL', KEYS[6], ARGV[17] .. ':sig', ARGV[17] .. ':count') end
end
if tonumber(ARGV[15] or '0') > 0 then redis.call('HINCRBY', KEYS[4], 'budget_wait_ms', ARGV[15]) end
if (ARGV[16] or '') ~= '' then redis.call('HINCRBY', KEYS[1], 'cond:' .. ARGV[16], 1) end
local fields = {'input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'truncated', 'refused'}
for i = 1, 6 do
  local n = tonumber(ARGV[5 + i])
  if n and n ~= 0 then
    redis.call('HINCRBY', KEYS[1], fields[i], n)
    redis.call('HINCRBY', KEYS[4], fields[i], n)
    if ARGV[19] == 'hosted' and i <= 4 then redis.call('HINCRBY', KEYS[1], 'hosted:' .. fields[i], n) end
  end
end
if (ARGV[19] or '') ~= '' and (ARGV[3] == 'succeeded' or ARGV[3] == 'errored') then
  redis.call('HINCRBY', KEYS[1], 'served:' .. ARGV[19], 1)
end
if left <= 0 and redis.call('HGET', KEYS[1], 'submit_state') == 'submitted' then
  redis.call('HSET', KEYS[1], 'ended_at', ARGV[12])
end
return 1
`;

/**
 * Re-opens an errored request for `dlq retry`: removes its errored results line, moves it back
 * from `errored` (and its type) to `processing`, and bumps its generation so the new job has a new
 * id. An entry whose errored line is not written yet (the caller holds the entry) is re-opened by
 * the bump alone: the request never left `processing`, and its worker's line is refused as stale.
 * Idempotent: a second run (or a run after one that died before adding the job) sees the
 * bumped generation and answers 1 only while the request still has no result.
 * KEYS: batch, results, generations. ARGV: custom_id, generation of the entry, error type,
 * condition or '', incarnation of the entry.
 * Returns 1 re-opened (send generation+1), 0 nothing to do (stale entry), -2 batch deleted (or
 * the entry is of a deleted incarnation).
 */
export const REOPEN_REQUEST = `
local meta = redis.call('HMGET', KEYS[1], 'id', 'deleted_at', 'incarnation')
if not meta[1] or meta[2] or (meta[3] or '0') ~= (ARGV[5] or '0') then return -2 end
local gen = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local n = tonumber(ARGV[2])
if gen == n + 1 then
  if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 1 end
  return 0
end
if gen ~= n then return 0 end
local line = redis.call('HGET', KEYS[2], ARGV[1])
if not line then
  -- The entry is in the dead-letter queue but its errored line is not written yet (its worker
  -- is between the two steps, or died there): the request still counts as processing. Bump the
  -- generation, so that worker's line is refused as stale, and send it again.
  redis.call('HSET', KEYS[3], ARGV[1], n + 1)
  redis.call('HDEL', KEYS[1], 'ended_at')
  return 1
end
if not string.find(line, '"result":{"type":"errored"', 1, true) then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], n + 1)
redis.call('HINCRBY', KEYS[1], 'errored', -1)
redis.call('HINCRBY', KEYS[1], 'processing', 1)
if ARGV[3] ~= '' then
  if redis.call('HINCRBY', KEYS[1], 'err:' .. ARGV[3], -1) <= 0 then redis.call('HDEL', KEYS[1], 'err:' .. ARGV[3]) end
end
if (ARGV[4] or '') ~= '' then
  if redis.call('HINCRBY', KEYS[1], 'cond:' .. ARGV[4], -1) <= 0 then redis.call('HDEL', KEYS[1], 'cond:' .. ARGV[4]) end
end
redis.call('HDEL', KEYS[1], 'ended_at')
return 1
`;
