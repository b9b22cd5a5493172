/**
 * Issue 16, "the whole budget by default": by Little's law the requests in flight must be the
 * admitted rate times the latency, so a fixed 16 per process wastes most of a budget at real
 * latencies. The worker sizes its cap itself, between a floor and --concurrency (now 512): it
 * ramps while every slot is busy and the budget has room, and shrinks to what is really sending
 * while requests wait for the budget. Scaled down: 0.5-1 s latencies instead of 3-15 s.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatBatchStatus } from '../../../src/cli/format-status.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;
afterEach(async () => {
  // Also deletes the key's budget records (deletePrefix: the accounts its workers used).
  await rig?.close();
  rig = undefined;
});

const requests = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => request(`${tag}${i}`, `Sizing question ${tag} ${i}`));

describe('the in-flight cap sizes itself', () => {
  it('default --concurrency, 1 s latencies, budget with room: it ramps past 16 and finishes far sooner', async () => {
    const apiKey = `sk-test-sizing-${randomBytes(6).toString('hex')}`;
    rig = await WorkerRig.start({
      name: 'sizing-ramp',
      apiKey,
      emulator: { latency: { fixedMs: 1_000 } },
      // The default ceiling (the test helpers set 8 for everything else).
      overrides: { concurrency: '512' },
    });
    const { batchId } = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(400, 'r')),
      canary: false,
    });
    const started = performance.now();
    const worker = await rig.startWorker();
    await vi.waitFor(
      async () =>
        expect((await getBatchStatus(rig!.runtime, batchId))?.workers[0]?.limited_by).toBe('concurrency'),
      { timeout: 10_000, interval: 100 },
    );
    const final = await waitForBatch(rig.runtime, batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    const seconds = (performance.now() - started) / 1000;
    expect(final.request_counts).toMatchObject({ succeeded: 400, errored: 0 });
    // At a fixed 16 in flight: 400 / 16 x 1 s = 25 s. Ramping x1.25 a second: about 10 s.
    expect(seconds).toBeLessThan(17);
    expect(worker.sizer.concurrency).toBeGreaterThan(50);
    expect(rig.emulator.control.stats().byStatus['200']).toBe(400);
  }, 90_000);

  it('requests waiting for the budget: it shrinks to what the budget admits, and status says the budget limits', async () => {
    const apiKey = `sk-test-sizing-${randomBytes(6).toString('hex')}`;
    rig = await WorkerRig.start({
      name: 'sizing-budget',
      apiKey,
      emulator: { limits: { rpm: 300 }, latency: { fixedMs: 500 } },
      overrides: { concurrency: '512', rpm: '300' },
    });
    // 300 go at once (a full bucket), the rest at 5 a second: 2.5 in flight at 0.5 s each.
    const { batchId } = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(400, 'b')),
      canary: false,
    });
    const worker = await rig.startWorker();
    await vi.waitFor(
      async () => {
        const status = await getBatchStatus(rig!.runtime, batchId);
        expect(status?.workers[0]?.limited_by).toBe('budget');
        expect(worker.sizer.concurrency).toBeLessThanOrEqual(8);
        expect(formatBatchStatus(status!)).toMatch(
          /workers +1 taking up to \d+ requests at once \(ceiling 512, latency ~0\.5 s\): the rate budget is what limits/,
        );
      },
      { timeout: 40_000, interval: 200 },
    );
    const final = await waitForBatch(rig.runtime, batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(final.request_counts).toMatchObject({ succeeded: 400, errored: 0 });
    expect(rig.emulator.control.stats().byStatus['429'] ?? 0).toBe(0);
  }, 90_000);
});
