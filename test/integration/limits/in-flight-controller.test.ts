/**
 * The in-flight controller on a real Redis, each controller with its own connection as separate
 * processes would have: free until a limit is known, the limit learned from a concurrency 429 and
 * shared, the probe, and the lease of a vanished holder coming back by itself.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  InFlightController,
  readConcurrencyCaps,
  type InFlightLease,
} from '../../../src/limits/in-flight-controller.js';
import { accountConcurrencyClassesKey } from '../../../src/redis/keys.js';
import { connect, deleteBudgetKeys, uniqueAccount } from './helpers.js';

describe('in-flight controller', () => {
  const clients: Redis[] = [];
  const controllers: InFlightController[] = [];
  const accounts: string[] = [];
  let admin: Redis;

  beforeAll(() => {
    admin = connect();
  });

  afterAll(async () => {
    for (const c of controllers) c.close();
    for (const account of accounts) {
      await deleteBudgetKeys(admin, account);
      await admin.del(accountConcurrencyClassesKey(account));
    }
    for (const c of clients) c.disconnect();
    admin.disconnect();
  });

  function account(tag: string): string {
    const id = uniqueAccount(tag);
    accounts.push(id);
    return id;
  }

  function controller(
    accountId: string,
    extra: Partial<ConstructorParameters<typeof InFlightController>[0]> = {},
  ): { ctl: InFlightController; redis: Redis; commands: () => number } {
    const redis = connect();
    clients.push(redis);
    let sent = 0;
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = (...args: Parameters<typeof send>) => {
      sent += 1;
      return send(...args);
    };
    const ctl = new InFlightController({ redis, accountId, watchMs: 100, pollMs: 50, ...extra });
    controllers.push(ctl);
    return { ctl, redis, commands: () => sent };
  }

  it('costs no Redis round trip per request while no limit is known', async () => {
    const { ctl, commands } = controller(account('free'), { watchMs: 60_000 });
    const before = commands();
    const leases = await Promise.all(Array.from({ length: 50 }, () => ctl.acquire('c')));
    for (const lease of leases) await ctl.release(lease);
    // One look (at most) whether another process learned a limit, none per request.
    expect(commands() - before).toBeLessThanOrEqual(1);
  });

  it('learns the limit from a concurrency 429 (in flight minus one), and every process uses it', async () => {
    const id = account('learn');
    const a = controller(id);
    const b = controller(id);
    const held = await Promise.all(Array.from({ length: 5 }, () => a.ctl.acquire('c')));
    // Five in flight when the fifth is refused: the limit is four.
    await a.ctl.release(held[4]!, { concurrencyLimited: true });
    expect((await readConcurrencyCaps(a.redis, [id]))[0]).toMatchObject({
      learned: 4,
      inFlight: 4,
      limited: 1,
    });
    await a.ctl.release(held[0]!);
    // B (another process) sees it within its watch interval (its requests until then go free).
    await vi.waitFor(
      async () => {
        await b.ctl.release(await b.ctl.acquire('c'));
        expect(b.ctl.isLimited('c')).toBe(true);
      },
      { timeout: 3_000, interval: 50 },
    );
    // A holds three: B gets the fourth slot, and its next request waits (two looks at Redis, no grant).
    const fourth = await b.ctl.acquire('c');
    let got: InFlightLease | null = null;
    const looked = b.commands();
    const pending = b.ctl.acquire('c').then((l) => (got = l));
    await expect.poll(() => b.commands() - looked, { timeout: 2_000 }).toBeGreaterThanOrEqual(2);
    expect(got).toBeNull();
    await a.ctl.release(held[1]!);
    await pending;
    expect((await readConcurrencyCaps(a.redis, [id]))[0]).toMatchObject({ learned: 4, inFlight: 4 });
    for (const lease of [got!, fourth]) await b.ctl.release(lease);
    for (const lease of held.slice(2, 4)) await a.ctl.release(lease);
    expect((await readConcurrencyCaps(a.redis, [id]))[0]).toMatchObject({ inFlight: 0 });
  });

  it('after a quiet period with requests waiting it raises the cap by one; a 429 puts it back and doubles the quiet period', async () => {
    const id = account('probe');
    const { ctl, redis } = controller(id, { probeQuietMs: 300 });
    const first = await Promise.all([ctl.acquire('c'), ctl.acquire('c')]);
    await ctl.release(first[1], { concurrencyLimited: true }); // learned 1
    const start = Date.now();
    // A second request waits for a slot; after the quiet period it goes as the probe.
    const probe = await ctl.acquire('c');
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
    expect((await readConcurrencyCaps(redis, [id]))[0]).toMatchObject({ learned: 2, probes: 1, inFlight: 2 });
    await ctl.release(probe, { concurrencyLimited: true });
    expect((await readConcurrencyCaps(redis, [id]))[0]).toMatchObject({
      learned: 1,
      failedProbes: 1,
      quietMs: 600,
    });
    await ctl.release(first[0]);
  });

  it('a lease whose holder vanished comes back by itself after the lease TTL', async () => {
    const id = account('expiry');
    const gone = controller(id, { leaseTtlMs: 400 });
    const alive = controller(id, { leaseTtlMs: 400 });
    gone.ctl.setTarget('c', 1);
    alive.ctl.setTarget('c', 1);
    await gone.ctl.acquire('c');
    // Its holder dies (SIGKILL): no release, no renewal.
    gone.ctl.close();
    const start = Date.now();
    const lease = await alive.ctl.acquire('c');
    const waited = Date.now() - start;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(2_000);
    // A holder that lives keeps its lease past the TTL (renewed).
    let second: InFlightLease | null = null;
    void alive.ctl.acquire('c').then((l) => (second = l));
    await expect.poll(() => second, { timeout: 1_000 }).toBeNull();
    await alive.ctl.release(lease);
    await expect.poll(() => second, { timeout: 1_000 }).not.toBeNull();
    await alive.ctl.release(second!);
  });
});
