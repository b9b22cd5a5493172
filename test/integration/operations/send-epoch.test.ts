import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../../src/emulator/index.js';
import { cancelBatch } from '../../../src/operations/cancel-batch.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { retryDeadLetters } from '../../../src/operations/dlq-retry.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { jsonlSource, MODEL, request, resultsById } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

const OTHER_MODEL = 'claude-opus-4-6';

let emulator: EmulatorHandle | undefined;
let runtime: Runtime | undefined;
let worker: ClaudeWorker | undefined;

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  if (runtime) await disposeRuntime(runtime);
  runtime = undefined;
  await emulator?.close();
  emulator = undefined;
});

async function setUp(name: string, options: EmulatorOptions, overrides: Record<string, string>) {
  emulator = await startEmulator({ seed: 11, ...options });
  runtime = await testRuntime(name, overrides);
  // Rate budgets are the account's (keyed by the API key, not the prefix): a key of its own.
  const apiKey = new Secret(`sk-test-send-epoch-${randomBytes(6).toString('hex')}`);
  worker = await startWorker(runtime, {
    apiKey,
    client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 10_000 }),
  });
  return { emulator, runtime };
}

const sentMessages = (e: EmulatorHandle) => e.control.log().filter((entry) => entry.path === '/v1/messages');

describe('dlq retry of model-breaker entries (issue 13, finding 3)', () => {
  it('sends them at once, though the worker read the open breaker a moment before', async () => {
    const { emulator: e, runtime: r } = await setUp(
      'epoch-retry',
      { latency: { fixedMs: 20 }, faults: { script: Array(3).fill('permission_error') } },
      { concurrency: '1', modelBreakerThreshold: '3' },
    );
    const forbidden = Array.from({ length: 10 }, (_, i) =>
      request(`p${i}`, `Permission ${i}?`, { model: OTHER_MODEL }),
    );
    const { batchId } = await submitBatch(r, { input: jsonlSource(forbidden), canary: false });
    const first = await waitForBatch(r, batchId, { pollMs: 50 });
    expect(first.request_counts).toMatchObject({ errored: 10 });
    const unsent = (await listDeadLetters(r, { batch: batchId })).filter((d) => d.reason === 'model_breaker');
    expect(unsent).toHaveLength(7);

    // The permission is granted now (the fault script is used up). A request of another batch
    // makes the worker read its gates (breaker still open) just before the documented fix runs.
    const side = await submitBatch(r, { input: jsonlSource([request('s0', 'Side?')]), canary: false });
    await waitForBatch(r, side.batchId, { pollMs: 20 });
    const callsBefore = sentMessages(e).filter((x) => x.model === OTHER_MODEL).length;
    const retried = await retryDeadLetters(r, { type: 'permission_error' });
    expect(retried.requeued).toBe(10);

    const final = await waitForBatch(r, batchId, { pollMs: 50 });
    expect(final.request_counts).toMatchObject({ succeeded: 10, errored: 0, processing: 0 });
    expect(await listDeadLetters(r, { batch: batchId })).toEqual([]);
    expect(sentMessages(e).filter((x) => x.model === OTHER_MODEL).length - callsBefore).toBe(10);
  });
});

describe('cancel and the send-time check', () => {
  it('nothing of a canceled batch is sent once cancel has returned, not even by requests waiting for budget', async () => {
    // 60 RPM: the first 60 requests go at once, then one a second, so every slot is soon taken by
    // a request waiting for the budget: already past the gates' first check, not yet sent.
    const { emulator: e, runtime: r } = await setUp(
      'epoch-cancel',
      { latency: { fixedMs: 50 } },
      { concurrency: '8', rpm: '60' },
    );
    const requests = Array.from({ length: 100 }, (_, i) =>
      request(`c${i}`, `Cancel ${i}?`, { model: MODEL }),
    );
    const { batchId } = await submitBatch(r, { input: jsonlSource(requests), canary: false });
    await expect
      .poll(() => sentMessages(e).length, { timeout: 30_000, interval: 20 })
      .toBeGreaterThanOrEqual(61);
    await expect.poll(() => worker!.activeCount, { timeout: 10_000, interval: 20 }).toBe(8);

    const result = await cancelBatch(r, batchId);
    const returnedAt = Date.now();
    expect(result.existed).toBe(true);
    const final = await waitForBatch(r, batchId, { pollMs: 50 });
    const c = final.request_counts;
    expect(c.processing).toBe(0);
    expect(c.succeeded + c.canceled).toBe(100);
    // At one request a second, at most one can have passed the send-time check (and so be in
    // flight) when cancel returned; the other waiting slots are stopped there.
    const after = sentMessages(e).filter((x) => x.at > returnedAt);
    expect(after.length).toBeLessThanOrEqual(1);

    const lines: string[] = [];
    for await (const line of r.store.results(batchId)) lines.push(line);
    const results = resultsById(lines);
    expect([...results.values()].filter((x) => x.type === 'succeeded')).toHaveLength(
      sentMessages(e).filter((x) => x.status === 200).length,
    );
  });
});
