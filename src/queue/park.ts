import { DelayedError, type Job } from 'bullmq';
import type { Runtime } from '../runtime.js';
import { HOLD_MS, Holds, SHARE_REASON } from './holds.js';
import type { RequestJobData } from './jobs.js';

/**
 * Parks a request of a paused batch (its cost ceiling reached) back among the batch's held
 * requests, unsent and with no attempt spent, through the one hold-and-release mechanism: the
 * dispatcher does not dispatch a paused batch, and dispatches it again, in turn with the others,
 * once `resume BATCH` lifts the pause. No one-second re-delays.
 *
 * Today a held request is a BullMQ delayed job due in {@link HOLD_MS} that is a member of the
 * batch's share set. Recorded before the move and again after it (SADD is idempotent): a crash
 * between the two leaves an active job whose lock expires, redelivered and parked again; and a
 * `resume BATCH` landing in between, whose dispatcher found the job still active and forgot the
 * member, finds it again. Throws BullMQ's DelayedError, as the processor must.
 */
export async function parkRequest(
  runtime: Runtime,
  job: Job<RequestJobData>,
  token: string | undefined,
): Promise<never> {
  const holds = new Holds(runtime);
  const record = () =>
    job.id === undefined ? Promise.resolve() : holds.record(job.data.batch_id, SHARE_REASON, [job.id]);
  await record();
  await job.moveToDelayed(Date.now() + HOLD_MS, token);
  await record();
  throw new DelayedError();
}
