import { STORM_RULE } from '../errors/error-table.js';
import { failureSignature } from '../errors/failure-signature.js';
import type { LastError } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import { LuaScript } from '../redis/lua-script.js';
import type { Alerter } from './alert.js';
import { tripKeyBreaker } from './breakers.js';

/**
 * Counts one terminal, request-scoped failure of an API key: one more in a row when its signature
 * is the last one's, else a new run of 1. At the threshold the run is recorded as tripped (for
 * `dlq retry --type storm`) and restarted, so a resumed queue needs a whole new run to pause again.
 * KEYS: storm hash. ARGV: fingerprint, signature, threshold. Returns the run's length (0 = tripped).
 */
const COUNT_STORM = new LuaScript(`
local sigField, countField = ARGV[1] .. ':sig', ARGV[1] .. ':count'
local n = 1
if redis.call('HGET', KEYS[1], sigField) == ARGV[2] then
  n = redis.call('HINCRBY', KEYS[1], countField, 1)
else
  redis.call('HSET', KEYS[1], sigField, ARGV[2], countField, 1)
end
if n >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1] .. ':tripped', ARGV[2], countField, 0)
  return 0
end
return n
`);

export interface StormOptions {
  /** The API key's fingerprint: the run is counted per key, across every worker. */
  accountId: string;
  /** Failures in a row that trip it; 0 turns it off. */
  threshold: number;
}

/**
 * Counts a terminal request-scoped failure towards a failure storm, and trips the key-wide
 * breaker (condition `storm`) when the run reaches the threshold. Returns whether this call
 * tripped it. A success of the key resets the run (in the finalize script).
 */
export async function countStormFailure(
  runtime: Runtime,
  storm: StormOptions,
  error: LastError,
  alert: Alerter,
  /** Called as soon as the run is known to trip it, before the pause is recorded: stop sending. */
  onTrip: () => void = () => {},
): Promise<boolean> {
  if (storm.threshold <= 0) return false;
  const signature = failureSignature(error);
  const run = Number(
    await COUNT_STORM.run(
      runtime.redis,
      [runtime.keys.storm()],
      [storm.accountId, signature, storm.threshold],
    ),
  );
  if (run !== 0) return false;
  onTrip();
  await tripKeyBreaker(
    runtime,
    {
      ...error,
      message: `${storm.threshold} requests in a row failed with ${error.status ?? 'no status'} ${error.type}: ${error.message}`,
    },
    STORM_RULE,
    alert,
    storm.accountId,
  );
  return true;
}

/** The signature that last tripped the storm breaker of any key under this prefix, if any. */
export async function trippedStormSignatures(runtime: Runtime): Promise<Set<string>> {
  const fields = await runtime.redis.hgetall(runtime.keys.storm());
  return new Set(
    Object.entries(fields)
      .filter(([field]) => field.endsWith(':tripped'))
      .map(([, signature]) => signature),
  );
}
