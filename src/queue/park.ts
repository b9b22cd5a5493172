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
 * batch's share set: moved first, then recorded, so a dispatcher that sees the member finds the job
 * delayed (a crash in between leaves a delayed job that is in no set: the reconciler's business,
 * and due by itself after HOLD_MS). Throws BullMQ's DelayedError, as the processor must.
 */
export async function parkRequest(
  runtime: Runtime,
  job: Job<RequestJobData>,
  token: string | undefined,
): Promise<never> {
  await job.moveToDelayed(Date.now() + HOLD_MS, token);
  if (job.id !== undefined) await new Holds(runtime).record(job.data.batch_id, SHARE_REASON, [job.id]);
  throw new DelayedError();
}
