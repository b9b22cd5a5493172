/**
 * Issue 16, "a budget learned from the API": with no limits configured, the workers take them
 * from the `anthropic-ratelimit-*-limit` headers the API sends on every response (anthropic-api.md,
 * rate limits; the emulator sends them as the live API does) and share them through Redis like
 * configured ones; `status` says where each limit came from.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createRateBudget } from '../../../src/limits/index.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { formatBudget } from '../../../src/cli/format-status.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;

afterEach(async () => {
  // Also deletes the key's budget records (deletePrefix: the accounts its workers used).
  await rig?.close();
  rig = undefined;
});

describe('a budget learned from the API', () => {
  it('no limits given: the headers of the first responses set the budget, with at most one 429 per slot', async () => {
    const apiKey = `sk-test-learned-${randomBytes(6).toString('hex')}`;
    const CONCURRENCY = 8;
    rig = await WorkerRig.start({
      name: 'learned-budget',
      apiKey,
      emulator: { limits: { rpm: 600 }, latency: { fixedMs: 20 } },
      overrides: { concurrency: String(CONCURRENCY) },
    });
    // 100 more than the API's bucket holds: those wait for its refill (10 a second).
    const requests = Array.from({ length: 700 }, (_, i) => request(`l${i}`, `Learned question ${i}`));
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests), canary: false });
    await rig.startWorker();
    const final = await waitForBatch(rig.runtime, batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(final.request_counts).toMatchObject({ succeeded: 700, errored: 0 });

    // The emulator's counters (its log is a bounded ring): every request answered, by status.
    const stats = rig.emulator.control.stats();
    // Only requests already in flight before the first answer taught the limit can meet a 429.
    expect(stats.byStatus['429'] ?? 0).toBeLessThanOrEqual(CONCURRENCY);
    expect(stats.byStatus['200']).toBe(700);

    // Another process (here: `status`, which has seen no response) finds the learned budget in Redis.
    const fresh = createRateBudget({ redis: rig.runtime.redis, accountId: new Secret(apiKey).fingerprint() });
    try {
      const snapshot = await fresh.snapshot();
      const cls = snapshot.classes.find((c) => c.name === 'default');
      expect(cls?.requests).toMatchObject({ configured: 600, source: 'api' });
      expect(formatBudget(snapshot)).toMatch(/requests 600\/min \(learned from the API\)/);
    } finally {
      await fresh.close();
    }
  }, 90_000);

  it('configured limits win over the headers', async () => {
    const apiKey = `sk-test-learned-${randomBytes(6).toString('hex')}`;
    rig = await WorkerRig.start({
      name: 'learned-configured',
      apiKey,
      emulator: { limits: { rpm: 6_000 }, latency: { fixedMs: 5 } },
      overrides: { rpm: '3000' },
    });
    const requests = Array.from({ length: 20 }, (_, i) => request(`c${i}`, `Configured question ${i}`));
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests), canary: false });
    await rig.startWorker();
    await waitForBatch(rig.runtime, batchId, { pollMs: 100, signal: AbortSignal.timeout(60_000) });
    const budget = createRateBudget({
      redis: rig.runtime.redis,
      accountId: new Secret(apiKey).fingerprint(),
      default: { rpm: 3_000 },
    });
    try {
      const cls = (await budget.snapshot()).classes.find((c) => c.name === 'default');
      expect(cls?.requests).toMatchObject({ configured: 3_000, source: 'configured' });
      // The dimensions nobody configured are the API's.
      expect(cls?.inputTokens).toMatchObject({ source: 'api' });
    } finally {
      await budget.close();
    }
  }, 60_000);
});
