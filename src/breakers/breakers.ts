import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { ErrorRule } from '../errors/error-table.js';
import { bumpEpoch } from '../queue/epoch.js';
import { REQUESTS_QUEUE, type LastError, type RequestJobData } from '../queue/jobs.js';
import { rewarmAfterPause } from '../queue/rewarm.js';
import type { Runtime } from '../runtime.js';
import { accountBreakerKey, accountPrefixesKey, KeyLayout } from '../redis/keys.js';
import { LuaScript } from '../redis/lua-script.js';
import type { Alerter } from './alert.js';
import type { KeyBreakerState, ModelBreakerState } from './breaker-state.js';

/**
 * Records the key-wide breaker unless one is already recorded (the first cause is the one to
 * fix), and tells whether this call tripped it. KEYS: key breaker. ARGV: field/value pairs.
 */
const TRIP_KEY_BREAKER = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`);

/**
 * Counts a model-wide failure and opens the model's breaker at the threshold.
 * KEYS: failures, breakers. ARGV: model, threshold, breaker JSON. Returns 1 if this call opened it.
 */
const COUNT_MODEL_FAILURE = new LuaScript(`
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n >= tonumber(ARGV[2]) and redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then return 1 end
return 0
`);

/**
 * Records the key-level breaker of an API key unless one is recorded (the first cause is the one
 * to fix). KEYS: the account's breaker hash. ARGV: field/value pairs (with `trip`, this trip's id).
 * Returns 1 if this call recorded it, else the fields of the record in force (HGETALL).
 */
const TRIP_ACCOUNT_BREAKER = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`);

/** The Redis handles of a prefix, ours or another runner's. */
interface PrefixHandle {
  redis: Runtime['redis'];
  keys: KeyLayout;
  /** The prefix's request queue; opened (and closed) here when it is another runner's. */
  requests?: Runtime['requests'];
}

/**
 * Pauses the main queue for every worker and records why. Idempotent: a second trip while paused
 * changes nothing and raises no second alert.
 *
 * With the API key's fingerprint (`accountId`), the trip is the key's, not the prefix's: it is
 * recorded under the key (`{cb-key-<fp>}:breaker`) and copied to, and pauses, every prefix whose
 * workers use that key (`{cb-key-<fp>}:prefixes`), this one first. Each copy bumps its prefix's
 * send-time epoch, so their workers stop at their next request's send-time check. One alert per
 * trip of the key, from the process that recorded it.
 */
export async function tripKeyBreaker(
  runtime: Runtime,
  error: LastError & { errorCode?: string | null },
  rule: ErrorRule,
  alert: Alerter,
  accountId?: string,
): Promise<boolean> {
  const state: KeyBreakerState = {
    reason: 'key_breaker',
    type: error.type,
    error_code: error.errorCode ?? null,
    condition: rule.condition,
    message: error.message,
    request_id: error.request_id,
    since: new Date().toISOString(),
    fix: rule.fix,
  };
  let fields: Record<string, string> = {
    ...state,
    error_code: state.error_code ?? '',
    condition: state.condition ?? '',
    request_id: state.request_id ?? '',
    reason: 'key_breaker',
  };
  let tripped: boolean;
  let others: string[] = [];
  if (accountId === undefined) {
    tripped = await recordPrefixBreaker(runtime, fields);
  } else {
    const own = {
      ...fields,
      account: accountId,
      trip: randomBytes(8).toString('hex'),
      prefix: runtime.keys.bullPrefix,
    };
    const reply = (await TRIP_ACCOUNT_BREAKER.run(
      runtime.redis,
      [accountBreakerKey(accountId)],
      Object.entries(own).flat(),
    )) as number | string[];
    tripped = reply === 1 || Number(reply) === 1;
    fields = tripped ? own : { ...pairsToRecord(reply as string[]), account: accountId };
    await recordPrefixBreaker(runtime, fields);
    others = (await runtime.redis.smembers(accountPrefixesKey(accountId))).filter(
      (p) => p !== runtime.keys.bullPrefix,
    );
  }
  // Pause even when the record existed: a crash between the two steps must not leave it running.
  await runtime.requests.pause();
  await bumpEpoch(runtime);
  if (tripped) {
    void alert({ event: 'key_breaker_tripped', ...state, prefix: runtime.keys.bullPrefix });
  }
  for (const prefix of others)
    await pausePrefix({ redis: runtime.redis, keys: new KeyLayout(prefix) }, fields);
  return tripped;
}

/** Records the prefix's copy of a key-wide breaker unless one is there. Returns whether this call did. */
async function recordPrefixBreaker(runtime: PrefixHandle, fields: Record<string, string>): Promise<boolean> {
  return (
    Number(
      await TRIP_KEY_BREAKER.run(runtime.redis, [runtime.keys.keyBreaker()], Object.entries(fields).flat()),
    ) === 1
  );
}

/** Records the breaker under a prefix, pauses its queue and bumps its epoch. */
async function pausePrefix(prefix: PrefixHandle, fields: Record<string, string>): Promise<void> {
  await recordPrefixBreaker(prefix, fields);
  await withQueue(prefix, (queue) => queue.pause());
  await bumpEpoch(prefix);
}

/** Resumes a prefix's queue and clears its breaker, if the breaker is this key's (not a manual pause). */
async function releasePrefix(prefix: PrefixHandle, accountId: string): Promise<void> {
  const [reason, account] = await prefix.redis.hmget(prefix.keys.keyBreaker(), 'reason', 'account');
  if (reason !== 'key_breaker' || account !== accountId) return;
  await prefix.redis.del(prefix.keys.keyBreaker());
  await withQueue(prefix, (queue) => queue.resume());
  await bumpEpoch(prefix);
}

async function withQueue(
  prefix: PrefixHandle,
  act: (queue: Runtime['requests']) => Promise<void>,
): Promise<void> {
  if (prefix.requests) return act(prefix.requests);
  // Another runner's queue: the shared connection is not closed with it (BullMQ leaves a
  // connection it was given open).
  const queue = new Queue<RequestJobData>(REQUESTS_QUEUE, {
    connection: prefix.redis,
    prefix: prefix.keys.bullPrefix,
  });
  queue.on('error', () => {});
  try {
    await act(queue);
  } finally {
    await queue.close();
  }
}

/**
 * Notes that this prefix's workers use the API key (fingerprint `accountId`): the key's trips
 * pause this prefix from now on, and commands run here without the key find the key's record. If
 * the key is tripped right now, the prefix is paused at once (a runner started during an outage).
 * Returns whether it was.
 */
export async function registerAccount(runtime: Runtime, accountId: string): Promise<boolean> {
  await runtime.redis.sadd(runtime.keys.accounts(), accountId);
  await runtime.redis.sadd(accountPrefixesKey(accountId), runtime.keys.bullPrefix);
  return adoptAccountBreaker(runtime, accountId);
}

/**
 * Brings this prefix in line with the key-level breaker of `accountId`: paused with a copy of it
 * while it is recorded; released when the prefix holds a copy of a trip the key no longer has (the
 * fix ran under another prefix while this one was not registered yet, or its release died
 * midway). Called when a worker registers and on the workers' gate refresh, as a safety net under
 * the direct pause and release. Returns whether the key is tripped.
 */
export async function adoptAccountBreaker(runtime: Runtime, accountId: string): Promise<boolean> {
  const record = await runtime.redis.hgetall(accountBreakerKey(accountId));
  const own = { redis: runtime.redis, keys: runtime.keys, requests: runtime.requests };
  if (record['trip']) {
    const [reason] = await runtime.redis.hmget(runtime.keys.keyBreaker(), 'reason');
    if (reason !== 'key_breaker') await pausePrefix(own, { ...record, account: accountId });
    return true;
  }
  const [reason, account, trip] = await runtime.redis.hmget(
    runtime.keys.keyBreaker(),
    'reason',
    'account',
    'trip',
  );
  if (reason === 'key_breaker' && account === accountId && trip) await releasePrefix(own, accountId);
  return false;
}

/** Pauses the queue by hand (`claude-batch pause`), recorded like a breaker so status says why. */
export async function pauseQueue(runtime: Runtime): Promise<void> {
  await TRIP_KEY_BREAKER.run(
    runtime.redis,
    [runtime.keys.keyBreaker()],
    [
      'type',
      'manual',
      'reason',
      'manual',
      'message',
      'paused by `claude-batch pause`',
      'since',
      new Date().toISOString(),
      'fix',
      'run `claude-batch resume`',
      'request_id',
      '',
      'error_code',
      '',
    ],
  );
  await runtime.requests.pause();
  await bumpEpoch(runtime);
}

/**
 * Resumes the queue and clears the key-wide breaker or manual pause. The key-level breakers of the
 * API keys used under this prefix are cleared too, and every other prefix they paused is resumed:
 * the fix is the key's, wherever it is run.
 */
export async function resumeQueue(runtime: Runtime): Promise<boolean> {
  const wasPaused = await runtime.requests.isPaused();
  const since = Date.parse((await runtime.redis.hget(runtime.keys.keyBreaker(), 'since')) ?? '');
  for (const accountId of await runtime.redis.smembers(runtime.keys.accounts())) {
    // The key's record goes first: a prefix that registers meanwhile does not adopt it again.
    await runtime.redis.del(accountBreakerKey(accountId));
    for (const prefix of await runtime.redis.smembers(accountPrefixesKey(accountId))) {
      if (prefix !== runtime.keys.bullPrefix) {
        await releasePrefix({ redis: runtime.redis, keys: new KeyLayout(prefix) }, accountId);
      }
    }
  }
  // Paused longer than an auto-cached prefix's cache TTL: one request per model writes it again
  // before the rest of its held requests go (src/queue/rewarm.ts). Those already in the queue when
  // it paused (a moment's work) go at once and miss the cache.
  if (wasPaused && Number.isFinite(since)) {
    for (const batchId of await runtime.store.list()) await rewarmAfterPause(runtime, batchId, since);
  }
  await runtime.requests.resume();
  await runtime.redis.del(runtime.keys.keyBreaker());
  await bumpEpoch(runtime);
  return wasPaused;
}

function pairsToRecord(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
  return out;
}

/**
 * Counts a model-wide failure (not_found_error, permission_error); at `threshold` consecutive
 * ones the model's breaker opens and its remaining requests are dead-lettered unsent.
 */
export async function countModelFailure(
  runtime: Runtime,
  model: string,
  error: LastError,
  rule: ErrorRule,
  threshold: number,
  alert: Alerter,
): Promise<ModelBreakerState | null> {
  const state: ModelBreakerState = {
    model,
    type: error.type,
    condition: rule.condition,
    message: error.message,
    request_id: error.request_id,
    since: new Date().toISOString(),
    fix: rule.fix,
  };
  const opened =
    Number(
      await COUNT_MODEL_FAILURE.run(
        runtime.redis,
        [runtime.keys.modelFailures(), runtime.keys.modelBreakers()],
        [model, threshold, JSON.stringify(state)],
      ),
    ) === 1;
  if (!opened) return null;
  await bumpEpoch(runtime);
  void alert({
    event: 'model_breaker_tripped',
    ...state,
    condition: state.condition ?? null,
    prefix: runtime.keys.bullPrefix,
  });
  return state;
}

/** Closes model breakers (after `dlq retry`), so the models' requests are sent again. */
export async function closeModelBreakers(runtime: Runtime, models: readonly string[]): Promise<void> {
  if (models.length === 0) return;
  await runtime.redis
    .multi()
    .hdel(runtime.keys.modelBreakers(), ...models)
    .hdel(runtime.keys.modelFailures(), ...models)
    .exec();
  await bumpEpoch(runtime);
}
