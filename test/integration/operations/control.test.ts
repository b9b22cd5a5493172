import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pauseQueue, resumeQueue } from '../../../src/breakers/breakers.js';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { replyFingerprint, startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { cancelBatch } from '../../../src/operations/cancel-batch.js';
import { deleteBatch } from '../../../src/operations/delete-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { jsonlSource, request, resultsById } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { nextDrained } from '../../helpers/worker-rig.js';

let emulator: EmulatorHandle;
let runtime: Runtime;
let worker: ClaudeWorker | undefined;

beforeEach(async () => {
  emulator = await startEmulator({ seed: 5, latency: { fixedMs: 150 } });
  runtime = await testRuntime('control', { concurrency: '2' });
});

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await disposeRuntime(runtime);
  await emulator.close();
});

/** Starts the worker; resolves to its first look for jobs that found none (see nextDrained). */
async function work(): Promise<{ drained: Promise<void> }> {
  const apiKey = new Secret('sk-test-control-key');
  worker = await startWorker(runtime, {
    apiKey,
    client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 10_000 }),
  });
  return { drained: nextDrained(worker) };
}

const sentMessages = () => emulator.control.log().filter((e) => e.path === '/v1/messages');

async function lines(batchId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of runtime.store.results(batchId)) out.push(line);
  return out;
}

describe('cancel', () => {
  it('ends queued requests as canceled, lets in-flight ones finish, and never sends a canceled one', async () => {
    const requests = Array.from({ length: 30 }, (_, i) => request(`c${i}`, `Cancel me maybe ${i}`));
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    await work();
    await expect
      .poll(() => sentMessages().length, { timeout: 30_000, interval: 20 })
      .toBeGreaterThanOrEqual(4);
    const result = await cancelBatch(runtime, batchId);
    expect(result.existed).toBe(true);
    expect(result.canceled).toBeGreaterThan(0);
    const final = await waitForBatch(runtime, batchId, { pollMs: 50 });
    const c = final.request_counts;
    expect(c.processing).toBe(0);
    expect(c.canceled).toBeGreaterThanOrEqual(result.canceled);
    expect(c.succeeded + c.canceled).toBe(30);
    expect(final.canceled_at).not.toBeNull();

    const results = resultsById(await lines(batchId));
    expect(results.size).toBe(30);
    const sent = new Set(sentMessages().map((e) => e.promptHash));
    for (const r of requests) {
      const type = results.get(r.custom_id)?.type;
      if (type === 'canceled') expect(sent.has(replyFingerprint(r.params)), r.custom_id).toBe(false);
      else expect(type).toBe('succeeded');
    }
    // Running it again changes nothing.
    expect(await cancelBatch(runtime, batchId)).toMatchObject({ canceled: 0, inFlight: 0 });
  });
});

describe('pause and resume', () => {
  it('a paused queue sends nothing new and says so; resume finishes the batch', async () => {
    const requests = Array.from({ length: 16 }, (_, i) => request(`p${i}`, `Pause ${i}`));
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    await pauseQueue(runtime);
    const { drained } = await work();
    const status = await getBatchStatus(runtime, batchId);
    expect(status?.processing_status).toBe('paused');
    expect(status?.paused[0]).toMatchObject({
      scope: 'queue',
      reason: 'manual',
      fix: expect.stringContaining('resume'),
    });
    await drained; // the worker looked, and found nothing it may take
    expect(sentMessages()).toHaveLength(0);

    expect(await resumeQueue(runtime)).toBe(true);
    const final = await waitForBatch(runtime, batchId, { pollMs: 50 });
    expect(final.request_counts).toMatchObject({ succeeded: 16, processing: 0 });
    expect(final.paused).toEqual([]);
  });
});

describe('delete', () => {
  it('removes queued requests unsent, and every record and result of the batch', async () => {
    const requests = Array.from({ length: 10 }, (_, i) => request(`d${i}`, `Delete ${i}`));
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests) });
    const result = await deleteBatch(runtime, batchId);
    expect(result).toMatchObject({ existed: true, removedRequests: 10 });
    expect(await getBatchStatus(runtime, batchId)).toBeNull();
    expect(await runtime.redis.keys(`${runtime.keys.bullPrefix}:cb:batch:${batchId}*`)).toEqual([]);
    const { drained } = await work();
    await drained; // the worker looked, and found nothing to take
    expect(sentMessages()).toHaveLength(0);
  });
});
