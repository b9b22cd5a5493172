import { afterEach, describe, expect, it } from 'vitest';
import { Chunks } from '../../../src/hosted/chunks.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request, resultsById, type TestRequest } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

/** A current model (older ones draw SDK deprecation warnings). */
const MODEL = 'claude-sonnet-4-6';

let rig: WorkerRig | undefined;

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function requests(n: number, prefix = 'q'): TestRequest[] {
  return Array.from({ length: n }, (_, i) =>
    request(`${prefix}-${i}`, `Question ${prefix} ${i}?`, { model: MODEL }),
  );
}

async function lines(batchId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of rig!.runtime.store.results(batchId)) out.push(line);
  return out;
}

describe('--via batches', () => {
  it('sends the canary live and the rest in hosted batches split by count; one line per request', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-split',
      emulator: { batchesStartDelayMs: 0, batchesProcessingMs: 1 },
      overrides: { hostedPollMs: '50', hostedPollMaxMs: '200', hostedMaxRequests: '100' },
    });
    const all = requests(301);
    const submitted = await submitBatch(rig.runtime, { input: jsonlSource(all), via: 'batches' });
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 301, processing: 0, errored: 0 });
    const results = resultsById(await lines(submitted.batchId));
    expect(results.size).toBe(301);
    for (const q of all) expect(results.get(q.custom_id)?.type).toBe('succeeded');
    // The canary went live; the other 300 in hosted batches of at most 100.
    const stats = rig.emulator.control.stats();
    expect(stats.hostedBatches.created).toBe(3);
    const record = await rig.runtime.store.get(submitted.batchId);
    expect(record?.served).toEqual({ live: 1, hosted: 300 });
    expect(record?.usage_hosted.output_tokens).toBeGreaterThan(0);
    const chunks = await new Chunks(rig.runtime).all(submitted.batchId);
    expect(chunks.map((c) => [c.state, c.count])).toEqual([
      ['done', 100],
      ['done', 100],
      ['done', 100],
    ]);
  }, 90_000);
});
