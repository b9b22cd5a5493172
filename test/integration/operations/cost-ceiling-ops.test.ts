/**
 * The operator's side of the cost ceiling (issue 15), without workers: what submit refuses and
 * freezes, the dry run's outlook, a resubmit that may not move the ceiling, and a batch paused at
 * its ceiling as status, the dashboard page, /metrics and `resume BATCH --max-cost` show and lift it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBatchStatus } from '../../../src/cli/format-status.js';
import { createProgressReporter } from '../../../src/cli/progress.js';
import { formatDryRun } from '../../../src/cli/submit-command.js';
import { renderBatchPage } from '../../../src/dashboard/batch-page.js';
import { readSnapshot } from '../../../src/dashboard/dashboard-data.js';
import { renderMetrics } from '../../../src/dashboard/metrics.js';
import { BatchConflictError, InputValidationError } from '../../../src/errors/runner-errors.js';
import { pauseQueue, resumeQueue } from '../../../src/breakers/breakers.js';
import { CostLedger } from '../../../src/limits/cost-ledger.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { resumeBatch } from '../../../src/operations/resume-batch.js';
import { DEFAULT_PRICE_TABLE } from '../../../src/pricing/price-table.js';
import { canaryField, canaryIdField, releaseCanary } from '../../../src/queue/canary.js';
import { SHARE_REASON } from '../../../src/queue/holds.js';
import type { RequestJobData } from '../../../src/queue/jobs.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

const MODEL = 'claude-sonnet-4-6';
const PAUSE = {
  reason: 'cost_ceiling',
  message: 'reached',
  since: '2026-12-02T00:00:00.000Z',
  fix: 'resume it',
} as const;

let runtime: Runtime;

beforeAll(async () => {
  runtime = await testRuntime('cost-ops');
});

afterAll(async () => {
  await disposeRuntime(runtime);
});

const lines = (n: number, extra = {}) =>
  Array.from({ length: n }, (_, i) =>
    request(`r-${i}`, `Question ${i}`, { model: MODEL, max_tokens: 1_000, ...extra }),
  );

describe('submit with --max-cost', () => {
  it('refuses a bad value, an unknown model and server tools, naming each', async () => {
    for (const bad of [0, -1, Number.NaN, '5' as unknown as number]) {
      const err = await submitBatch(runtime, { input: jsonlSource(lines(2)), maxCost: bad }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InputValidationError);
      expect((err as Error).message).toMatch(
        /^--max-cost: must be a positive number of US dollars, got .* \((number|string)\)$/,
      );
    }
    const unknown = await submitBatch(runtime, {
      input: jsonlSource([...lines(2), request('odd', 'x', { model: 'claude-unknown-9', max_tokens: 10 })]),
      maxCost: 5,
    }).catch((e: unknown) => e);
    expect((unknown as Error).message).toMatch(/no price for model claude-unknown-9 .*--prices FILE/s);
    // Without a ceiling the same batch is fine to submit (as a dry run here).
    await expect(
      submitBatch(runtime, {
        input: jsonlSource([request('odd', 'x', { model: 'claude-unknown-9', max_tokens: 10 })]),
        dryRun: true,
      }),
    ).resolves.toMatchObject({ outcome: 'dry-run' });

    const tools = await submitBatch(runtime, {
      input: jsonlSource([
        ...lines(1),
        request('search', 'x', {
          model: MODEL,
          max_tokens: 10,
          tools: [{ type: 'web_search_20250305', name: 'web_search' }],
        }),
      ]),
      maxCost: 5,
    }).catch((e: unknown) => e);
    expect(tools).toBeInstanceOf(InputValidationError);
    expect((tools as InputValidationError).errors.map((e) => e.format())).toEqual([
      expect.stringMatching(/test\.jsonl:2: params \(search\): tools\[0\] has type "web_search_20250305"/),
    ]);
  });

  it('says in the dry run whether the ceiling is likely to be reached', async () => {
    const dry = (maxCost: number) =>
      submitBatch(runtime, { input: jsonlSource(lines(100)), maxCost, dryRun: true, autoCache: false });
    // 100 requests x 1,000 output tokens at $15/MTok: at most ~$1.50.
    expect(formatDryRun(await dry(100), DEFAULT_PRICE_TABLE)).toMatch(
      /ceiling \$100: not expected to be reached/,
    );
    expect(formatDryRun(await dry(0.5), DEFAULT_PRICE_TABLE)).toMatch(
      /ceiling \$0\.5: reached if replies average more than ~\d+ % of their max_tokens/,
    );
    expect(formatDryRun(await dry(0.0001), DEFAULT_PRICE_TABLE)).toMatch(
      /ceiling \$0\.0001: one request may cost up to \$0\.01\d+ at worst, more than the whole ceiling/,
    );
  });

  it('freezes prices and the ceiling at creation; a resubmit asking for another ceiling is refused', async () => {
    const input = () => jsonlSource(lines(3), 'freeze.jsonl');
    const { batchId } = await submitBatch(runtime, { input: input(), maxCost: 2 });
    expect(JSON.parse((await runtime.redis.hget(runtime.keys.batch(batchId), 'prices'))!)).toEqual({
      [MODEL]: { input: 3, output: 15, cache_write: 3.75, cache_write_1h: 6, cache_read: 0.3 },
    });
    expect((await getBatchStatus(runtime, batchId))?.cost).toEqual({
      ceiling_usd: 2,
      spent_usd: 0,
      reserved_usd: 0,
    });
    await expect(submitBatch(runtime, { input: input(), maxCost: 2 })).resolves.toMatchObject({
      outcome: 'resumed',
    });
    await expect(submitBatch(runtime, { input: input() })).resolves.toMatchObject({ outcome: 'resumed' });
    const moved = await submitBatch(runtime, { input: input(), maxCost: 3 }).catch((e: unknown) => e);
    expect(moved).toBeInstanceOf(BatchConflictError);
    expect((moved as Error).message).toContain(`\`claude-batch resume ${batchId} --max-cost 3\``);
  });

  it('writes an auto-cached prefix with the 1-hour TTL, so a pause of up to an hour keeps it', async () => {
    // Well over claude-sonnet-4-6's minimum cacheable length (2,048 tokens).
    const system = Array.from({ length: 400 }, (_, i) => `Rule ${i}: answer briefly and exactly.`).join(' ');
    const input = () => jsonlSource(lines(20, { system }), 'ttl.jsonl');
    const breakpointOf = async (batchId: string) => {
      const json = Object.values(await runtime.redis.hgetall(runtime.keys.held(batchId, SHARE_REASON)))[0];
      const data = JSON.parse(json!) as RequestJobData;
      return (data.params.system as Array<{ cache_control?: unknown }>).at(-1)?.cache_control;
    };
    const capped = await submitBatch(runtime, { input: input(), maxCost: 5, canary: false });
    expect(capped.autoCache?.ttl).toBe('1h');
    expect(await breakpointOf(capped.batchId)).toEqual({ type: 'ephemeral', ttl: '1h' });
    // Without a ceiling: the 5-minute TTL, and so a batch of its own (the TTL is part of the input sent).
    const live = await submitBatch(runtime, { input: input(), canary: false });
    expect(live.batchId).not.toBe(capped.batchId);
    expect(await breakpointOf(live.batchId)).toEqual({ type: 'ephemeral' });
  });
});

describe('a batch paused at its ceiling', () => {
  it('shows in status, the dashboard and /metrics, and resume --max-cost lifts it', async () => {
    const { batchId } = await submitBatch(runtime, {
      input: jsonlSource(lines(5), 'paused.jsonl'),
      maxCost: 0.01,
    });
    const other = await submitBatch(runtime, { input: jsonlSource(lines(2), 'other.jsonl') });
    const ledger = new CostLedger({ redis: runtime.redis, keys: runtime.keys });
    try {
      const first = await ledger.tryReserve(batchId, 6_000_000, PAUSE);
      if (first.kind !== 'granted') throw new Error(`not granted: ${first.kind}`);
      await ledger.settle(first.reservation, 4_000_000);
      expect((await ledger.tryReserve(batchId, 7_000_000, PAUSE)).kind).toBe('exceeded');
    } finally {
      ledger.close();
    }

    const status = await getBatchStatus(runtime, batchId);
    expect(status?.processing_status).toBe('paused');
    expect(status?.paused).toEqual([
      {
        scope: 'batch',
        reason: 'cost_ceiling',
        message: 'reached',
        since: PAUSE.since,
        fix: 'resume it',
        spent_usd: 0.004,
        ceiling_usd: 0.01,
      },
    ]);
    expect(status?.cost).toEqual({ ceiling_usd: 0.01, spent_usd: 0.004, reserved_usd: 0 });
    expect((await getBatchStatus(runtime, other.batchId))?.paused).toEqual([]);
    expect(formatBatchStatus(status!)).toMatch(/cost {8}\$0\.0040 spent of a \$0\.01 ceiling \(40%\)/);
    expect(formatBatchStatus(status!)).toMatch(
      /PAUSED {6}this batch, at its cost ceiling: \$0\.0040 spent of \$0\.01/,
    );

    // status --watch and run: the progress line carries the spend and the pause with its fix.
    let line = '';
    const progress = createProgressReporter(
      { isTTY: false, write: (t: string) => ((line += t), true) } as never,
      0,
    );
    progress.update(status!);
    expect(line).toMatch(/\$0\.00\/\$0\.01 paused \(cost_ceiling: resume it\)/);

    const snapshot = await readSnapshot(runtime);
    const page = renderBatchPage({
      snapshot,
      prices: DEFAULT_PRICE_TABLE,
      prefix: runtime.keys.bullPrefix,
      readOnly: true,
      refreshSeconds: 0,
      boardPath: 'queues',
    });
    expect(page).toContain(`data-ceiling-paused="${batchId}"`);
    expect(page).toContain('data-batch-pause="cost_ceiling"');
    expect(page).toMatch(/data-cost-ceiling>\s*\$0\.01 \(40% spent\)/);
    const metrics = await renderMetrics({ stats: {}, snapshot, prices: DEFAULT_PRICE_TABLE });
    expect(metrics).toContain(`claude_batch_cost_usd{batch="${batchId}",kind="spent"} 0.004`);
    expect(metrics).toContain(`claude_batch_cost_usd{batch="${batchId}",kind="ceiling"} 0.01`);
    expect(metrics).toContain(`claude_batch_batch_paused{batch="${batchId}",reason="cost_ceiling"} 1`);
    expect(metrics).not.toContain(`claude_batch_cost_usd{batch="${other.batchId}"`);

    await expect(resumeBatch(runtime, batchId, { maxCost: 0.004 })).rejects.toThrow(
      /--max-cost: must be above what batch .* has spent and reserved so far \(\$0\.004\)/,
    );
    await expect(resumeBatch(runtime, batchId, { maxCost: 1 })).resolves.toEqual({
      lifted: ['cost_ceiling'],
      rewarmed: [],
      ceilingUsd: 1,
      spentUsd: 0.004,
    });
    const after = await getBatchStatus(runtime, batchId);
    expect(after?.paused).toEqual([]);
    expect(after?.processing_status).toBe('in_progress');
    expect(await runtime.redis.sismember(runtime.keys.pausedBatches(), batchId)).toBe(0);
    // A batch submitted without a ceiling can be given one: its prices were frozen too.
    await expect(resumeBatch(runtime, other.batchId, { maxCost: 5 })).resolves.toMatchObject({
      ceilingUsd: 5,
    });
  });

  it('resumed after longer than its cache TTL: one request per model writes the prefix again before the rest', async () => {
    const system = Array.from({ length: 400 }, (_, i) => `Rule ${i}: reply in one line.`).join(' ');
    const pauseAndResume = async (file: string, pausedMsAgo: number) => {
      const { batchId } = await submitBatch(runtime, {
        input: jsonlSource(lines(30, { system }), file),
        maxCost: 0.05,
      });
      // Its canary ran and released the rest to the batch's share; then it reached its ceiling.
      await releaseCanary(runtime, batchId, MODEL);
      const ledger = new CostLedger({ redis: runtime.redis, keys: runtime.keys });
      try {
        const since = new Date(Date.now() - pausedMsAgo).toISOString();
        expect((await ledger.tryReserve(batchId, 60_000_000, { ...PAUSE, since })).kind).toBe('exceeded');
      } finally {
        ledger.close();
      }
      return { batchId, resumed: await resumeBatch(runtime, batchId) };
    };
    const held = (batchId: string, reason: string) => runtime.redis.hlen(runtime.keys.held(batchId, reason));

    // Paused a minute: its 1-hour entry still holds; nothing changes.
    const short = await pauseAndResume('short-pause.jsonl', 60_000);
    expect(short.resumed.rewarmed).toEqual([]);
    expect(await held(short.batchId, SHARE_REASON)).toBe(29);

    // Paused two hours: the entry is gone. One held request goes first as the model's canary (at
    // the head of the queue), the other 28 wait behind it, as at submit.
    const long = await pauseAndResume('long-pause.jsonl', 2 * 3_600_000);
    expect(long.resumed.rewarmed).toEqual([MODEL]);
    const record = await runtime.redis.hgetall(runtime.keys.batch(long.batchId));
    expect(record[canaryField(MODEL)]).toBe('pending');
    const writer = (await runtime.requests.getWaiting(0, -1)).find(
      (job) => job.data.batch_id === long.batchId && job.data.custom_id === record[canaryIdField(MODEL)],
    );
    expect(writer?.data).toMatchObject({ canary: true });
    expect(writer?.data.cached_prefix).toBeUndefined();
    expect(await held(long.batchId, SHARE_REASON)).toBe(0);
    expect(await held(long.batchId, canaryField(MODEL))).toBe(28);
    // Its response begins: the rest are released to the share, for the dispatcher.
    expect(await releaseCanary(runtime, long.batchId, MODEL)).toBe(28);
    expect(await held(long.batchId, SHARE_REASON)).toBe(28);

    // The same after a queue-wide pause (a breaker, \`claude-batch pause\`) of two hours.
    await pauseQueue(runtime);
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000).toISOString();
    await runtime.redis.hset(runtime.keys.keyBreaker(), 'since', twoHoursAgo);
    expect(await resumeQueue(runtime)).toBe(true);
    expect(await runtime.redis.hget(runtime.keys.batch(long.batchId), canaryField(MODEL))).toBe('pending');
    expect(await held(long.batchId, canaryField(MODEL))).toBe(27);
    expect(await held(long.batchId, SHARE_REASON)).toBe(0);
  });
});
