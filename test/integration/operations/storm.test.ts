/**
 * The failure-storm breaker: distinct requests of one key failing in a row with the same terminal,
 * request-scoped error pause everything; genuinely bad lines whose messages name different fields
 * are dead-lettered one by one and never trip it. Through the real SDK over HTTP to the emulator.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { getBatchStatus, type BatchStatus } from '../../../src/operations/batch-status.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, MODEL, request, type TestRequest } from '../../helpers/batch.js';
import { runCli } from '../../helpers/cli.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const WORKERS = 2;
const CONCURRENCY = 4;
/** The default threshold (config stormThreshold). */
const K = 20;

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function start(name: string, faults = {}): Promise<WorkerRig> {
  rig = await WorkerRig.start({
    name,
    emulator: { faults },
    overrides: { concurrency: String(CONCURRENCY) },
  });
  return rig;
}

describe('failure-storm breaker', () => {
  it('50 requests that all get one unreported terminal 400 pause the queue within K; the stated fix finishes them once', async () => {
    // An answer no table knows: every request refused with the same 400 message.
    const r = await start('storm', { probabilities: { invalid_request_error: 1 } });
    const requests: TestRequest[] = Array.from({ length: 50 }, (_, i) => request(`s${i}`, `Storm ${i}?`));
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
    for (let i = 0; i < WORKERS; i++) await r.startWorker();

    let status: BatchStatus | null = null;
    await vi.waitFor(
      async () => {
        status = await getBatchStatus(r.runtime, batchId);
        expect(status?.processing_status).toBe('paused');
        expect(r.activeCount).toBe(0);
      },
      { timeout: 30_000, interval: 50 },
    );
    const refused = r.emulator.control.log().filter((e) => e.status === 400);
    expect(refused.length).toBeGreaterThanOrEqual(K);
    // K to trip it, plus what was already in flight in the other slots.
    expect(refused.length).toBeLessThanOrEqual(K + WORKERS * CONCURRENCY - 1);
    expect(status!.paused[0]).toMatchObject({
      reason: 'key_breaker',
      condition: 'storm',
      type: 'invalid_request_error',
      message: expect.stringMatching(
        /^20 requests in a row failed with 400 invalid_request_error: Invalid request/,
      ),
    });
    const alerts = r.logger.lines.filter((l) => l['event'] === 'key_breaker_tripped');
    expect(alerts).toHaveLength(1);
    await vi.waitFor(() => expect(r.hooks).toHaveLength(1), { timeout: 10_000 });
    expect(r.hooks[0]).toMatchObject({ condition: 'storm' });

    const shown = await runCli(['status', batchId], r.cliEnv());
    expect(shown.stdout).toMatch(/PAUSED\s+a failure storm/);
    expect(shown.stdout).toContain('`claude-batch resume`');
    expect(shown.stdout).toContain('`claude-batch dlq retry --type storm`');

    // The cause fixed: the entries alike the storm's are sent again, and the rest go on.
    r.emulator.control.setFaults({});
    const retry = await runCli(['dlq', 'retry', '--type', 'storm'], r.cliEnv());
    expect(retry.code, retry.stderr).toBe(0);
    expect(Number(retry.stdout.trim())).toBe(refused.length);
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 50, errored: 0 });
    await r.expectAllSucceededOnce(batchId, requests);
  }, 90_000);

  it('200 different invalid lines that only the API rejects are dead-lettered one by one and never trip it', async () => {
    const r = await start('no-storm');
    // Line i has i good system blocks, then one whose cache_control ttl the API refuses: each
    // message names another field (`system.<i>.cache_control.ttl`).
    const requests: TestRequest[] = Array.from({ length: 200 }, (_, i) => ({
      custom_id: `bad${i}`,
      params: {
        model: MODEL,
        max_tokens: 16,
        system: [
          ...Array.from({ length: i }, (_, j) => ({ type: 'text', text: `rule ${j}` })),
          { type: 'text', text: 'last', cache_control: { type: 'ephemeral', ttl: '7m' } },
        ],
        messages: [{ role: 'user', content: `Bad ${i}?` }],
      },
    }));
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests) });
    for (let i = 0; i < WORKERS; i++) await r.startWorker();
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ errored: 200, succeeded: 0 });
    expect(final.paused).toEqual([]);
    expect(await r.runtime.requests.isPaused()).toBe(false);
    const dead = await listDeadLetters(r.runtime, { batch: batchId });
    expect(dead).toHaveLength(200);
    expect(new Set(dead.map((d) => d.message)).size).toBe(200);
    expect(dead.every((d) => d.reason === 'terminal' && d.condition === null)).toBe(true);
    expect(r.emulator.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(200);
    expect(r.logger.lines.filter((l) => l['event'] === 'key_breaker_tripped')).toEqual([]);
  }, 90_000);
});
