import { afterEach, describe, expect, it } from 'vitest';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { BatchRecord } from '../../../src/store/batch-record.js';
import { jsonlSource, request, resultsById, type TestRequest } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const MODEL = 'claude-sonnet-4-6';

let rig: WorkerRig | undefined;

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/**
 * 10,000 requests: plain ones, a few the API refuses (their own fault), a few it is overloaded for
 * once (retried). The same file either way.
 */
function file(): TestRequest[] {
  const plain = Array.from({ length: 9_990 }, (_, i) =>
    request(`p-${i}`, `Item ${i}: say something.`, { model: MODEL }),
  );
  const bad = Array.from({ length: 5 }, (_, i) =>
    request(`bad-${i}`, `Bad ${i} @@fault:invalid_request_error@@`, { model: MODEL }),
  );
  const busy = Array.from({ length: 5 }, (_, i) =>
    request(`busy-${i}`, `Busy ${i} @@fault:overloaded_error:1@@`, { model: MODEL }),
  );
  return [...plain, ...bad, ...busy];
}

async function run(
  name: string,
  via: 'live' | 'batches',
): Promise<{ types: Map<string, string>; record: BatchRecord; cost: number }> {
  rig = await WorkerRig.start({
    name,
    emulator: { batchesStartDelayMs: 0, batchesProcessingMs: 0 },
    overrides: { hostedPollMs: '100', hostedPollMaxMs: '500', concurrency: '32' },
  });
  const submitted = await submitBatch(rig.runtime, { input: jsonlSource(file()), via });
  await rig.startWorker();
  await waitForBatch(rig.runtime, submitted.batchId, { pollMs: 200, signal: AbortSignal.timeout(150_000) });
  const lines: string[] = [];
  for await (const line of rig.runtime.store.results(submitted.batchId)) lines.push(line);
  const types = new Map([...resultsById(lines)].map(([id, r]) => [id, r.type]));
  const record = (await rig.runtime.store.get(submitted.batchId))!;
  // The cost `status` shows: list prices frozen at submit, the hosted answers at half.
  const cost = (await getBatchStatus(rig.runtime, submitted.batchId))!.estimated_cost.usd!;
  await rig.close();
  rig = undefined;
  return { types, record, cost };
}

describe('issue 14 acceptance: the same 10,000-request file live and --via batches', () => {
  it('gives the same custom_ids and result types, at half the cost', async () => {
    const live = await run('accept-live', 'live');
    const hosted = await run('accept-hosted', 'batches');
    expect(live.types.size).toBe(10_000);
    expect(hosted.types).toEqual(live.types);
    expect([...live.types.values()].filter((t) => t === 'errored')).toHaveLength(5);
    expect(hosted.record.served).toEqual({ live: 1, hosted: 9_999 });
    expect(live.record.served.hosted).toBe(0);
    // The canary went live at full price; the other 9,999 at half.
    const ratio = hosted.cost / live.cost;
    expect(ratio).toBeGreaterThanOrEqual(0.5);
    expect(ratio).toBeLessThan(0.501);
  }, 300_000);
});
