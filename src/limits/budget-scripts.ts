import { LuaScript } from '../redis/lua-script.js';

/**
 * The shared bucket: one Redis hash per (account, model class), with per dimension d in r
 * (requests), i (input tokens), o (output tokens):
 *   d      level after the last look (may be negative: a debt that refill pays off)
 *   t<d>   Redis time (ms) refill counts from: the last look, or a little ahead of it (see lead below)
 *   h<d>   the limit the API's headers last reported (shared adaptation; absent = none seen)
 * and `hold`: Redis time (ms) before which nothing of the class may be sent (a 429's retry-after).
 *
 * Time is always Redis `TIME`, so every host shares one clock. Refill is continuous: a dimension with
 * capacity C gains C/60000 per ms up to C, the way the API's buckets work.
 *
 * Capacity per dimension: each caller passes its own configured limit (0 = this process does not limit
 * that dimension: it neither checks nor charges it); the capacity in force is the lower of that and
 * the stored header limit. See SharedRateBudget for what this means when processes disagree.
 *
 * Numbers are stored with %.17g so they survive the round trip exactly.
 */
const COMMON = `
local key = KEYS[1]
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + tonumber(tm[2]) / 1000
local names = {'r', 'i', 'o'}
local function fmt(x) return string.format('%.17g', x) end
local f = redis.call('HMGET', key, 'r', 'tr', 'hr', 'i', 'ti', 'hi', 'o', 'to', 'ho', 'hold')
local hold = tonumber(f[10]) or 0
local function capacity(d, own)
  local c = own
  local h = tonumber(f[3 * d])
  if h ~= nil and h > 0 and h < c then c = h end
  return c
end
-- The level now, and the time refill (re)starts from: ts may lie ahead of now (see ACQUIRE_SCRIPT).
local function refilled(d, c)
  local l = tonumber(f[3 * d - 2])
  local ts = tonumber(f[3 * d - 1])
  if l == nil or ts == nil then return nil, now end
  if now > ts then
    l = l + (now - ts) * c / 60000
    ts = now
  end
  if l > c then l = c end
  return l, ts
end
local function keep_for(ttl)
  local until_hold = hold - now + 60000
  if until_hold > ttl then ttl = until_hold end
  redis.call('PEXPIRE', key, math.ceil(ttl))
end
`;

/**
 * Acquire: check every limited dimension (and the hold); grant and charge all at once, or charge
 * nothing. ARGV: own limits r, i, o; costs r, i, o; create_full (1|0); ttl ms; lead ms.
 * Returns {0, Redis time of the grant (ms, string)} granted, {1, ms} wait that long (the hold, or until
 * the shortest dimension has refilled enough), {2, dimension index, capacity} the request is larger
 * than the whole bucket.
 * A missing dimension is created full when create_full is 1 (this process has never seen the class),
 * else empty (its state vanished under running workers: never burst past the budget).
 * Lead: the API's bucket starts refilling when the first request of a burst reaches it, which is
 * later than the grant (connection set-up, the network). A full bucket is full on both sides; so when
 * a grant takes a dimension out of "full", its refill starts `lead` ms later, not now: otherwise the
 * shared bucket runs ahead of the API's by rate x that latency, and the request that the API's bucket
 * is short of gets a 429. It costs rate x lead once per burst after a full bucket, nothing in steady use.
 */
export const ACQUIRE_SCRIPT = new LuaScript(`${COMMON}
local create_full = ARGV[7] == '1'
local ttl = tonumber(ARGV[8])
local lead = tonumber(ARGV[9])
local wait = 0
if hold > now then wait = hold - now end
local level, since, full, created = {}, {}, {}, false
for d = 1, 3 do
  local own = tonumber(ARGV[d])
  if own > 0 then
    local c = capacity(d, own)
    local cost = tonumber(ARGV[3 + d])
    if cost > c then return {2, d, c} end
    local l, ts = refilled(d, c)
    if l == nil then
      if create_full then l = c else l = 0 end
      created = true
    end
    level[d], since[d], full[d] = l, ts, l >= c
    if l < cost then
      local w = (cost - l) * 60000 / c
      if ts > now then w = w + ts - now end
      if w > wait then wait = w end
    end
  end
end
if wait > 0 then
  if created then
    local fields = {}
    for d = 1, 3 do
      if level[d] ~= nil then
        table.insert(fields, names[d])
        table.insert(fields, fmt(level[d]))
        table.insert(fields, 't' .. names[d])
        table.insert(fields, fmt(since[d]))
      end
    end
    redis.call('HSET', key, unpack(fields))
    keep_for(ttl)
  end
  return {1, math.ceil(wait)}
end
local fields = {}
for d = 1, 3 do
  if level[d] ~= nil then
    local ts = since[d]
    if full[d] then ts = now + lead end
    table.insert(fields, names[d])
    table.insert(fields, fmt(level[d] - tonumber(ARGV[3 + d])))
    table.insert(fields, 't' .. names[d])
    table.insert(fields, fmt(ts))
  end
end
redis.call('HSET', key, unpack(fields))
keep_for(ttl)
return {0, fmt(now)}
`);

/**
 * Settle: correct the charge and learn from the response. ARGV: own limits r, i, o; deltas r, i, o
 * (positive charges more, negative refunds; a refund never lifts a level above capacity, a charge may
 * take it below zero); hold ms (0 none); header limits r, i, o (-1 none); header remaining r, i, o
 * (-1 none); ttl ms. A header limit is stored for every process (capacity adapts down); a header
 * remaining caps the level (never send more than the API says remains). A missing bucket is
 * recreated empty: a lease exists, so its state vanished while in use.
 * Returns {hold until (ms, string), now (ms, string)}.
 */
export const SETTLE_SCRIPT = new LuaScript(`${COMMON}
local ttl = tonumber(ARGV[14])
local hold_ms = tonumber(ARGV[7])
local fields = {}
if hold_ms > 0 and now + hold_ms > hold then
  hold = now + hold_ms
  table.insert(fields, 'hold')
  table.insert(fields, fmt(hold))
end
for d = 1, 3 do
  local own = tonumber(ARGV[d])
  if own > 0 then
    local header_limit = tonumber(ARGV[7 + d])
    if header_limit > 0 and tonumber(f[3 * d]) ~= header_limit then
      f[3 * d] = tostring(header_limit)
      table.insert(fields, 'h' .. names[d])
      table.insert(fields, fmt(header_limit))
    end
    local c = capacity(d, own)
    local l, ts = refilled(d, c)
    if l == nil then l = 0 end
    l = l - tonumber(ARGV[3 + d])
    if l > c then l = c end
    local remaining = tonumber(ARGV[10 + d])
    if remaining >= 0 and remaining < l then l = remaining end
    table.insert(fields, names[d])
    table.insert(fields, fmt(l))
    table.insert(fields, 't' .. names[d])
    table.insert(fields, fmt(ts))
  end
end
if #fields > 0 then
  redis.call('HSET', key, unpack(fields))
  keep_for(ttl)
end
return {fmt(hold), fmt(now)}
`);

/**
 * Snapshot (read only): ARGV own limits r, i, o. Returns {now, exists (0|1), hold, then per dimension
 * level ('' when absent or not limited here), capacity in force, header limit ('' none)}.
 */
export const SNAPSHOT_SCRIPT = new LuaScript(`${COMMON}
local out = {fmt(now), redis.call('EXISTS', key), fmt(hold)}
for d = 1, 3 do
  local own = tonumber(ARGV[d])
  local h = f[3 * d] or ''
  if own > 0 then
    local c = capacity(d, own)
    local l = refilled(d, c)
    table.insert(out, l and fmt(l) or '')
    table.insert(out, fmt(c))
  else
    table.insert(out, '')
    table.insert(out, '0')
  end
  table.insert(out, h)
end
return out
`);
