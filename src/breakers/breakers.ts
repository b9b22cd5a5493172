import type { ErrorRule } from '../errors/error-table.js';
import { bumpEpoch } from '../queue/epoch.js';
import type { LastError } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
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
 * Pauses the main queue for every worker and records why. Idempotent: a second trip while paused
 * changes nothing and raises no second alert.
 */
export async function tripKeyBreaker(
  runtime: Runtime,
  error: LastError & { errorCode?: string | null },
  rule: ErrorRule,
  alert: Alerter,
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
  const tripped =
    Number(
      await TRIP_KEY_BREAKER.run(
        runtime.redis,
        [runtime.keys.keyBreaker()],
        Object.entries({
          ...state,
          error_code: state.error_code ?? '',
          condition: state.condition ?? '',
          request_id: state.request_id ?? '',
          reason: 'key_breaker',
        }).flat(),
      ),
    ) === 1;
  // Pause even when the record existed: a crash between the two steps must not leave it running.
  await runtime.requests.pause();
  await bumpEpoch(runtime);
  if (tripped) {
    void alert({ event: 'key_breaker_tripped', ...state, prefix: runtime.keys.bullPrefix });
  }
  return tripped;
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

/** Resumes the queue and clears the key-wide breaker or manual pause. */
export async function resumeQueue(runtime: Runtime): Promise<boolean> {
  const wasPaused = await runtime.requests.isPaused();
  await runtime.requests.resume();
  await runtime.redis.del(runtime.keys.keyBreaker());
  await bumpEpoch(runtime);
  return wasPaused;
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
