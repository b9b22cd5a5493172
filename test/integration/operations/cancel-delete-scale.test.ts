import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../../src/devtools/private-redis.js';
import { cancelBatch } from '../../../src/operations/cancel-batch.js';
import { deleteBatch } from '../../../src/operations/delete-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { testRuntime } from '../../helpers/runtime.js';

/**
 * Issue 13, finding 10: cancel and delete removed jobs one by one from the shared wait list (an
 * LREM, a scan of the list, per job), so their cost grew with the square of the batch. Here, on a
 * private Redis whose CPU time is read from /proc (10 ms ticks), they must cost about what
 * submitting the batch cost. Since issue 16 a submitted request is a hash entry, not a BullMQ job,
 * and submit costs about a third of what it did; a cancel still writes a line per request. So:
 * at most 1.5 times the submit, plus a tick each side (measured: 0.8 to 1.1 times). A cost that
 * grew with the square of the batch would be hundreds of times the submit's at this size.
 */
const AT_MOST = (submitMs: number) => submitMs * 1.5 + 20;
const N = 20_000;

let redis: PrivateRedis;
let runtime: Runtime;

beforeAll(async () => {
  redis = await startPrivateRedis();
  runtime = await testRuntime('scale', {}, undefined, { REDIS_URL: redis.url });
});

afterAll(async () => {
  await runtime?.close();
  await redis?.stop({ removeDir: true });
});

async function measured<T>(run: () => Promise<T>): Promise<{ value: T; cpuMs: number }> {
  const before = await redis.cpuMs();
  const value = await run();
  return { value, cpuMs: (await redis.cpuMs()) - before };
}

async function lremCalls(): Promise<number> {
  const stats = await runtime.redis.info('commandstats');
  return Number(/cmdstat_lrem:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

function requests(tag: string) {
  return Array.from({ length: N }, (_, i) => request(`${tag}${i}`, `Scale ${tag} ${i}?`));
}

const requestKeys = (batchId: string) =>
  runtime.redis.keys(`${runtime.keys.bullPrefix}:requests:${batchId}.*`).then((k) => k.length);

describe(`cancel and delete of a ${N}-request batch cost about what its submit cost`, () => {
  it('cancel: every request canceled, its jobs dropped, no scan of the wait list per job', async () => {
    const submit = await measured(() =>
      submitBatch(runtime, { input: jsonlSource(requests('c')), canary: false }),
    );
    const { batchId } = submit.value;
    const lrem = await lremCalls();
    const cancel = await measured(() => cancelBatch(runtime, batchId));
    expect(cancel.value).toEqual({ existed: true, canceled: N, inFlight: 0 });
    expect(await lremCalls()).toBe(lrem);
    expect(cancel.cpuMs, `Redis CPU ms of cancel (submit: ${submit.cpuMs})`).toBeLessThan(
      AT_MOST(submit.cpuMs),
    );
    const status = await getBatchStatus(runtime, batchId);
    expect(status).toMatchObject({ processing_status: 'ended' });
    expect(status?.request_counts).toMatchObject({ canceled: N, processing: 0 });
    // Its jobs were at the head of the FIFO: dropped at once, not left for N job turns.
    expect(await runtime.redis.llen(`${runtime.keys.bullPrefix}:requests:wait`)).toBe(0);
    expect(await requestKeys(batchId)).toBe(0);
  });

  it('delete with the canary on (the rest held behind it): everything gone, no scan per job', async () => {
    const submit = await measured(() => submitBatch(runtime, { input: jsonlSource(requests('d')) }));
    const { batchId } = submit.value;
    const lrem = await lremCalls();
    const removal = await measured(() => deleteBatch(runtime, batchId));
    expect(removal.value).toEqual({ existed: true, removedRequests: N, removedDeadLetters: 0 });
    expect(await lremCalls()).toBe(lrem);
    expect(removal.cpuMs, `Redis CPU ms of delete (submit: ${submit.cpuMs})`).toBeLessThan(
      AT_MOST(submit.cpuMs),
    );
    expect(await getBatchStatus(runtime, batchId)).toBeNull();
    expect(await runtime.redis.zcard(`${runtime.keys.bullPrefix}:requests:delayed`)).toBe(0);
    expect(await runtime.redis.llen(`${runtime.keys.bullPrefix}:requests:wait`)).toBe(0);
    expect(await requestKeys(batchId)).toBe(0);
    expect(await runtime.redis.keys(`${runtime.keys.bullPrefix}:cb:batch:${batchId}*`)).toEqual([]);
  });
});
