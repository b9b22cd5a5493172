/**
 * Admission rate of one process, per model class, once its requests wait for the shared budget
 * (issue 16 item 5: at least 2,000 a second at a budget of 120,000 RPM or more). Side by side in one
 * run: for each budget, a fresh bucket that starts empty (so every admission waits for refill), then
 * CONCURRENCY loops of acquire + settle (no API call: the cost of admission alone) for SECONDS.
 * Reported: admissions per second against the refill rate (the most the budget allows), and Redis
 * commands per admission. On a private redis-server.
 *
 *   npx tsx scripts/bench/admission.ts [SECONDS=5] [CONCURRENCY=64]
 */
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
import { budgetKey, createRateBudget } from '../../src/limits/index.js';
import { commandStats, sumCalls } from './lib/harness.js';

const [SECONDS = 5, CONCURRENCY = 64] = process.argv.slice(2).map(Number);
const RPMS = [120_000, 240_000, 600_000];

/** Commands the server has run so far (INFO commandstats), as the other sections count them. */
async function commands(redis: Redis): Promise<number> {
  return sumCalls(await commandStats(redis));
}

const server = await startPrivateRedis();
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
try {
  const rows: string[] = [];
  for (const rpm of RPMS) {
    const accountId = `admission-${rpm}`;
    const budget = createRateBudget({ redis, accountId, default: { rpm } });
    const estimate = { model: 'claude-haiku-4-5', inputTokens: 100, outputTokens: 100 };
    // Seen once, then gone: this process recreates it EMPTY, so every admission below waits.
    await budget.tryAcquire(estimate);
    await redis.del(budgetKey(accountId, 'default'));
    const calls0 = await commands(redis);
    const deadline = performance.now() + SECONDS * 1000;
    let admitted = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline) {
          const lease = await budget.acquire(estimate);
          admitted += 1;
          await budget.settle(lease, { usage: { input_tokens: 100, output_tokens: 100 }, headers: {} });
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const calls = (await commands(redis)) - calls0;
    await budget.close();
    const rate = admitted / seconds;
    rows.push(
      `| ${rpm.toLocaleString('en-US')} | ${(rpm / 60).toLocaleString('en-US')} | ${Math.round(rate).toLocaleString('en-US')} | ` +
        `${(rate / (rpm / 60)).toFixed(2)} | ${(calls / Math.max(1, admitted)).toFixed(2)} |`,
    );
  }
  console.log(`| budget RPM | refill/s | admitted/s (1 process, ${CONCURRENCY} waiting) | of refill | Redis commands/admission |`);
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
} finally {
  redis.disconnect();
  await server.stop({ removeDir: true });
}
