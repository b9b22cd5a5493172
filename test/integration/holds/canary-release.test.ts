import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canaryField, releaseCanary } from '../../../src/queue/canary.js';
import { SHARE_REASON } from '../../../src/queue/holds.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { dispatchAll } from '../../helpers/dispatch.js';

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
  it('two models released at overlapping moments: every held request is released to the share, none skipped', async () => {
    // Models alternate in the input, and the two releases move entries into the same share at
    // once: neither may lose or skip any of the other's.
    const N = 3_000;
    const requests = Array.from({ length: N }, (_, i) =>
      request(`r${i}`, `Held question ${i}`, { model: i % 2 === 0 ? HAIKU : SONNET }),
    );
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests) });
    // The canaries are jobs; the rest are held, behind their model's canary, and not jobs yet.
    expect(await runtime.requests.getJobCounts('wait', 'delayed')).toEqual({ wait: 2, delayed: 0 });
    const behind = (model: string) => runtime.redis.hlen(runtime.keys.held(batchId, canaryField(model)));
    expect([await behind(HAIKU), await behind(SONNET)]).toEqual([N / 2 - 1, N / 2 - 1]);

    const share = runtime.keys.held(batchId, SHARE_REASON);
    const first = releaseCanary(runtime, batchId, HAIKU);
    // The second release starts once the first is moving its model's requests to the share.
    await expect.poll(() => runtime.redis.hlen(share), { timeout: 30_000, interval: 5 }).toBeGreaterThan(0);
    const second = releaseCanary(runtime, batchId, SONNET);
    const [a, b] = await Promise.all([first, second]);

    expect(a + b).toBe(N - 2);
    // Released to the batch's share, still held: the dispatcher sends them in the batch's turn.
    expect(await runtime.redis.hlen(share)).toBe(N - 2);
    expect([await behind(HAIKU), await behind(SONNET)]).toEqual([0, 0]);
    expect(await runtime.requests.getJobCounts('wait', 'delayed')).toEqual({ wait: 2, delayed: 0 });
    expect(await runtime.redis.smembers(runtime.keys.holds(batchId))).toEqual([SHARE_REASON]);
    expect(await runtime.redis.sismember(runtime.keys.shareBatches(), batchId)).toBe(1);
    // Released again (a resubmit, the reconciler): nothing more to do.
    expect(await releaseCanary(runtime, batchId, HAIKU)).toBe(0);
    expect(await dispatchAll(runtime, batchId)).toBe(N - 2);
    expect(await runtime.requests.getJobCounts('wait', 'delayed')).toEqual({ wait: N, delayed: 0 });
  }, 120_000);
});
