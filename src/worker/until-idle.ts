import { setTimeout as sleep } from 'node:timers/promises';
import { heldOfPausedBatches } from '../queue/batch-pauses.js';
import { Chunks } from '../hosted/chunks.js';
import { Holds } from '../queue/holds.js';
import type { Runtime } from '../runtime.js';
import type { Reconciler, RepairKind } from './reconciler.js';

/**
 * Job states in which a request still waits to be worked on; `failed` too: a job BullMQ failed by
 * itself has no outcome until a worker's sweeper gives it one.
 */
const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;

/**
 * Why the work stopped: nothing left, or a paused queue (by `pause` or a breaker) with this much
 * left, or only requests of batches paused at their cost ceiling left (`paused` too).
 */
export type IdleReason = { kind: 'drained' } | { kind: 'paused'; pending: number };

/**
 * Resolves once there is nothing this worker could do: the main queue holds nothing pending and no
 * batch holds requests for the dispatcher to send, or the queue is paused with nothing in flight.
 * Each is seen twice in a row, since a retry moves a job from active to delayed between two looks
 * and must not be mistaken for idleness.
 */
export async function waitUntilIdle(
  runtime: Runtime,
  pollMs = 500,
  signal?: AbortSignal,
): Promise<IdleReason> {
  const holds = new Holds(runtime);
  const chunks = new Chunks(runtime);
  let looks = 0;
  let reason: IdleReason = { kind: 'drained' };
  while (looks < 2) {
    await sleep(pollMs, undefined, { signal });
    const [counts, paused, held, hosted] = await Promise.all([
      runtime.requests.getJobCounts(...PENDING_STATES),
      runtime.requests.isPaused(),
      holds.waitingForShare(),
      chunks.everywhere(),
    ]);
    // Held for the share of batches not paused on their own: the dispatcher (or the hosted
    // runner) will send them; in hosted batches: the hosted runner brings their results.
    const pending = Object.values(counts).reduce((sum, n) => sum + n, held + hosted.pending);
    const idle = pending === 0 || (paused && (counts['active'] ?? 0) === 0);
    reason = pending === 0 ? { kind: 'drained' } : { kind: 'paused', pending };
    looks = idle ? looks + 1 : 0;
  }
  // Requests held by a batch paused at its cost ceiling wait for `resume BATCH`, and those of a
  // hosted chunk held after an interrupted create for `hosted settle`: not for a worker.
  if (
    reason.kind === 'drained' &&
    (await heldOfPausedBatches(runtime)) === 0 &&
    (await chunks.everywhere()).held === 0
  ) {
    return reason;
  }
  // Paused: say how many requests wait, held behind a canary too (the queue holds only some).
  return { kind: 'paused', pending: await openRequests(runtime) };
}

/** Requests with no results line, over every batch: with nothing in flight, what waits. */
async function openRequests(runtime: Runtime): Promise<number> {
  const { redis, keys, store } = runtime;
  const ids = await store.list();
  if (ids.length === 0) return 0;
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(keys.batch(id), 'processing');
  const replies = (await pipeline.exec()) ?? [];
  return replies.reduce((sum, [, n]) => sum + Math.max(0, Number(n ?? 0)), 0);
}

/** Repairs that put work back in the queue: the worker has more to do after them. */
const REQUEUING: readonly RepairKind[] = ['requeued', 'failed_outcome', 'canary_released', 'held_released'];

/**
 * `worker --until-idle`: works until idle (see {@link waitUntilIdle}), then has the reconciler
 * examine every batch not ended, since nothing left in the queue can make them progress (a job
 * removed in Bull Board would otherwise leave `wait` hanging until some worker's next sweep);
 * goes on while that put work back in the queue.
 */
export async function workUntilIdle(
  runtime: Runtime,
  reconciler: Pick<Reconciler, 'sweep'>,
  pollMs = 500,
  signal?: AbortSignal,
): Promise<IdleReason> {
  for (;;) {
    const reason = await waitUntilIdle(runtime, pollMs, signal);
    if (reason.kind === 'paused') return reason;
    const report = await reconciler.sweep({ everyBatch: true });
    // Not run: another worker holds the lock (or a dead one, until it expires). While requests
    // are still held (behind a canary an operator removed, say), only a sweep sends them: wait for
    // one, another worker's or ours once the lock is free, instead of leaving them unsent.
    if (!report.ran && (await new Holds(runtime).waitingToSend()) > 0) {
      await sleep(pollMs, undefined, { signal });
      continue;
    }
    // Nothing requeued: done.
    if (!report.ran || !REQUEUING.some((kind) => (report.repairs[kind] ?? 0) > 0)) return reason;
  }
}
