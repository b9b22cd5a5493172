import { UnrecoverableError, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { canaryField } from '../../../src/queue/canary.js';
import { REQUESTS_QUEUE, requestJobId, type RequestJobData } from '../../../src/queue/jobs.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { deadLetterEntry } from '../../../src/worker/apply-outcome.js';
import { LOST_ERROR_TYPE } from '../../../src/worker/reconciler.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { workUntilIdle } from '../../../src/worker/until-idle.js';
import { jsonlSource, request, resultsById } from '../../helpers/batch.js';
import { dispatchAll } from '../../helpers/dispatch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

let emulator: EmulatorHandle | undefined;
let runtime: Runtime | undefined;
let worker: ClaudeWorker | undefined;

afterEach(async () => {
  await worker?.close();
  if (runtime) await disposeRuntime(runtime);
  await emulator?.close();
  worker = runtime = emulator = undefined;
});

/** A sweep every second, on batches without progress for half a second. */
const RECONCILE = { reconcileIntervalMs: '1000', reconcileStallMs: '500' };

async function setUp(name: string, overrides: Record<string, string> = {}): Promise<Runtime> {
  emulator = await startEmulator({ seed: 21, latency: { fixedMs: 20 } });
  runtime = await testRuntime(name, { ...RECONCILE, ...overrides });
  return runtime;
}

async function work(r: Runtime): Promise<ClaudeWorker> {
  const apiKey = new Secret('sk-test-reconciler-key');
  worker = await startWorker(r, {
    apiKey,
    client: createClaudeClient({ apiKey, baseURL: emulator!.url, timeoutMs: 10_000 }),
  });
  return worker;
}

async function results(r: Runtime, batchId: string) {
  const lines: string[] = [];
  for await (const line of r.store.results(batchId)) lines.push(line);
  return resultsById(lines);
}

const ended = (r: Runtime, batchId: string) =>
  waitForBatch(r, batchId, { pollMs: 100, signal: AbortSignal.timeout(60_000) });

/** The reconciler notes its repairs in the batch record just after the lines it wrote. */
const repaired = (r: Runtime, batchId: string) =>
  expect.poll(async () => (await getBatchStatus(r, batchId))?.reconciler.repaired, {
    timeout: 30_000,
    interval: 100,
  });

describe('reconciler', () => {
  it('ends a batch whose jobs were removed behind its back (Bull Board: empty, clean, remove)', async () => {
    const r = await setUp('reconcile-removed');
    const requests = Array.from({ length: 30 }, (_, i) => request(`q${i}`, `Removed maybe ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await dispatchAll(r, batchId);
    // What an operator can do in Bull Board before any worker runs.
    await (await r.requests.getJob(requestJobId(batchId, 'q0', 0)))!.remove();
    await r.requests.clean(0, 5, 'wait');
    const left = await r.requests.getJobCounts('wait');
    expect(left['wait']).toBe(24);
    await r.requests.drain();

    await work(r);
    const final = await ended(r, batchId);
    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 0, errored: 30 });
    expect(final.errored_by_type).toEqual({ [LOST_ERROR_TYPE]: 30 });
    await repaired(r, batchId).toEqual({ lost: 30 });
    expect((await getBatchStatus(r, batchId))?.reconciler.last_run_at).not.toBeNull();
    const byId = await results(r, batchId);
    expect(byId.size).toBe(30);
    expect(JSON.stringify(byId.get('q0'))).toContain(LOST_ERROR_TYPE);
    expect((await r.store.stats())['reconciled:lost']).toBe(30);
  }, 90_000);

  it('a running worker ends a batch whose queue was emptied within one sweep interval, without waiting for a stall', async () => {
    // The stall window is ten minutes away: only the "nothing left to run" look can end it.
    const r = await setUp('reconcile-interval', { reconcileIntervalMs: '2000', reconcileStallMs: '600000' });
    await work(r);
    const requests = Array.from({ length: 40 }, (_, i) => request(`i${i}`, `Interval ${i}`));
    // Paused, so nothing is taken before the operator empties the queue.
    await r.requests.pause();
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    // All dispatched into the paused queue (as the worker's dispatcher would in time); then the
    // operator empties it.
    await dispatchAll(r, batchId);
    await r.requests.drain(true);
    await r.requests.resume();
    const removedAt = performance.now();
    const final = await ended(r, batchId);
    const seconds = (performance.now() - removedAt) / 1000;
    expect(final.request_counts).toMatchObject({ processing: 0, errored: 40 });
    // One interval (2 s) plus the lost-request confirmation (1 s), with room for a slow machine.
    expect(seconds).toBeLessThan(2 + 1 + 3);
    await repaired(r, batchId).toEqual({ lost: 40 });
  }, 90_000);

  it('leaves lawful requests alone: a batch with a removed job and live ones ends with each in its own outcome', async () => {
    const r = await setUp('reconcile-mixed');
    const requests = Array.from({ length: 20 }, (_, i) => request(`m${i}`, `Mixed ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await dispatchAll(r, batchId);
    await (await r.requests.getJob(requestJobId(batchId, 'm7', 0)))!.remove();

    await work(r);
    const final = await ended(r, batchId);
    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 19, errored: 1 });
    await repaired(r, batchId).toEqual({ lost: 1 });
    expect((await results(r, batchId)).get('m7')?.type).toBe('errored');
    // Every request sent at most once: the reconciler re-sent nothing.
    expect(emulator!.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(19);
  }, 90_000);

  it('a removed canary: it ends as lost and its model is released', async () => {
    const r = await setUp('reconcile-canary');
    const requests = Array.from({ length: 8 }, (_, i) => request(`c${i}`, `Canary gone ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests) });
    await (await r.requests.getJob(requestJobId(batchId, 'c0', 0)))!.remove();

    await work(r);
    const final = await ended(r, batchId);
    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 7, errored: 1 });
    await repaired(r, batchId).toMatchObject({ lost: 1, canary_released: 1 });
    expect(final.canary).toEqual({ 'claude-haiku-4-5': 'released' });
  }, 90_000);

  it('a release that died midway (canary marked released, requests still held) is finished', async () => {
    const r = await setUp('reconcile-held');
    const requests = Array.from({ length: 6 }, (_, i) => request(`h${i}`, `Held forever ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests) });
    // The canary's outcome was applied and the model marked released, then the process died.
    await r.redis.hset(r.keys.batch(batchId), canaryField('claude-haiku-4-5'), 'released');
    await (await r.requests.getJob(requestJobId(batchId, 'h0', 0)))!.remove();
    await r.store.finalize(batchId, 'h0', 0, {
      kind: 'succeeded',
      line: JSON.stringify({ custom_id: 'h0', result: { type: 'succeeded', message: {} } }),
    });

    await work(r);
    const final = await ended(r, batchId);
    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 6 });
    await repaired(r, batchId).toEqual({ held_released: 5 });
    expect((await getBatchStatus(r, batchId))?.processing_status).toBe('ended');
  }, 90_000);

  it('worker --until-idle: a batch whose queue was emptied ends before the worker leaves, without waiting for a stall', async () => {
    // The periodic sweep is far away: only the idle worker's last look can end this batch.
    const r = await setUp('reconcile-idle', { reconcileIntervalMs: '600000', reconcileStallMs: '600000' });
    const requests = Array.from({ length: 12 }, (_, i) => request(`e${i}`, `Emptied ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await dispatchAll(r, batchId);
    await r.requests.drain(true);
    const w = await work(r);
    const idle = await workUntilIdle(r, w.reconciler, 200, AbortSignal.timeout(60_000));
    expect(idle.kind).toBe('drained');
    await w.close();
    const status = await getBatchStatus(r, batchId);
    expect(status?.processing_status).toBe('ended');
    expect(status?.request_counts).toMatchObject({ processing: 0, errored: 12 });
  }, 90_000);

  it('worker --until-idle: requests held behind a removed canary keep it working while the sweep is locked by a dead worker', async () => {
    // Soak seed 9409: a canary removed in Bull Board, and the reconciler's lock still held by a
    // worker killed with -9. The 7 requests held behind the canary are not jobs: counted as
    // nothing to do, until-idle left with them unsent. They are work waiting to be sent.
    const r = await setUp('reconcile-held-canary', {
      reconcileIntervalMs: '600000',
      reconcileStallMs: '600000',
    });
    const requests = Array.from({ length: 8 }, (_, i) => request(`h${i}`, `Held behind ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests) });
    await (await r.requests.getJob(requestJobId(batchId, 'h0', 0)))!.remove();
    // A dead worker's lock: it expires in 3 s, and only then can this worker's sweep run.
    await r.redis.set(r.keys.reconcilerLock(), 'worker-killed-with-9', 'PX', 3_000);
    const w = await work(r);
    const idle = await workUntilIdle(r, w.reconciler, 200, AbortSignal.timeout(60_000));
    expect(idle.kind).toBe('drained');
    await w.close();
    const status = await getBatchStatus(r, batchId);
    expect(status?.processing_status).toBe('ended');
    expect(status?.request_counts).toMatchObject({ processing: 0, succeeded: 7, errored: 1 });
  }, 90_000);

  it('a failed job the sweeper missed gets its outcome; a dead-letter entry without its line gets the line', async () => {
    // Neither the sweeper (once, at start) nor the periodic reconciler comes by during the test.
    const r = await setUp('reconcile-failed', {
      stalledIntervalMs: '600000',
      reconcileIntervalMs: '600000',
      reconcileStallMs: '600000',
    });
    const requests = [request('f', 'Failed by BullMQ'), request('d', 'Dead-lettered halfway')];
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await dispatchAll(r, batchId);
    const foreign = new Worker<RequestJobData>(REQUESTS_QUEUE, null, {
      connection: r.redis,
      prefix: r.keys.bullPrefix,
      lockDuration: 60_000,
      autorun: false,
    });
    try {
      const taken = [
        await foreign.getNextJob('t1', { block: false }),
        await foreign.getNextJob('t2', { block: false }),
      ];
      // Dispatched in no particular order: tokens follow the jobs.
      const failed = taken.find((j) => j?.data.custom_id === 'f')!;
      const halfway = taken.find((j) => j?.data.custom_id === 'd')!;
      expect([failed?.data.custom_id, halfway?.data.custom_id]).toEqual(['f', 'd']);
      const w = await work(r);
      await failed.moveToFailed(new UnrecoverableError('processor crashed'), failed.token!);
      // A worker added the entry of `d`, then died before writing its errored line.
      const entry = deadLetterEntry(
        halfway.data,
        'terminal',
        { status: 400, type: 'invalid_request_error', message: 'bad', request_id: 'req_2' },
        { calls: 1, firstAt: Date.now() },
      );
      await r.deadLetters.add(entry.params.model, entry, { jobId: requestJobId(batchId, 'd', 0) });

      expect(await w.reconciler.examine(batchId)).toEqual({ failed_outcome: 1, dead_letter_finalized: 1 });
      const status = await getBatchStatus(r, batchId);
      expect(status?.processing_status).toBe('ended');
      expect(status?.errored_by_type).toEqual({ worker_error: 1, invalid_request_error: 1 });
      expect(status?.reconciler.repaired).toEqual({ failed_outcome: 1, dead_letter_finalized: 1 });
    } finally {
      await foreign.close();
    }
  }, 90_000);
});
