import { setTimeout as sleep } from 'node:timers/promises';
import { BatchNotFoundError } from '../errors/batch-not-found-error.js';
import type { Runtime } from '../runtime.js';
import { getBatchStatus, type BatchStatus } from './batch-status.js';

export interface WaitOptions {
  /** How often the status is read (ms). Default 500. */
  pollMs?: number | undefined;
  /** Called with each status read, for progress displays. */
  onStatus?: ((status: BatchStatus) => void) | undefined;
  /** Stops waiting: the promise rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal | undefined;
}

/**
 * Resolves with the final status once every request of the batch has its results line. Rejects
 * with BatchNotFoundError if there is no such batch. See watchBatch for pauses and progress.
 */
export async function waitForBatch(
  runtime: Runtime,
  batchId: string,
  options: WaitOptions = {},
): Promise<BatchStatus> {
  for (;;) {
    const status = await getBatchStatus(runtime, batchId);
    if (!status) throw new BatchNotFoundError(batchId, runtime.keys.bullPrefix);
    options.onStatus?.(status);
    if (status.processing_status === 'ended') return status;
    await sleep(options.pollMs ?? 500, undefined, { signal: options.signal });
  }
}
