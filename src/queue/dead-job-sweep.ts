import type { Runtime } from '../runtime.js';
import { LuaScript } from '../redis/lua-script.js';
import { runPaced } from '../redis/paced-steps.js';
import { REQUESTS_QUEUE } from './jobs.js';

/**
 * Pops the run of dead jobs off the tail of the requests' wait list (the end BullMQ takes the next
 * job from: moveToActive is an RPOPLPUSH) and deletes their job keys, stopping at the first live
 * one. A job is dead when its batch is gone (deleted, being deleted, or submitted again: the job's
 * incarnation is older), or when its batch is canceled and its generation already has a result
 * (the cancel wrote `canceled`), or when it is of a superseded generation of a canceled batch.
 * Such a job would only be completed without a call by a worker, one job turn each; this drops a
 * canceled or deleted 1M-request batch at the head of the FIFO in a few hundred calls instead.
 * Job ids are parsed as requestJobId (src/queue/jobs.ts) writes them; any other id stops the run.
 * KEYS: wait list. ARGV: job key prefix (`<prefix>:requests:`), batch key prefix (KeyLayout
 * batch('')), incarnations hash, max jobs to pop.
 * Returns the number popped.
 */
const SWEEP_DEAD_TAIL = new LuaScript(`
local waitKey, jobPrefix, batchPrefix, incarnations = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local max = tonumber(ARGV[4])
local batches = {}
local function batchState(batch)
  local st = batches[batch]
  if st == nil then
    local m = redis.call('HMGET', batchPrefix .. batch, 'id', 'canceled_at', 'deleted_at', 'incarnation')
    local inc = tonumber(m[4] or '0')
    local latest = tonumber(redis.call('HGET', incarnations, batch) or '0')
    st = { live = (m[1] ~= false and m[3] == false), canceled = (m[2] ~= false), inc = inc, latest = latest }
    batches[batch] = st
  end
  return st
end
local function dead(jobId)
  local batch, custom, gen, inc = string.match(jobId, '^([%w_-]+)%.([%w_-]+)%.(%d+)%.?(%d*)$')
  if not batch then return false end
  inc = tonumber(inc ~= '' and inc or '0')
  local st = batchState(batch)
  if not st.live or inc < st.latest or inc ~= st.inc then return true end
  if not st.canceled then return false end
  local current = redis.call('HGET', batchPrefix .. batch .. ':gen', custom) or '0'
  if current ~= gen then return true end
  return redis.call('HEXISTS', batchPrefix .. batch .. ':results', custom) == 1
end
local n = 0
while n < max do
  local jobId = redis.call('LINDEX', waitKey, -1)
  if not jobId or not dead(jobId) then break end
  redis.call('RPOP', waitKey)
  local jobKey = jobPrefix .. jobId
  redis.call('DEL', jobKey, jobKey .. ':logs')
  n = n + 1
end
return n
`);

/**
 * Jobs popped per call: each call holds Redis for a few milliseconds, and the calls are paced
 * (src/redis/paced-steps.ts), so the batches still running get their commands in between.
 */
const SWEEP_CHUNK = 500;

/**
 * Drops the dead jobs at the tail of the wait list, in paced chunks, until a live job (or nothing)
 * is at the tail. Returns how many were dropped. Safe to run from any number of processes.
 */
export async function sweepDeadJobs(runtime: Pick<Runtime, 'redis' | 'keys'>): Promise<number> {
  const { redis, keys } = runtime;
  const jobPrefix = `${keys.bullPrefix}:${REQUESTS_QUEUE}:`;
  let total = 0;
  await runPaced(async () => {
    const n = Number(
      await SWEEP_DEAD_TAIL.run(
        redis,
        [`${jobPrefix}wait`],
        [jobPrefix, keys.batch(''), keys.incarnations(), SWEEP_CHUNK],
      ),
    );
    total += n;
    return n === SWEEP_CHUNK;
  });
  return total;
}

/**
 * Runs {@link sweepDeadJobs} when a worker meets a dead job, at most one sweep at a time per
 * process: the first dead job of a canceled or deleted batch clears the run behind it.
 */
export class DeadJobSweeper {
  private running: Promise<void> | undefined;

  constructor(private readonly runtime: Runtime) {}

  kick(): void {
    this.running ??= sweepDeadJobs(this.runtime)
      .then(
        (dropped) => {
          if (dropped > 0) this.runtime.logger.debug('dropped dead jobs', { dropped });
        },
        (err: unknown) => {
          this.runtime.logger.warn('sweep of dead jobs failed', { error: String(err) });
        },
      )
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Waits for a sweep under way (tests, close). */
  async idle(): Promise<void> {
    await this.running;
  }
}
