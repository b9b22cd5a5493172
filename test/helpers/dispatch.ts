import { Holds } from '../../src/queue/holds.js';
import type { Runtime } from '../../src/runtime.js';

/**
 * Promotes every request the batch holds for its share into the queue, as the workers' dispatcher
 * would over time: for tests that work the queue by hand (a foreign BullMQ worker, Bull Board's
 * operations) with no worker running. Returns how many were promoted.
 */
export async function dispatchAll(runtime: Runtime, batchId: string): Promise<number> {
  const holds = new Holds(runtime);
  let total = 0;
  for (;;) {
    const n = await holds.dispatch(batchId, 10_000);
    total += n;
    if (n === 0) return total;
  }
}
