import { setTimeout as sleep } from 'node:timers/promises';
import type { Runtime } from '../runtime.js';
import { getBatchStatus, type BatchStatus } from './batch-status.js';

export interface WaitOptions {
  /** How often to look (ms). Default 500. */
  pollMs?: number;
  /** Called with each status read, for progress displays. */
  onStatus?: (status: BatchStatus) => void;
  signal?: AbortSignal;
}

/** Resolves with the final status once every request of the batch has its results line. */
export async function waitForBatch(
  runtime: Runtime,
  batchId: string,
  options: WaitOptions = {},
): Promise<BatchStatus> {
  for (;;) {
    const status = await getBatchStatus(runtime, batchId);
    if (!status) throw new Error(`no batch ${batchId} under prefix ${runtime.keys.bullPrefix}`);
    options.onStatus?.(status);
    if (status.processing_status === 'ended') return status;
    await sleep(options.pollMs ?? 500, undefined, { signal: options.signal });
  }
}
