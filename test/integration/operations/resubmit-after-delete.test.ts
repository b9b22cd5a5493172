/**
 * Found by the soak (seed 7065): a worker that saw a batch deleted cached its id as gone; the batch
 * submitted again under that id (a new incarnation) had its jobs completed unsent as leftovers,
 * until the reconciler put them back. Creating a batch under a deleted id now bumps the send-time
 * epoch, so the worker reads the id again before judging its jobs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { deleteBatch } from '../../../src/operations/delete-batch.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('a batch submitted again after its delete', () => {
  it('is worked by a worker that saw the delete, with nothing for the reconciler to repair', async () => {
    const r = (rig = await WorkerRig.start({
      name: 'resubmit-deleted',
      overrides: { concurrency: '4', reconcileIntervalMs: '1000', reconcileStallMs: '1000' },
    }));
    await r.startWorker();
    const first = Array.from({ length: 5 }, (_, i) => request(`r${i}`, `first ${i}`));
    await submitBatch(r.runtime, { input: jsonlSource(first), batchId: 'again', canary: false });
    await deleteBatch(r.runtime, 'again');
    const second = Array.from({ length: 200 }, (_, i) =>
      request(`r${i}`, `second ${i}`, { model: i % 2 ? 'claude-sonnet-4-5' : 'claude-haiku-4-5' }),
    );
    await submitBatch(r.runtime, { input: jsonlSource(second), batchId: 'again' });
    const final = await waitForBatch(r.runtime, 'again', { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 200, errored: 0 });
    expect(final.reconciler.repaired).toEqual({});
    await r.expectAllSucceededOnce('again', second);
  }, 60_000);
});
