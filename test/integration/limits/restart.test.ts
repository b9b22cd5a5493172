import { afterEach, describe, expect, it, vi } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../../src/devtools/private-redis.js';
import { createRateBudget, type SharedRateBudgetApi } from '../../../src/limits/index.js';
import { connect, redisTime, uniqueAccount } from './helpers.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../../../src/logger.js';

const req = { model: 'claude-test', inputTokens: 10, outputTokens: 10 };

describe('the budget survives a Redis restart', () => {
  let server: PrivateRedis | null = null;
  const clients: Redis[] = [];
  const budgets: SharedRateBudgetApi[] = [];

  afterEach(async () => {
    await Promise.all(budgets.splice(0).map((b) => b.close()));
    for (const c of clients.splice(0)) c.disconnect();
    await server?.stop({ signal: 'SIGKILL', removeDir: true });
    server = null;
  });

  for (const appendonly of [true, false]) {
    it(`${appendonly ? 'with AOF (everysec)' : 'without persistence'}: acquires resume, no burst past the budget`, async () => {
      server = await startPrivateRedis({ appendonly });
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
      // With AOF, the drained bucket is in the file before the kill: nothing left in Redis's AOF
      // buffer (everysec may hold writes back while an fsync runs). A SIGKILL keeps what was written.
      if (appendonly) {
        await expect
          .poll(async () => /aof_buffer_length:(\d+)/.exec(await admin.info('persistence'))?.[1], {
            timeout: 15_000,
            interval: 50,
          })
          .toBe('0');
      }
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
      // Killed while they are asking (one was granted after the burst)…
      await expect.poll(() => granted.length, { timeout: 15_000, interval: 20 }).toBeGreaterThan(0);
      const { port, dir } = server;
      await server.stop({ signal: 'SIGKILL' });
      // …down until the impatient connection has failed a command and said so…
      await vi.waitFor(() => expect(troubles).toContain('Redis is not answering the rate budget; retrying'), {
        timeout: 20_000,
        interval: 20,
      });
      server = await startPrivateRedis({ appendonly, port, dir });
      // …and back: run until a request is granted by the restarted server.
      const restartedAt = Date.now(); // Redis runs on this host: its TIME and this clock agree
      await expect
        .poll(() => granted.filter((t) => t > restartedAt).length, { timeout: 20_000, interval: 50 })
        .toBeGreaterThan(0);
      stop.abort();
      await loops;
      const end = await redisTime(admin);

      // The bucket came back drained (AOF) or recreated empty (this process had seen it): what was
      // granted after the burst is at most what refilled since, plus one request of rounding.
      const refilledSinceBurst = ((end - t0) * R) / 60_000;
      expect(granted.length).toBeLessThanOrEqual(Math.floor(refilledSinceBurst) + 1);
      // (The impatient connection's errors were retried and logged, not thrown: awaited above.)
    });
  }
});
