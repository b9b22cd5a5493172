/**
 * Promise 4 (first half): a worker started while Redis is unreachable says so clearly (where it
 * looked, and how to start one), and exits with code 3 after its connect timeout (10 s) instead of
 * hanging silently or crashing with a stack trace. It does not spin: one message, one exit.
 * (Redis going away mid-run is in redis-restart.test.ts: the workers wait it out.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/devtools/private-redis.js';
import { CliProcess, durabilityEnv, newPrefix } from './helpers.js';

let port: number;

beforeAll(async () => {
  port = await freePort();
});

describe('Redis unreachable at start', () => {
  it('the worker names the address and how to start Redis, and exits 3 once, without a stack trace', async () => {
    const address = `redis://127.0.0.1:${port}`;
    const worker = new CliProcess(['worker'], durabilityEnv(address, newPrefix('unreachable'), null));
    const started = Date.now();
    const exit = await worker.exited;
    const elapsed = Date.now() - started;

    expect(exit).toEqual({ code: 3, signal: null });
    // It waited its connect timeout (not a hot exit loop), and not much longer.
    expect(elapsed).toBeGreaterThanOrEqual(10_000);
    expect(elapsed).toBeLessThan(20_000);
    expect(worker.stdout).toBe('');
    const messages = worker.stderr.split('\n').filter((l) => l.startsWith('claude-batch: '));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`127.0.0.1:${port}`);
    expect(messages[0]).toMatch(/ECONNREFUSED/);
    expect(messages[0]).toMatch(/redis-server/);
    expect(messages[0]).toMatch(/docker compose up -d redis/);
    expect(messages[0]).toMatch(/REDIS_URL/);
    // No stack trace, and the failed reconnects are not logged one by one.
    expect(worker.stderr).not.toMatch(/\n\s+at /);
    expect(worker.stderr.match(/"level":"warn"/g)?.length ?? 0).toBeLessThanOrEqual(1);
    expect(worker.stderr.split('\n').filter((l) => l.trim() !== '').length).toBeLessThanOrEqual(2);
  });
});
