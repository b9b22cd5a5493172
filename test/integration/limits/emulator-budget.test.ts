import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { createRateBudget, estimateRequest } from '../../../src/limits/index.js';
import { Secret } from '../../../src/secret.js';
import { connect, deleteBudgetKeys, uniqueAccount } from './helpers.js';

describe('the budget against the emulator enforcing the same limits', () => {
  let emulator: EmulatorHandle;
  const redis = connect();
  const accountId = uniqueAccount('emu');

  beforeAll(async () => {
    emulator = await startEmulator({ limits: { rpm: 120, itpm: 12_000, otpm: 6_000 } });
  });

  afterAll(async () => {
    await emulator.close();
    await deleteBudgetKeys(redis, accountId);
    redis.disconnect();
  });

  it('sends more requests than one minute allows through the real SDK with zero 429s', async () => {
    // The lead covers the first request's trip to the emulator (its bucket starts refilling when that
    // request arrives): generous here, since a busy CI machine can delay that first request.
    const budget = createRateBudget({
      redis,
      accountId,
      default: { rpm: 120, itpm: 12_000, otpm: 6_000 },
      refillLeadMs: 1_000,
    });
    const client = createClaudeClient({
      apiKey: new Secret('sk-test'),
      baseURL: emulator.url,
      timeoutMs: 30_000,
    });
    const N = 136; // 120 at once, then 16 more at 2/s
    let next = 0;
    let ok = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const params = {
          model: 'claude-haiku-4-5',
          max_tokens: 30,
          messages: [
            { role: 'user', content: `Request ${i}: ${'please summarise the budget rules. '.repeat(6)}` },
          ],
        };
        const lease = await budget.acquire(estimateRequest(params));
        const result = await client.call(params);
        await budget.settle(lease, {
          usage: result.ok ? result.usage : null,
          headers: result.ok ? result.headers : result.failure.headers,
          rateLimitedForMs: !result.ok && result.failure.status === 429 ? 1000 : null,
        });
        if (result.ok) ok++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await budget.close();
    const stats = emulator.control.stats();
    expect(ok).toBe(N);
    expect(stats.byStatus['429'] ?? 0).toBe(0);
    expect(Object.values(stats.rateLimited).reduce((a, b) => a + b, 0)).toBe(0);
  });
});
