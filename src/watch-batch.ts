import { setTimeout as sleep } from 'node:timers/promises';
import { BatchNotFoundError } from './errors/batch-not-found-error.js';
import type { Runtime } from './runtime.js';
import { getBatchStatus, type BatchPause, type BatchStatus } from './operations/batch-status.js';

/**
 * What {@link watchBatch} yields. Every event carries the status it was derived from.
 * - `progress`: first, with the status as it stands (even if the batch has already ended), and
 *   then whenever the counts or the processing status change.
 * - `paused`: the queue was paused (a key-wide breaker such as a wrong key or an empty balance,
 *   or `claude-batch pause`: `scope: 'queue'`), or the batch alone (`scope: 'batch'`: its cost
 *   ceiling reached, or a hosted chunk held for an operator, `hosted_chunk_held`); `reason` is the
 *   first of `status.paused`: why, and what to do. The batch cannot end until every pause is lifted.
 * - `resumed`: the batch runs again after a `paused` event.
 * - `ended`: every request has its results line; the last event.
 */
export type BatchEvent =
  | { type: 'progress'; status: BatchStatus }
  | { type: 'paused'; status: BatchStatus; reason: BatchPause }
  | { type: 'resumed'; status: BatchStatus }
  | { type: 'ended'; status: BatchStatus };

export interface WatchBatchOptions {
  /** How often the batch's status is read from Redis, in ms (a few O(1) commands). Default 500. */
  intervalMs?: number | undefined;
  /** Ends the iteration: the pending `next()` rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal | undefined;
}

/** The part of a status whose change is worth a `progress` event. */
function progressKey(status: BatchStatus): string {
  return JSON.stringify([status.processing_status, status.request_counts, status.submit_state]);
}

/**
 * The events of one batch as an async iterator, for scripts that show their own progress or act
 * on a pause, without reading the status themselves:
 *
 * ```ts
 * for await (const event of watchBatch(runtime, batchId)) {
 *   if (event.type === 'paused') console.error(`paused: ${event.reason.message}; ${event.reason.fix}`);
 * }
 * ```
 *
 * The iteration ends after `ended`; leaving the loop early (`break`) or aborting the signal stops
 * the reads. Rejects with {@link BatchNotFoundError} if the batch does not exist.
 */
export async function* watchBatch(
  runtime: Runtime,
  batchId: string,
  options: WatchBatchOptions = {},
): AsyncGenerator<BatchEvent, void, undefined> {
  const intervalMs = options.intervalMs ?? 500;
  let lastKey: string | undefined;
  let paused = false;
  for (;;) {
    options.signal?.throwIfAborted();
    const status = await getBatchStatus(runtime, batchId);
    if (!status) throw new BatchNotFoundError(batchId, runtime.keys.bullPrefix);
    const key = progressKey(status);
    // The first event is always `progress`, even for a batch that has already ended, so a
    // progress display always has a first state to show.
    if (key !== lastKey && (lastKey === undefined || status.processing_status !== 'ended')) {
      yield { type: 'progress', status };
    }
    lastKey = key;
    if (status.processing_status === 'ended') {
      yield { type: 'ended', status };
      return;
    }
    // From the queue's pause state, not processing_status: a batch canceled while paused is
    // `canceling`, yet its queue is still paused.
    const [reason] = status.paused;
    if (reason && !paused) yield { type: 'paused', status, reason };
    else if (!reason && paused) yield { type: 'resumed', status };
    paused = reason !== undefined;
    await sleep(intervalMs, undefined, { signal: options.signal });
  }
}
