import { afterEach, describe, expect, it } from 'vitest';
import { createRateBudget, type SharedRateBudgetApi } from '../../../src/limits/index.js';
import { connect, redisTime, sleep, TestRedisServer, uniqueAccount } from './helpers.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../../../src/logger.js';

const req = { model: 'claude-test', inputTokens: 10, outputTokens: 10 };

describe('the budget survives a Redis restart', () => {
  let server: TestRedisServer | null = null;
  const clients: Redis[] = [];
  const budgets: SharedRateBudgetApi[] = [];

  afterEach(async () => {
    await Promise.all(budgets.splice(0).map((b) => b.close()));
    for (const c of clients.splice(0)) c.disconnect();
    await server?.stop();
    server = null;
  });

  for (const appendonly of [true, false]) {
    it(`${appendonly ? 'with AOF (everysec)' : 'without persistence'}: acquires resume, no burst past the budget`, async () => {
      server = await TestRedisServer.start({ appendonly });
      const redis = connect(server.url);
      redis.on('error', () => {}); // reconnects are expected here
      const admin = connect(server.url);
      admin.on('error', () => {});
      clients.push(redis, admin);
      const R = 120; // 2/s: one request per 500 ms
      const budget = createRateBudget({ redis, accountId: uniqueAccount('restart'), default: { rpm: R } });
      budgets.push(budget);

      // A second process whose connection fails commands during the outage instead of queueing them:
      // acquire must retry those errors, not reject.
      const impatient = connect(server.url, { maxRetriesPerRequest: 1 });
      impatient.on('error', () => {});
      clients.push(impatient);
      const troubles: string[] = [];
      const logger: Logger = {
        debug() {},
        info() {},
        warn: (msg) => troubles.push(msg),
        error: (msg) => troubles.push(msg),
        child: () => logger,
      };
      const other = createRateBudget({
        redis: impatient,
        accountId: budget.describe().accountId,
        default: { rpm: R },
        logger,
      });
      budgets.push(other);

      const t0 = await redisTime(admin);
      for (let i = 0; i < R; i++) await budget.acquire(req); // the whole burst
      await sleep(1_100); // let everysec write the AOF
      const beforeKill = await redisTime(admin);
      const granted: number[] = [];
      // Workers keep asking across the outage; their commands wait for Redis to come back.
      const stop = new AbortController();
      const loop = (b: SharedRateBudgetApi) =>
        (async () => {
          while (!stop.signal.aborted) {
            try {
              const lease = await b.acquire(req, stop.signal);
              granted.push(lease.grantedAt!);
            } catch (err) {
              if (stop.signal.aborted) return;
              throw err;
            }
          }
        })();
      const loops = Promise.all([loop(budget), loop(other)]);
      await sleep(200);
      await server.kill();
      await sleep(1_000);
      await server.startProcess();
      await sleep(2_000);
      stop.abort();
      await loops;
      const end = await redisTime(admin);

      // The bucket came back drained (AOF) or recreated empty (this process had seen it): what was
      // granted after the burst is at most what refilled since, plus one request of rounding.
      const refilledSinceBurst = ((end - t0) * R) / 60_000;
      expect(granted.length).toBeLessThanOrEqual(Math.floor(refilledSinceBurst) + 1);
      // The impatient connection's errors were retried (logged once), not thrown.
      expect(troubles).toContain('Redis is not answering the rate budget; retrying');
      // And it keeps working after the restart.
      const afterRestart = granted.filter((t) => t > beforeKill + 500);
      expect(afterRestart.length).toBeGreaterThan(0);
    });
  }
});
