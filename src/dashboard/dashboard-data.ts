import type { Queue } from 'bullmq';
import { getBreakerState, type BreakerState } from '../breakers/breaker-state.js';
import { Holds } from '../queue/holds.js';
import { DEAD_LETTER_QUEUE, REQUESTS_QUEUE } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import {
  concurrencyCaps,
  workerSizes,
  listBatchStatuses,
  type BatchStatus,
  type ConcurrencyCapStatus,
  type WorkerSizeStatus,
} from '../operations/batch-status.js';

/**
 * Job counts of one BullMQ queue by state (BullMQ's `getJobCounts()`: active, completed, delayed,
 * failed, prioritized, waiting, waiting-children), and whether it is paused (BullMQ 6 keeps a paused
 * queue's jobs in `waiting`).
 */
export interface QueueSnapshot {
  name: string;
  paused: boolean;
  counts: Record<string, number>;
}

/** Everything the batch page shows, read at once. */
export interface DashboardSnapshot {
  /** RFC 3339. */
  at: string;
  batches: BatchStatus[];
  breakers: BreakerState;
  queues: { requests: QueueSnapshot; deadLetters: QueueSnapshot };
  /** The in-flight caps learned for the API keys used under the prefix. */
  concurrency: ConcurrencyCapStatus[];
  /** The worker processes that reported lately, with their in-flight sizing. */
  workers: WorkerSizeStatus[];
  /**
   * Requests of the batches not ended that are held, not jobs yet (behind a model's canary, or
   * waiting for their batch's turn): Bull Board shows only what was dispatched.
   */
  held: number;
}

async function queueSnapshot(queue: Queue, name: string): Promise<QueueSnapshot> {
  const [counts, paused] = await Promise.all([queue.getJobCounts(), queue.isPaused()]);
  return { name, paused, counts };
}

export async function readSnapshot(runtime: Runtime): Promise<DashboardSnapshot> {
  const [batches, breakers, requests, deadLetters, concurrency, workers] = await Promise.all([
    listBatchStatuses(runtime),
    getBreakerState(runtime),
    queueSnapshot(runtime.requests as Queue, REQUESTS_QUEUE),
    queueSnapshot(runtime.deadLetters as Queue, DEAD_LETTER_QUEUE),
    concurrencyCaps(runtime),
    workerSizes(runtime),
  ]);
  const open = batches.filter((b) => b.processing_status !== 'ended').map((b) => b.id);
  return {
    at: new Date().toISOString(),
    batches,
    breakers,
    queues: { requests, deadLetters },
    concurrency,
    workers,
    held: await new Holds(runtime).heldOf(open),
  };
}
