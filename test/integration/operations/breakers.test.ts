import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EmulatorOptions } from '../../../src/emulator/index.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { retryDeadLetters } from '../../../src/operations/dlq-retry.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { getBatchStatus, type BatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { tripModelBreaker } from '../dashboard/fixtures.js';
import { jsonlSource, MODEL, request, type TestRequest } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const KEY = 'sk-test-breaker-key-0001';
const CONCURRENCY = 4;

let rig: WorkerRig | undefined;

async function setUp(name: string, emulator: EmulatorOptions, overrides = {}): Promise<WorkerRig> {
  rig = await WorkerRig.start({
    name,
    emulator,
    overrides: { concurrency: String(CONCURRENCY), ...overrides },
    apiKey: KEY,
  });
  return rig;
}

/** (Re)starts the worker: the running ones stop first, as when an operator restarts them. */
async function work(r: WorkerRig, key = KEY): Promise<void> {
  await Promise.all(r.workers.map((w) => w.close()));
  await r.startWorker(key);
}

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** Waits until the batch is paused and no request is in flight any more. */
async function pausedAndQuiet(r: WorkerRig, batchId: string): Promise<BatchStatus> {
  let status: BatchStatus | null = null;
  await vi.waitFor(
    async () => {
      status = await getBatchStatus(r.runtime, batchId);
      expect(status?.processing_status, 'the key-wide breaker to pause the queue').toBe('paused');
      expect(r.activeCount).toBe(0);
    },
    { timeout: 30_000, interval: 50 },
  );
  return status!;
}

function batchOf(n: number, prefix = 'q', model = MODEL): TestRequest[] {
  return Array.from({ length: n }, (_, i) => request(`${prefix}${i}`, `Question ${prefix} ${i}?`, { model }));
}

describe('key-wide breaker', () => {
  it('credits run out mid-batch: paused, alerted, then dlq retry after a top-up finishes every request once', async () => {
    const r = await setUp('credits', { credits: { balance: 25 } });
    const requests = batchOf(60);
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
    await work(r);
    const paused = await pausedAndQuiet(r, batchId);

    // The emulator refuses an empty balance as the live API does: 400 invalid_request_error.
    const billing = r.emulator.control.log().filter((e) => e.billing);
    expect(billing.length).toBeGreaterThan(0);
    expect(billing.length).toBeLessThanOrEqual(CONCURRENCY);
    expect(paused.paused[0]).toMatchObject({
      reason: 'key_breaker',
      type: 'invalid_request_error',
      condition: 'billing',
    });
    expect(Date.parse(paused.paused[0]!.since)).not.toBeNaN();
    expect(paused.request_counts.errored).toBe(billing.length);

    const alert = r.logger.lines.find((l) => l['level'] === 'error' && l['event'] === 'key_breaker_tripped');
    expect(alert?.['msg']).toMatch(/credits exhausted \(invalid_request_error\).*Top up credits/);
    await expect.poll(() => r.hooks.length, { timeout: 30_000, interval: 50 }).toBeGreaterThan(0);
    expect(r.hooks).toHaveLength(1);
    expect(r.hooks[0]).toMatchObject({
      event: 'key_breaker_tripped',
      type: 'invalid_request_error',
      condition: 'billing',
    });
    const dead = await listDeadLetters(r.runtime, { batch: batchId, type: 'billing_error' });
    expect(dead).toHaveLength(billing.length);

    r.emulator.control.topUp(1_000);
    const retried = await retryDeadLetters(r.runtime, { type: 'billing_error' });
    expect(retried).toMatchObject({ requeued: billing.length, resumed: true });
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 60, errored: 0, processing: 0 });
    expect(final.errored_by_type).toEqual({});
    await r.expectAllSucceededOnce(batchId, requests);
    expect(await listDeadLetters(r.runtime, { batch: batchId })).toEqual([]);
    // Running it again changes nothing.
    expect(await retryDeadLetters(r.runtime, { type: 'billing_error' })).toMatchObject({ requeued: 0 });
    r.expectNoKey();
  });

  it('a revoked key: the canary alone is sent; a fixed key, restarted workers and dlq retry finish the batch', async () => {
    const r = await setUp('revoked', { apiKeys: [KEY, 'sk-test-new-key-0002'] });
    r.emulator.control.revokeKey(KEY);
    const requests = batchOf(20);
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
    await work(r);
    const paused = await pausedAndQuiet(r, batchId);
    expect(r.emulator.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(1);
    expect(paused.paused[0]).toMatchObject({ type: 'authentication_error' });
    expect(paused.request_counts).toMatchObject({ errored: 1, processing: 19 });

    await work(r, 'sk-test-new-key-0002');
    expect(await retryDeadLetters(r.runtime, { type: 'authentication_error' })).toMatchObject({
      requeued: 1,
    });
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 20, errored: 0 });
    await r.expectAllSucceededOnce(batchId, requests);
    r.expectNoKey();
  });

  it('the spend cap pauses without a retry; lifting it and dlq retry finish the batch', async () => {
    const r = await setUp('spendcap', { spendCapReached: true });
    const requests = batchOf(12);
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
    await work(r);
    const paused = await pausedAndQuiet(r, batchId);
    const sent = r.emulator.control.log().filter((e) => e.path === '/v1/messages');
    expect(sent).toHaveLength(1);
    expect(paused.paused[0]).toMatchObject({
      type: 'rate_limit_error',
      error_code: 'enforced_spend_limit_reached',
    });

    r.emulator.control.setSpendCap(false);
    expect(await retryDeadLetters(r.runtime, { type: 'rate_limit_error' })).toMatchObject({
      requeued: 1,
      resumed: true,
    });
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 12, errored: 0 });
    await r.expectAllSucceededOnce(batchId, requests);
  });
});

describe('model breaker and canary', () => {
  it('a mistyped model with the canary on: one request sent, the rest dead-lettered unsent; dlq retry --model finishes it', async () => {
    const r = await setUp('typo', {});
    const good = batchOf(10, 'good');
    const typo = batchOf(8, 'typo', 'claude-haiku-4-5-typo');
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource([...good, ...typo]) });
    await work(r);
    const ended = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(ended.request_counts).toMatchObject({ succeeded: 10, errored: 8 });
    expect(ended.errored_by_type).toEqual({ not_found_error: 8 });

    const typoCalls = r.emulator.control.log().filter((e) => e.model === 'claude-haiku-4-5-typo');
    expect(typoCalls).toHaveLength(1);
    const dead = await listDeadLetters(r.runtime, { batch: batchId });
    const sent = dead.filter((d) => d.reason === 'terminal');
    const unsent = dead.filter((d) => d.reason === 'model_breaker');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ status: 404, error_type: 'not_found_error', attempts: 1 });
    expect(unsent).toHaveLength(7);
    for (const d of unsent) {
      expect(d).toMatchObject({ status: null, request_id: null, error_type: 'not_found_error', attempts: 0 });
      expect(d.message).toContain('claude-haiku-4-5-typo');
      expect(d.message).toContain(sent[0]!.request_id!);
      expect(d.message).toMatch(/not sent/);
    }

    const retried = await retryDeadLetters(r.runtime, { type: 'not_found_error', model: MODEL });
    expect(retried.requeued).toBe(8);
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 18, errored: 0 });
  });

  it("dlq retry --model M also closes M's own breaker: the retried requests are sent, not dead-lettered again", async () => {
    // Found by the soak (seed 9246): M's breaker had been tripped by an earlier 404 burst; the
    // retry closed only the breakers of the entries' own (mistyped) model, so every retried
    // request met M's open breaker and was dead-lettered unsent again.
    const r = await setUp('retarget', {});
    const typo = batchOf(6, 'retarget', 'claude-haiku-4-5-typo');
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(typo) });
    await work(r);
    expect((await waitForBatch(r.runtime, batchId, { pollMs: 100 })).request_counts).toMatchObject({
      errored: 6,
    });
    await tripModelBreaker(r.runtime, MODEL);

    const retried = await retryDeadLetters(r.runtime, { type: 'not_found_error', model: MODEL });
    expect(retried.requeued).toBe(6);
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 6, errored: 0 });
  });

  it('permission_error without the canary: after K consecutive failures the rest of that model is not sent', async () => {
    const r = await setUp(
      'perm',
      { forbiddenModels: ['claude-opus-4-6'] },
      { concurrency: '1', modelBreakerThreshold: '3' },
    );
    const ok = batchOf(5, 'ok');
    const forbidden = batchOf(10, 'no', 'claude-opus-4-6');
    const { batchId } = await submitBatch(r.runtime, {
      input: jsonlSource([...forbidden, ...ok]),
      canary: false,
    });
    await work(r);
    const ended = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(ended.request_counts).toMatchObject({ succeeded: 5, errored: 10 });
    expect(r.emulator.control.log().filter((e) => e.model === 'claude-opus-4-6')).toHaveLength(3);
    const dead = await listDeadLetters(r.runtime, { batch: batchId });
    expect(dead.filter((d) => d.reason === 'model_breaker')).toHaveLength(7);
    expect(dead.every((d) => d.error_type === 'permission_error')).toBe(true);
  });
});
