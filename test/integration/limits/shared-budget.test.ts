import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/logger.js';
import {
  OverBudgetError,
  budgetKey,
  createRateBudget,
  type BudgetClass,
  type BudgetLimits,
  type SharedRateBudgetApi,
} from '../../../src/limits/index.js';
import { connect, deleteBudgetKeys, redisTime, uniqueAccount } from './helpers.js';

const MODEL = 'claude-test-1';

describe('shared rate budget on a real Redis', () => {
  const clients: Redis[] = [];
  const budgets: SharedRateBudgetApi[] = [];
  const accounts: string[] = [];
  let admin: Redis;

  beforeAll(() => {
    admin = connect();
  });

  afterAll(async () => {
    await Promise.all(budgets.map((b) => b.close()));
    for (const account of accounts) await deleteBudgetKeys(admin, account);
    for (const c of clients) c.disconnect();
    admin.disconnect();
  });

  /** A budget with its own connection, as another process would have. */
  function budgetFor(
    accountId: string,
    limits: BudgetLimits,
    extra: { classes?: BudgetClass[]; logger?: Logger; refillLeadMs?: number } = {},
  ): SharedRateBudgetApi {
    const redis = connect();
    clients.push(redis);
    const budget = createRateBudget({ redis, accountId, default: limits, ...extra });
    budgets.push(budget);
    return budget;
  }

  function account(tag: string): string {
    const id = uniqueAccount(tag);
    accounts.push(id);
    return id;
  }

  const req = (inputTokens = 10, outputTokens = 10, model = MODEL) => ({ model, inputTokens, outputTokens });

  it('admission in bulk: many waiters at a high rate get no more than the bucket refilled, and unused credit goes back', async () => {
    // 120,000 RPM: 2 a millisecond; the head asks for up to 40 at once and hands them out locally.
    const acct = account('bulk');
    const budget = budgetFor(acct, { rpm: 120_000 });
    await budget.tryAcquire(req());
    // Gone under a process that had seen it: recreated empty, so every admission below waits.
    await admin.del(budgetKey(acct, 'default'));
    const t0 = await redisTime(admin);
    let granted = 0;
    const deadline = performance.now() + 1_000;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < deadline) {
          await budget.acquire(req());
          granted += 1;
        }
      }),
    );
    await budget.close();
    const elapsedMs = (await redisTime(admin)) - t0;
    // Never more than the refill since the bucket was recreated empty.
    expect(granted).toBeLessThanOrEqual(Math.ceil(elapsedMs * 2) + 1);
    // And close to it: the bulk keeps up with the refill (timing, so only a loose floor here;
    // the rate itself is measured in scripts/bench/admission.ts).
    expect(granted).toBeGreaterThan(elapsedMs * 2 * 0.5);
    // The shared bucket charged exactly what was handed out: its level plus the admissions is what
    // refilled (within a few ms of refill for the reads' timing), so no bulk credit was lost.
    const after = budgetFor(acct, { rpm: 120_000 });
    const level = (await after.snapshot()).classes.find((c) => c.name === 'default')!.requests!.level!;
    const refilled = ((await redisTime(admin)) - t0) * 2;
    expect(Math.abs(level + granted - Math.min(refilled, 120_000))).toBeLessThan(12);
  });

  it('grants exactly the capacity in a burst, then names the refill wait of one request', async () => {
    const acct = account('burst');
    const R = 60;
    const lead = 500; // refill of a bucket emptied from full starts this much after the first grant
    const budget = budgetFor(acct, { rpm: R }, { refillLeadMs: lead });
    const t0 = await redisTime(admin);
    let granted = 0;
    let wait = 0;
    for (let i = 0; i < R + 1; i++) {
      const r = await budget.tryAcquire(req());
      if (r.lease) granted++;
      else wait = r.waitMs;
    }
    const t1 = await redisTime(admin);
    const burstMs = t1 - t0;
    expect(burstMs).toBeLessThan(lead); // the burst ended before any refill
    expect(granted).toBe(R);
    // Refill started `lead` ms after the first grant (between t0 and t1); one request refills in 60000/R ms.
    const perRequestMs = 60_000 / R;
    expect(wait).toBeLessThanOrEqual(Math.ceil(lead + perRequestMs));
    expect(wait).toBeGreaterThanOrEqual(Math.floor(lead + perRequestMs - burstMs) - 1);

    // acquire() sleeps that wait and is then granted, no earlier than the refill allows.
    const lease = await budget.acquire(req());
    expect(lease.grantedAt).toBeDefined();
    expect(lease.grantedAt! - t0).toBeGreaterThanOrEqual(lead + perRequestMs - 1);
  });

  it('charges all limits at once: the shortest one decides, and a denial charges nothing', async () => {
    const acct = account('dims');
    const budget = budgetFor(acct, { rpm: 1000, itpm: 6000, otpm: 60_000 });
    expect((await budget.tryAcquire(req(4000, 100))).lease).not.toBeNull();
    const denied = await budget.tryAcquire(req(4000, 100));
    expect(denied.lease).toBeNull();
    // 2000 tokens are missing at 100 tokens/s, and refill starts 500 ms (the default lead) after the first grant.
    expect(denied.waitMs).toBeGreaterThan(20_000);
    expect(denied.waitMs).toBeLessThanOrEqual(20_500);
    const snap = await budget.snapshot();
    const cls = snap.classes.find((c) => c.name === 'default')!;
    expect(cls.requests!.level).toBeGreaterThan(998); // one request charged, not two
    expect(cls.requests!.level).toBeLessThanOrEqual(1000);
    expect(cls.inputTokens!.level).toBeGreaterThanOrEqual(2000);
    expect(cls.inputTokens!.level).toBeLessThan(2100);
    expect(cls.outputTokens!.level).toBeGreaterThanOrEqual(59_900);
  });

  it('settle refunds and charges the difference; input counts cache creation, not cache reads', async () => {
    const acct = account('settle');
    const budget = budgetFor(acct, { itpm: 60_000, otpm: 60_000 }); // 1 token/ms refill
    const level = async () => {
      const c = (await budget.snapshot()).classes.find((x) => x.name === 'default')!;
      return { input: c.inputTokens!.level!, output: c.outputTokens!.level!, at: await redisTime(admin) };
    };
    const lease = await budget.acquire(req(30_000, 20_000));
    const before = await level();
    expect(before.input).toBeLessThan(30_000 + 200);
    await budget.settle(lease, {
      usage: {
        input_tokens: 1000,
        output_tokens: 500,
        cache_creation_input_tokens: 2000,
        cache_read_input_tokens: 9000,
      } as never,
      headers: {},
    });
    const after = await level();
    const refill = after.at - before.at + 5; // tokens refilled between the two looks (1/ms), with slack
    // Input: 30000 reserved, 3000 counted (1000 + 2000 cache creation; cache reads free): 27000 back.
    expect(after.input - before.input).toBeGreaterThanOrEqual(27_000 - 1);
    expect(after.input - before.input).toBeLessThanOrEqual(27_000 + refill);
    // Output: 20000 reserved, 500 produced.
    expect(after.output - before.output).toBeGreaterThanOrEqual(19_500 - 1);

    // A call that used more than estimated is charged the difference, into debt if need be.
    const big = await budget.acquire(req(50_000, 10));
    await budget.settle(big, { usage: { input_tokens: 150_000, output_tokens: 10 }, headers: {} });
    const debt = await level();
    expect(debt.input).toBeLessThan(0);
    const wait = await budget.tryAcquire(req(1000, 10));
    expect(wait.lease).toBeNull();
    expect(wait.waitMs).toBeGreaterThan(-debt.input); // at 1 token/ms: pay the debt, then 1000 more

    // A refund never lifts a bucket above its capacity.
    const acct2 = account('cap');
    const b2 = budgetFor(acct2, { itpm: 60_000 });
    const small = await b2.acquire(req(100, 10));
    await b2.settle(small, { usage: null, headers: {} });
    await b2.settle({ ...small }, { usage: null, headers: {} }); // settled twice: still capped
    const c2 = (await b2.snapshot()).classes[0]!;
    expect(c2.inputTokens!.level).toBe(60_000);
  });

  it('a failed call refunds its tokens but keeps its request', async () => {
    const acct = account('fail');
    const budget = budgetFor(acct, { rpm: 60, itpm: 60_000 });
    const lease = await budget.acquire(req(10_000, 10));
    await budget.settle(lease, { usage: null, headers: {} });
    const c = (await budget.snapshot()).classes[0]!;
    expect(c.requests!.level).toBeLessThan(59.5);
    expect(c.inputTokens!.level).toBeGreaterThan(59_900);
  });

  it('recreates a deleted bucket EMPTY for a process that had seen it (no burst), and keeps working', async () => {
    const acct = account('gone');
    const R = 120;
    const budget = budgetFor(acct, { rpm: R });
    for (let i = 0; i < 10; i++) expect((await budget.tryAcquire(req())).lease).not.toBeNull();
    expect(await admin.del(budgetKey(acct, 'default'))).toBe(1);

    const first = await budget.tryAcquire(req());
    expect(first.lease).toBeNull(); // not a full bucket again
    expect(first.waitMs).toBeGreaterThan(60_000 / R - 20);
    expect(await admin.exists(budgetKey(acct, 'default'))).toBe(1);
    const t0 = await redisTime(admin);
    const lease = await budget.acquire(req());
    expect(lease.grantedAt! - t0).toBeGreaterThan(60_000 / R - 50);

    // A process that never saw the class finds the (recreated) bucket and shares it: no burst either.
    const other = budgetFor(acct, { rpm: R });
    expect((await other.tryAcquire(req())).lease).toBeNull();
  });

  it('a process that never saw the class creates the bucket full', async () => {
    const acct = account('fresh');
    const budget = budgetFor(acct, { rpm: 5 });
    let granted = 0;
    for (let i = 0; i < 6; i++) if ((await budget.tryAcquire(req())).lease) granted++;
    expect(granted).toBe(5);
  });

  it('rejects at once a request larger than a whole bucket, naming the limit, the estimate and the capacity', async () => {
    const acct = account('over');
    const budget = budgetFor(acct, { rpm: 10, itpm: 1000, otpm: 500 });
    const started = Date.now();
    await expect(budget.acquire(req(1001, 10))).rejects.toThrow(OverBudgetError);
    await expect(budget.acquire(req(1001, 10))).rejects.toThrow(
      /1001 input tokens.*ITPM.*1000 input tokens per minute/,
    );
    await expect(budget.acquire(req(10, 501))).rejects.toThrow(/reserves 501 output tokens.*OTPM.*500/);
    expect(Date.now() - started).toBeLessThan(1000);
    // Exactly the capacity is fine.
    expect((await budget.tryAcquire(req(1000, 500))).lease).not.toBeNull();

    // A capacity lowered by the API's headers counts too (checked by the script, for every process).
    const acct2 = account('over2');
    const a = budgetFor(acct2, { itpm: 1000 });
    const b = budgetFor(acct2, { itpm: 1000 });
    const lease = await a.acquire(req(1, 1));
    await a.settle(lease, {
      usage: { input_tokens: 1, output_tokens: 1 },
      headers: { 'anthropic-ratelimit-input-tokens-limit': '800' },
    });
    await expect(b.acquire(req(900, 10))).rejects.toThrow(OverBudgetError);
    await expect(b.acquire(req(900, 10))).rejects.toThrow(/900 input tokens.*800.*as the API reports it/);
  });

  it('a 429 holds the class for every process until retry-after passes; other classes keep flowing', async () => {
    const acct = account('hold');
    const classes: BudgetClass[] = [{ match: 'claude-haiku-*', rpm: 1000 }];
    const a = budgetFor(acct, { rpm: 1000 }, { classes });
    const b = budgetFor(acct, { rpm: 1000 }, { classes });
    const lease = await a.acquire(req());
    const t0 = await redisTime(admin);
    await a.settle(lease, { usage: null, headers: { 'retry-after': '2' }, rateLimitedForMs: 1500 });

    const seen = await b.tryAcquire(req());
    expect(seen.lease).toBeNull();
    expect(seen.waitMs).toBeGreaterThan(1300);
    expect(seen.waitMs).toBeLessThanOrEqual(1500);
    // Another class is not held.
    expect((await b.tryAcquire(req(10, 10, 'claude-haiku-9'))).lease).not.toBeNull();
    const snap = await b.snapshot();
    expect(snap.classes.find((c) => c.name === 'default')!.holdMs).toBeGreaterThan(1000);
    expect(snap.classes.find((c) => c.name === 'claude-haiku-*')!.holdMs).toBe(0);

    const after = await b.acquire(req());
    expect(after.grantedAt! - t0).toBeGreaterThanOrEqual(1500 - 1);
  });

  it('adapts to lower limits reported by the headers (shared, logged once) and never exceeds what remains', async () => {
    const acct = account('adapt');
    const warnings: unknown[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (msg, fields) => warnings.push({ msg, ...fields }),
      error() {},
      child: () => logger,
    };
    const a = budgetFor(acct, { rpm: 600, itpm: 100_000 }, { logger, refillLeadMs: 0 });
    const b = budgetFor(acct, { rpm: 600, itpm: 100_000 }, { refillLeadMs: 0 });
    const headers = {
      'anthropic-ratelimit-requests-limit': '60',
      'anthropic-ratelimit-requests-remaining': '59',
      'anthropic-ratelimit-requests-reset': new Date(Date.now() + 1000).toISOString(),
      'anthropic-ratelimit-input-tokens-limit': '100000',
      'anthropic-ratelimit-input-tokens-remaining': '99000',
    };
    for (let i = 0; i < 3; i++) {
      const lease = await a.acquire(req());
      await a.settle(lease, { usage: { input_tokens: 10, output_tokens: 10 }, headers });
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ class: 'default', limit: 'rpm', configured: 600, reported: 60 });

    const snap = await b.snapshot();
    const cls = snap.classes[0]!;
    expect(cls.requests).toMatchObject({ configured: 600, capacity: 60, reported: 60 });
    expect(cls.requests!.level).toBeLessThanOrEqual(60);
    expect(cls.inputTokens).toMatchObject({ configured: 100_000, capacity: 100_000 });
    expect(cls.inputTokens!.level).toBeLessThanOrEqual(99_000 + 1000);

    // The headers say nothing remains: no process sends until it has refilled (1 request/s at 60 RPM).
    const lease = await a.acquire(req());
    await a.settle(lease, {
      usage: { input_tokens: 10, output_tokens: 10 },
      headers: { ...headers, 'anthropic-ratelimit-requests-remaining': '0' },
    });
    // (The API floors `remaining`: "0" means less than one, so at most one more may go.)
    const snapAfter = (await b.snapshot()).classes[0]!;
    expect(snapAfter.requests!.level).toBeLessThan(1.05); // plus a few ms of refill
    if ((await b.tryAcquire(req())).lease === null) throw new Error('expected the one request left');
    const wait = await b.tryAcquire(req());
    expect(wait.lease).toBeNull();
    expect(wait.waitMs).toBeGreaterThan(900);
    expect(wait.waitMs).toBeLessThanOrEqual(1000);

    // A later, higher reported limit (up to the configured one) is used again.
    const l3 = await a.acquire(req());
    await a.settle(l3, {
      usage: { input_tokens: 10, output_tokens: 10 },
      headers: { 'anthropic-ratelimit-requests-limit': '4000' },
    });
    const again = (await b.snapshot()).classes[0]!;
    expect(again.requests).toMatchObject({ capacity: 600, reported: 4000 });
  });

  it('acquire rejects promptly when aborted while waiting, whether at the head or queued behind it', async () => {
    const acct = account('abort');
    const budget = budgetFor(acct, { rpm: 12 }); // one request per 5 s
    for (let i = 0; i < 12; i++) await budget.acquire(req());
    const head = new AbortController();
    const queued = new AbortController();
    const p1 = budget.acquire(req(), head.signal);
    const p2 = budget.acquire(req(), queued.signal);
    const issued = Date.now();
    const p3 = budget.acquire(req(), AbortSignal.timeout(150));
    // The last one's own deadline passing is the event: by then the two before it are waiting.
    await expect(p3).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - issued).toBeLessThan(150 + 500);
    const started = Date.now();
    queued.abort();
    await expect(p2).rejects.toMatchObject({ name: 'AbortError' });
    head.abort();
    await expect(p1).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(500);
    // Nothing was charged by the aborted requests, then or later: the next token refills (5 s
    // after the drain) and stays in the bucket. Had the three kept waiting, they would have taken
    // the next three, and the level would not reach 1 before 20 s.
    await expect
      .poll(async () => (await budget.snapshot()).classes[0]!.requests!.level, {
        timeout: 12_000,
        interval: 200,
      })
      .toBeGreaterThanOrEqual(1);
    // An already aborted signal rejects without waiting.
    await expect(budget.acquire(req(), AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('classes with no limit and nothing learned admit at once, never waiting on Redis', async () => {
    // A Redis that never answers: with no limit configured and none stated by the API yet, an
    // admission must not wait on it (it only looks, in the background, for limits another
    // process learned from the API's headers).
    const redis = new Redis({
      lazyConnect: true,
      port: 1,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    const budget = createRateBudget({
      redis,
      accountId: 'unused',
      classes: [{ match: 'claude-opus-*', rpm: 0 }],
      default: {},
    });
    for (let i = 0; i < 100; i++) {
      const lease = await budget.acquire(req(1_000_000, 1_000_000, i % 2 ? 'claude-opus-4' : 'x'));
      await budget.settle(lease, { usage: null, headers: { 'retry-after': '5' }, rateLimitedForMs: 5000 });
    }
    expect(budget.describe().classes.every((c) => c.key === null)).toBe(true);
    await budget.close();
    redis.disconnect();
    // Nothing learned under this account: the snapshot shows no budget.
    const fresh = createRateBudget({ redis: admin, accountId: `unlearned-${Date.now()}`, default: {} });
    const snap = await fresh.snapshot();
    expect(snap.classes.every((c) => c.requests === null && !c.exists)).toBe(true);
    await fresh.close();
  });

  it('keys the bucket by account and class under one hash tag, whatever the runner prefix', () => {
    const key = budgetKey('0123456789abcdef', 'claude-haiku-*');
    expect(key).toBe('{cb-budget-0123456789abcdef-claude-haiku-%2A}:state');
    expect(budgetKey('0123456789abcdef', 'a{b}:c')).toBe('{cb-budget-0123456789abcdef-a%7Bb%7D%3Ac}:state');
    const budget = createRateBudget({
      redis: admin,
      accountId: '0123456789abcdef',
      classes: [{ match: 'claude-haiku-*', itpm: 10 }],
      default: { rpm: 1 },
    });
    expect(budget.describe().classes.map((c) => c.key)).toEqual([
      '{cb-budget-0123456789abcdef-claude-haiku-%2A}:state',
      '{cb-budget-0123456789abcdef-default}:state',
    ]);
    expect(() => createRateBudget({ redis: admin, accountId: 'sk-ant-secret{x}', default: {} })).toThrow(
      /account id/,
    );
  });
});
