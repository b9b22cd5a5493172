import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { releaseCanary } from '../../../src/queue/canary.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

const HAIKU = 'claude-haiku-4-5';
const SONNET = 'claude-sonnet-4-5';

let runtime: Runtime;

beforeEach(async () => {
  runtime = await testRuntime('canary-release');
});

afterEach(async () => {
  await disposeRuntime(runtime);
});

describe('canary release', () => {
  it('two models released at overlapping moments: every held request is released, none skipped', async () => {
    // Models alternate in the input, so their held jobs interleave in BullMQ's delayed set: the
    // release of one removes entries between those of the other.
    const N = 3_000;
    const requests = Array.from({ length: N }, (_, i) =>
      request(`r${i}`, `Held question ${i}`, { model: i % 2 === 0 ? HAIKU : SONNET }),
    );
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests) });
    const before = await runtime.requests.getJobCounts('wait', 'delayed');
    expect(before).toEqual({ wait: 2, delayed: N - 2 });

    const first = releaseCanary(runtime, batchId, HAIKU);
    // The second release starts once the first is promoting (its model leaving the delayed set).
    await expect
      .poll(async () => (await runtime.requests.getJobCounts('wait'))['wait'], {
        timeout: 30_000,
        interval: 5,
      })
      .toBeGreaterThan(2);
    const second = releaseCanary(runtime, batchId, SONNET);
    const [a, b] = await Promise.all([first, second]);

    expect(a + b).toBe(N - 2);
    expect(await runtime.requests.getJobCounts('wait', 'delayed')).toEqual({ wait: N, delayed: 0 });
    // Released again (a resubmit, the reconciler): nothing more to do, and no hold left behind.
    expect(await releaseCanary(runtime, batchId, HAIKU)).toBe(0);
    expect(await runtime.redis.exists(runtime.keys.holds(batchId))).toBe(0);
  }, 120_000);
});
