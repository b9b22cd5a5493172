/**
 * The cost ledger on a real Redis, each ledger on its own connection as separate worker processes
 * would have: concurrent reservations never pass the ceiling, a settlement lower or higher than
 * the reservation, `exceeded` only once nothing is in flight (and it pauses the batch), a waiting
 * reservation woken by a settlement, and the lease of a vanished holder charged and given back.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CostLedger, type CostPauseTemplate } from '../../../src/limits/cost-ledger.js';
import { createRedis, type RedisClient } from '../../../src/redis/connection.js';
import { KeyLayout } from '../../../src/redis/keys.js';
import { deletePrefix, REDIS_URL, uniquePrefix } from '../../helpers/runtime.js';

const PAUSE: CostPauseTemplate = {
  reason: 'cost_ceiling',
  message: 'test',
  since: new Date(0).toISOString(),
  fix: 'resume',
};

describe('cost ledger', () => {
  const prefix = uniquePrefix('cost-ledger');
  const keys = new KeyLayout(prefix);
  const clients: RedisClient[] = [];
  const ledgers: CostLedger[] = [];
  let admin: RedisClient;

  const connect = (): RedisClient => {
    const redis = createRedis({ url: REDIS_URL, clusterNodes: [] });
    clients.push(redis);
    return redis;
  };
  const ledger = (leaseTtlMs = 30_000): CostLedger => {
    const l = new CostLedger({ redis: connect(), keys, leaseTtlMs, maxPollMs: 50 });
    ledgers.push(l);
    return l;
  };
  let n = 0;
  /** A batch record with a ceiling (nano-dollars). */
  const batch = async (ceiling: number | null): Promise<string> => {
    const id = `b${++n}`;
    await admin.hset(keys.batch(id), 'id', id, ...(ceiling === null ? [] : ['max_cost', String(ceiling)]));
    return id;
  };

  beforeAll(() => {
    admin = connect();
  });

  afterAll(async () => {
    for (const l of ledgers) l.close();
    for (const c of clients) c.disconnect();
    await deletePrefix(prefix);
  });

  it('grants concurrent reservations from two connections up to the ceiling, never past it', async () => {
    const id = await batch(1_000);
    const [a, b] = [ledger(), ledger()];
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).tryReserve(id, 100, PAUSE)),
    );
    const granted = answers.filter((x) => x.kind === 'granted');
    expect(granted).toHaveLength(10);
    expect(answers.filter((x) => x.kind === 'wait')).toHaveLength(30);
    expect(await a.read(id)).toEqual({ ceiling: 1_000, spent: 0, reserved: 1_000 });
    for (const g of granted) if (g.kind === 'granted') await a.settle(g.reservation, 0);
    expect(await b.read(id)).toEqual({ ceiling: 1_000, spent: 0, reserved: 0 });
  });

  it('settles lower and higher than reserved, and says exceeded only when nothing is in flight', async () => {
    const id = await batch(1_000);
    const l = ledger();
    const first = await l.tryReserve(id, 600, PAUSE);
    const second = await l.tryReserve(id, 300, PAUSE);
    expect([first.kind, second.kind]).toEqual(['granted', 'granted']);
    // 900 reserved: 200 does not fit, but what is in flight may settle lower.
    expect((await l.tryReserve(id, 200, PAUSE)).kind).toBe('wait');
    if (first.kind !== 'granted' || second.kind !== 'granted') throw new Error('not granted');
    await l.settle(first.reservation, 250); // lower: 350 back
    expect(await l.read(id)).toEqual({ ceiling: 1_000, spent: 250, reserved: 300 });
    const third = await l.tryReserve(id, 200, PAUSE);
    expect(third.kind).toBe('granted');
    await l.settle(second.reservation, 400); // higher than reserved: charged as billed
    if (third.kind !== 'granted') throw new Error('not granted');
    await l.settle(third.reservation, 200);
    expect(await l.read(id)).toEqual({ ceiling: 1_000, spent: 850, reserved: 0 });
    // 850 + 200 > 1,000 with nothing in flight: exceeded, and the batch is paused by it.
    const over = await l.tryReserve(id, 200, PAUSE);
    expect(over).toMatchObject({ kind: 'exceeded', state: { spent: 850, reserved: 0, ceiling: 1_000 } });
    expect(await admin.sismember(keys.pausedBatches(), id)).toBe(1);
    expect(JSON.parse((await admin.hget(keys.batch(id), 'pause:cost_ceiling'))!)).toMatchObject({
      reason: 'cost_ceiling',
      spent_nano: 850,
      ceiling_nano: 1_000,
    });
    // Paused: even what would fit is not granted until resumed.
    expect((await l.tryReserve(id, 100, PAUSE)).kind).toBe('paused');
    expect(await l.resume(id, 2_000)).toEqual({ ceiling: 2_000, spent: 850, reserved: 0 });
    expect(await admin.sismember(keys.pausedBatches(), id)).toBe(0);
    expect((await l.tryReserve(id, 200, PAUSE)).kind).toBe('granted');
  });

  it('wakes a waiting reservation when one in flight settles', async () => {
    const id = await batch(1_000);
    const [a, b] = [ledger(), ledger()];
    const held = await a.tryReserve(id, 900, PAUSE);
    if (held.kind !== 'granted') throw new Error('not granted');
    const waiting = b.reserve(id, 500, PAUSE);
    let answered = false;
    void waiting.then(() => (answered = true));
    // Still waiting after several polls: it neither fits nor is exceeded while 900 is in flight.
    await vi.waitFor(async () => expect(Number(await admin.hget(keys.batch(id), 'cost_reserved'))).toBe(900));
    expect(answered).toBe(false);
    await a.settle(held.reservation, 100);
    expect((await waiting)?.kind).toBe('granted');
    expect(await a.read(id)).toMatchObject({ spent: 100, reserved: 500 });
  });

  it('takes back the reservation of a holder that stopped renewing, charged at its worst case', async () => {
    const id = await batch(1_000);
    const dead = ledger(300);
    const alive = ledger(300);
    const lost = await dead.tryReserve(id, 700, PAUSE);
    const kept = await alive.tryReserve(id, 200, PAUSE);
    expect([lost.kind, kept.kind]).toEqual(['granted', 'granted']);
    dead.close(); // as a SIGKILLed worker: no renewal, no settlement
    // The live holder's lease outlives several TTLs (renewed); the dead one's is charged as spent.
    await vi.waitFor(
      async () => expect(await alive.read(id)).toEqual({ ceiling: 1_000, spent: 700, reserved: 200 }),
      {
        timeout: 5_000,
        interval: 100,
      },
    );
    // eslint-disable-next-line no-restricted-syntax -- time must pass: the live lease must survive beyond its TTL
    await new Promise((r) => setTimeout(r, 700));
    expect(await alive.read(id)).toEqual({ ceiling: 1_000, spent: 700, reserved: 200 });
    if (kept.kind !== 'granted') throw new Error('not granted');
    await alive.settle(kept.reservation, 50);
    expect(await alive.read(id)).toEqual({ ceiling: 1_000, spent: 750, reserved: 0 });
    // A late settlement of the reservation taken back changes nothing (it was charged already).
    if (lost.kind !== 'granted') throw new Error('not granted');
    await alive.settle(lost.reservation, 10);
    expect(await alive.read(id)).toEqual({ ceiling: 1_000, spent: 750, reserved: 0 });
  });

  it('leaves a batch without a ceiling alone', async () => {
    const id = await batch(null);
    const l = ledger();
    expect(await l.tryReserve(id, 1e12, PAUSE)).toEqual({ kind: 'unlimited' });
    expect(await admin.hgetall(keys.batch(id))).toEqual({ id });
  });
});
