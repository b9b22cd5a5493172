/**
 * Never pay twice because of our own write failure: a call succeeds, then Redis refuses the
 * result write for a while (out of memory under `noeviction`, as a full Redis answers); the worker
 * keeps the answer, retries the write, and the request is sent once (counted at the emulator).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { startPrivateRedis, type PrivateRedis } from '../../../src/devtools/private-redis.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;
let redis: PrivateRedis | undefined;
let admin: Redis | undefined;
afterEach(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await rig?.close();
  await redis?.stop({ removeDir: true });
  rig = undefined;
  redis = undefined;
  admin = undefined;
});

describe('a result write that Redis refuses for a while', () => {
  it('is retried with the answer kept: one API call, one result', async () => {
    redis = await startPrivateRedis({ args: ['--maxmemory-policy', 'noeviction'] });
    admin = new Redis(redis.url);
    rig = await WorkerRig.start({
      name: 'write-retry',
      redisUrl: redis.url,
      // Slow enough to refuse writes while the call is in flight; a lock long enough to retry in.
      emulator: { latency: { fixedMs: 1_500 } },
      overrides: { lockDurationMs: '20000', stalledIntervalMs: '20000' },
    });
    const requests = [request('only', 'Remember me?')];
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests), canary: false });
    const worker = await rig.startWorker();
    await vi.waitFor(() => expect(worker.activeCount).toBe(1), { timeout: 10_000, interval: 20 });

    // Redis refuses every write from now on, as a full Redis under noeviction does.
    await admin.config('SET', 'maxmemory', '1');
    await vi.waitFor(
      () =>
        expect(
          rig!.logger.lines.some((l) => l['msg']?.toString().startsWith('could not record an outcome')),
        ).toBe(true),
      { timeout: 15_000, interval: 50 },
    );
    expect(rig.emulator.control.log().filter((e) => e.status === 200)).toHaveLength(1);
    await admin.config('SET', 'maxmemory', '0');

    const final = await waitForBatch(rig.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 1, errored: 0 });
    await rig.expectAllSucceededOnce(batchId, requests);
    expect(rig.emulator.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(1);
    expect(rig.logger.lines.some((l) => l['msg'] === 'outcome recorded after Redis recovered')).toBe(true);
  }, 60_000);
});
