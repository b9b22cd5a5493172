import { Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { retryDeadLetters } from '../../../src/operations/dlq-retry.js';
import { REQUESTS_QUEUE, requestJobId, type RequestJobData } from '../../../src/queue/jobs.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { deadLetterEntry, finalizeDeadLetter } from '../../../src/worker/apply-outcome.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { jsonlSource, request } from '../../helpers/batch.js';
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

describe('dlq retry', () => {
  it('between a dead-letter entry being added and its errored line being written: the request is retried, not dropped', async () => {
    emulator = await startEmulator({ seed: 8, latency: { fixedMs: 20 } });
    const r = (runtime = await testRuntime('dlq-race'));
    const { batchId } = await submitBatch(r, {
      input: jsonlSource([request('x', 'Dead-lettered, then retried')]),
      canary: false,
    });
    await dispatchAll(r, batchId);
    // The request is in flight in a worker that dead-letters it: it adds the entry...
    foreign = new Worker<RequestJobData>(REQUESTS_QUEUE, null, {
      connection: r.redis,
      prefix: r.keys.bullPrefix,
      lockDuration: 60_000,
      autorun: false,
    });
    const job = await foreign.getNextJob('token', { block: false });
    expect(job?.data.custom_id).toBe('x');
    const entry = deadLetterEntry(
      job.data,
      'terminal',
      { status: 400, type: 'invalid_request_error', message: 'bad', request_id: 'req_1' },
      { calls: 1, firstAt: Date.now() },
    );
    await r.deadLetters.add(entry.params.model, entry, { jobId: requestJobId(batchId, 'x', 0) });

    // ...`dlq retry` runs at that moment...
    const retried = await retryDeadLetters(r);
    // ...and then the worker writes the errored line.
    await finalizeDeadLetter({ runtime: r }, entry);

    expect(retried).toMatchObject({ requeued: 1, dropped: 0 });
    expect(await r.store.resultOf(batchId, 'x')).toBeNull();
    expect((await r.store.get(batchId))?.counts).toMatchObject({ processing: 1, errored: 0 });
    expect(await listDeadLetters(r)).toEqual([]);

    const apiKey = new Secret('sk-test-dlq-race-key');
    worker = await startWorker(r, {
      apiKey,
      client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 10_000 }),
    });
    const final = await waitForBatch(r, batchId, { pollMs: 100, signal: AbortSignal.timeout(60_000) });
    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 1, errored: 0 });
  }, 90_000);
});
