import { DelayedError, type Job } from 'bullmq';
import { LuaScript } from '../redis/lua-script.js';
import type { Runtime } from '../runtime.js';
import { SHARE_REASON } from './holds.js';
import { REQUESTS_QUEUE, type RequestJobData } from './jobs.js';

/**
 * Turns an active job this worker holds back into a request held for its batch's share, in one
 * step: the entry is written and the job removed (its hash, lock and logs, and its ids in the
 * active list and the stalled set) only while this worker's lock token is the job's, so the
 * request is in one lawful place at every instant (held, or queued) and never in neither.
 * KEYS: job, lock, active list, stalled set, logs, share hash, the batch's holds, share batches.
 * ARGV: token, job id, job data (JSON), batch id, share reason.
 * Returns 1 when parked, 0 when the lock was not this worker's (another worker has the job).
 */
const PARK = new LuaScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[6], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[7], ARGV[5])
redis.call('SADD', KEYS[8], ARGV[4])
redis.call('LREM', KEYS[3], 1, ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
return 1
`);

/**
 * Parks a request of a paused batch (its cost ceiling reached) back among the batch's held
 * requests, unsent and with no attempt spent, through the one hold-and-release mechanism: the
 * dispatcher does not dispatch a paused batch, and dispatches it again, in turn with the others,
 * once `resume BATCH` lifts the pause. No one-second re-delays. Its job data is kept as it is (a
 * retry's calls and first send time with it). Throws BullMQ's DelayedError, which tells the worker
 * the job was moved on by its processor (here: removed), so that it fetches the next one.
 */
export async function parkRequest(
  runtime: Runtime,
  job: Job<RequestJobData>,
  token: string | undefined,
): Promise<never> {
  const { redis, keys } = runtime;
  if (job.id !== undefined && token !== undefined) {
    const queue = `${keys.bullPrefix}:${REQUESTS_QUEUE}`;
    const jobKey = `${queue}:${job.id}`;
    const batchId = job.data.batch_id;
    await PARK.run(
      redis,
      [
        jobKey,
        `${jobKey}:lock`,
        `${queue}:active`,
        `${queue}:stalled`,
        `${jobKey}:logs`,
        keys.held(batchId, SHARE_REASON),
        keys.holds(batchId),
        keys.shareBatches(),
      ],
      [token, job.id, JSON.stringify(job.data), batchId, SHARE_REASON],
    );
  }
  throw new DelayedError();
}
