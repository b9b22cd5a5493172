import { setTimeout as sleep } from 'node:timers/promises';
import type { Runtime } from '../runtime.js';

/** Job states in which a request still waits to be worked on. */
const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/** Requests not yet ended in the main queue (all batches): waiting, in flight or delayed. */
export async function pendingRequests(runtime: Runtime): Promise<number> {
  const counts = await runtime.requests.getJobCounts(...PENDING_STATES);
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/**
 * Resolves once the main queue holds nothing pending, seen twice in a row (a retry moves a job
 * from active to delayed between two looks, and must not be mistaken for idleness).
 */
export async function waitUntilIdle(runtime: Runtime, pollMs = 500, signal?: AbortSignal): Promise<void> {
  let idleLooks = 0;
  while (idleLooks < 2) {
    await sleep(pollMs, undefined, { signal });
    idleLooks = (await pendingRequests(runtime)) === 0 ? idleLooks + 1 : 0;
  }
}
