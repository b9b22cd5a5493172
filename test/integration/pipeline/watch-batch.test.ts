import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pauseQueue, resumeQueue } from '../../../src/breakers/breakers.js';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { BatchNotFoundError } from '../../../src/errors/batch-not-found-error.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { watchBatch, type BatchEvent } from '../../../src/watch-batch.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

let emulator: EmulatorHandle;
let runtime: Runtime;

beforeEach(async () => {
  emulator = await startEmulator({ seed: 11 });
  runtime = await testRuntime('watch');
});

afterEach(async () => {
  await disposeRuntime(runtime);
  await emulator.close();
});

function work(): Promise<ClaudeWorker> {
  const apiKey = new Secret('sk-test-watch-batch-key');
  return startWorker(runtime, {
    client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 10_000 }),
  });
}

const requests = Array.from({ length: 6 }, (_, i) => request(`w-${i}`, `Tell me about ${i}.`));

describe('watchBatch', () => {
  it('yields progress, then paused with the reason, resumed, and ended last', async () => {
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    await pauseQueue(runtime);
    await work();
    const events: BatchEvent[] = [];
    for await (const event of watchBatch(runtime, batchId, { intervalMs: 50 })) {
      events.push(event);
      // The script's reaction to a pause: here, resume (a real one might alert and wait).
      if (event.type === 'paused') await resumeQueue(runtime);
    }
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('progress');
    expect(types.at(-1)).toBe('ended');
    expect(types.filter((t) => t === 'ended')).toHaveLength(1);
    expect(types.indexOf('paused')).toBeGreaterThan(-1);
    expect(types.indexOf('resumed')).toBeGreaterThan(types.indexOf('paused'));
    const paused = events.find((e) => e.type === 'paused');
    expect(paused?.type === 'paused' && paused.reason).toMatchObject({
      reason: 'manual',
      fix: expect.any(String),
    });
    // Nothing was sent while paused: the first progress reports every request still processing.
    expect(events[0]?.status.request_counts.processing).toBe(6);
    const ended = events.at(-1)!;
    expect(ended.status.processing_status).toBe('ended');
    expect(ended.status.request_counts.succeeded).toBe(6);
    // A progress event only when something changed.
    const progress = events
      .filter((e) => e.type === 'progress')
      .map((e) => JSON.stringify([e.status.processing_status, e.status.request_counts]));
    expect(new Set(progress).size).toBe(progress.length);
  });

  it('of a batch that has already ended: one progress event, then ended', async () => {
    const { batchId } = await submitBatch(runtime, {
      input: jsonlSource(requests.slice(0, 2)),
      canary: false,
    });
    await work();
    await waitForBatch(runtime, batchId, { pollMs: 50 });
    const types: string[] = [];
    for await (const event of watchBatch(runtime, batchId, { intervalMs: 50 })) types.push(event.type);
    expect(types).toEqual(['progress', 'ended']);
  });

  it('rejects with BatchNotFoundError for an unknown batch, as waitForBatch does', async () => {
    const next = watchBatch(runtime, 'no-such-batch').next();
    await expect(next).rejects.toBeInstanceOf(BatchNotFoundError);
    await expect(next).rejects.toMatchObject({ batchId: 'no-such-batch' });
    await expect(waitForBatch(runtime, 'no-such-batch')).rejects.toBeInstanceOf(BatchNotFoundError);
  });

  it('stops when its signal is aborted', async () => {
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    const controller = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const event of watchBatch(runtime, batchId, { intervalMs: 50, signal: controller.signal })) {
        seen.push(event.type);
        // No worker: the batch never ends; abort once the first event proves the watch runs.
        controller.abort();
      }
    })();
    await expect(watching).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toEqual(['progress']);
  });
});

describe('runtime.close()', () => {
  it('closes the workers started on it, so a script that forgets one still exits', async () => {
    const worker = await work();
    expect(worker.worker.isRunning()).toBe(true);
    await runtime.close();
    expect(worker.worker.isRunning()).toBe(false);
    // Closing the worker again (or the runtime again) is harmless.
    await worker.close();
    await runtime.close();
  });
});
