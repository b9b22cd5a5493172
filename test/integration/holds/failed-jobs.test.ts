import { UnrecoverableError, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { REQUESTS_QUEUE, type RequestJobData } from '../../../src/queue/jobs.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { waitUntilIdle } from '../../../src/worker/until-idle.js';
import { jsonlSource, request, resultsById } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { dispatchAll } from '../../helpers/dispatch.js';

let emulator: EmulatorHandle | undefined;
let runtime: Runtime | undefined;
let worker: ClaudeWorker | undefined;
let foreign: Worker<RequestJobData> | undefined;

afterEach(async () => {
  await worker?.close();
  await foreign?.close();
  if (runtime) await disposeRuntime(runtime);
  await emulator?.close();
  worker = foreign = runtime = emulator = undefined;
});

async function setUp(name: string, overrides: Record<string, string>): Promise<Runtime> {
  emulator = await startEmulator({ seed: 13, latency: { fixedMs: 20 } });
  runtime = await testRuntime(name, overrides);
  return runtime;
}

async function work(r: Runtime): Promise<ClaudeWorker> {
  const apiKey = new Secret('sk-test-failed-jobs-key');
  worker = await startWorker(r, {
    apiKey,
    client: createClaudeClient({ apiKey, baseURL: emulator!.url, timeoutMs: 10_000 }),
  });
  return worker;
}

/**
 * A BullMQ worker of another process, driven by hand: it takes a job and then dies with it
 * (its lock expires) or its processor fails it, as a crashed or broken worker would.
 */
function foreignWorker(r: Runtime, lockDuration: number): Worker<RequestJobData> {
  foreign = new Worker<RequestJobData>(REQUESTS_QUEUE, null, {
    connection: r.redis,
    prefix: r.keys.bullPrefix,
    lockDuration,
    autorun: false,
  });
  return foreign;
}

async function lines(r: Runtime, batchId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of r.store.results(batchId)) out.push(line);
  return out;
}

describe('jobs BullMQ fails by itself', () => {
  it('a canary that stalls beyond the limit is dead-lettered and releases its model', async () => {
    const r = await setUp('failed-canary', {
      maxStalledCount: '0',
      lockDurationMs: '1000',
      stalledIntervalMs: '500',
    });
    const requests = Array.from({ length: 6 }, (_, i) => request(`q${i}`, `Stalled canary ${i}`));
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests) });
    // The canary is the only job not held: a worker takes it, then dies (its lock is never extended).
    const canary = await foreignWorker(r, 1_000).getNextJob('dead-worker-token', { block: false });
    expect(canary?.data.canary).toBe(true);

    await work(r);
    const final = await waitForBatch(r, batchId, { pollMs: 100, signal: AbortSignal.timeout(60_000) });
    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 5, errored: 1 });
    const results = resultsById(await lines(r, batchId));
    expect(results.get(canary.data.custom_id)?.type).toBe('errored');
  }, 90_000);

  it('worker --until-idle: a job failed just before idle gets its outcome before the worker leaves', async () => {
    // A stalled-interval sweep far enough away not to come by chance during the test's first seconds.
    const r = await setUp('failed-idle', { stalledIntervalMs: '3000' });
    const requests = [request('a', 'Fails in a broken worker'), request('b', 'Succeeds')];
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await dispatchAll(r, batchId);
    const token = 'broken-worker-token';
    const taken = await foreignWorker(r, 60_000).getNextJob(token, { block: false });
    // Dispatched in no particular order: the other one is left to the working worker.
    expect(['a', 'b']).toContain(taken?.data.custom_id);
    const other = taken.data.custom_id === 'a' ? 'b' : 'a';

    await work(r);
    await expect
      .poll(() => r.store.resultOf(batchId, other), { timeout: 30_000, interval: 50 })
      .not.toBeNull();
    // The other worker's processor throws: BullMQ fails the job, no outcome of ours yet.
    await taken.moveToFailed(new UnrecoverableError('processor crashed'), token);

    const idle = await waitUntilIdle(r, 200, AbortSignal.timeout(60_000));
    expect(idle.kind).toBe('drained');
    await worker!.close();
    const line = await r.store.resultOf(batchId, taken.data.custom_id);
    expect(line).not.toBeNull();
    expect(line).toContain('worker_error');
    expect((await r.store.get(batchId))?.ended_at).not.toBeNull();
  }, 90_000);
});
