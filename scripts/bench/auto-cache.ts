/**
 * Section "autocache" (issue 15 item 2): a templated batch with and without automatic prompt
 * caching, side by side under the same input-token budget. N requests share a ~2,500-token system
 * prompt (over claude-sonnet-4-6's 2,048-token minimum) before a short question; the emulator (a
 * child) enforces the ITPM and RPM given to the worker and answers after 0.5-1.5 s. One
 * `claude-batch worker` process with `--rpm/--itpm` as the emulator's. Cache reads do not count
 * against ITPM at the API (anthropic-api.md), and the worker's estimate leaves them out, so the
 * cached batch is bound by RPM instead. Cost from the batch's usage at the built-in list prices.
 *
 *   npm run bench -- autocache [--quick]      (quick: 300 requests)
 */
import { type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
import { waitForBatch } from '../../src/operations/wait-for-batch.js';
import { costAt, DEFAULT_PRICE_TABLE, findPrice } from '../../src/pricing/price-table.js';
import { submitBatch } from '../../src/queue/producer.js';
import {
  benchApiKey,
  benchPrefix,
  benchRuntime,
  fmt,
  load1,
  startEmulatorChild,
  type BenchContext,
  spawnCliWorker,
  stopChild,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const MODEL = 'claude-sonnet-4-6';
const RPM = 4_000;
const ITPM = 400_000;
const LATENCY = { fixedMs: 500, jitterMs: 1_000 };
/** ~10,000 characters: ~2,500 tokens at the emulator's 4 characters a token (the model's minimum: 2,048). */
const SYSTEM = Array.from({ length: 210 }, (_, i) => `Rule ${i}: answer briefly and cite the source.`).join(' ');

export async function runAutoCacheSection(ctx: BenchContext): Promise<SectionResult> {
  const n = ctx.quick ? 300 : 1_000;
  const file = join(ctx.tmpDir, `autocache-${n}.jsonl`);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        custom_id: `t${i}`,
        params: {
          model: MODEL,
          max_tokens: 64,
          system: SYSTEM,
          messages: [{ role: 'user', content: `Question ${i}: what is ${i} squared?` }],
        },
      }),
    );
  }
  await writeFile(file, `${lines.join('\n')}\n`);
  const price = findPrice(DEFAULT_PRICE_TABLE, MODEL)!;
  const rows: string[][] = [];
  const results: Array<{ wall: number; cost: number }> = [];
  for (const autoCache of [false, true]) {
    const redis = await startPrivateRedis();
    const emulator = await startEmulatorChild({ seed: 15, limits: { rpm: RPM, itpm: ITPM }, latency: LATENCY });
    const local: BenchContext = { ...ctx, redisUrl: redis.url };
    const apiKey = benchApiKey();
    const runtime = await benchRuntime(local, benchPrefix('autocache'), apiKey);
    let worker: ChildProcess | undefined;
    try {
      const { batchId } = await submitBatch(runtime, { input: file, autoCache });
      ctx.log(`auto-cache ${autoCache ? 'on' : 'off'}: ${fmt(n)} requests`);
      const t0 = performance.now();
      worker = spawnCliWorker(local, {
        prefix: runtime.keys.bullPrefix,
        apiKey,
        baseURL: emulator.url,
        args: ['--rpm', String(RPM), '--itpm', String(ITPM)],
      });
      const final = await waitForBatch(runtime, batchId, { pollMs: 250 });
      const wall = (performance.now() - t0) / 1_000;
      const stats = await emulator.stats();
      const u = final.usage;
      const cost = costAt(price, u);
      results.push({ wall, cost });
      rows.push([
        autoCache ? 'auto-cache on (default)' : '--no-auto-cache',
        fmt(n),
        fmt(wall, 1),
        fmt(u.input_tokens),
        fmt(u.cache_creation_input_tokens),
        fmt(u.cache_read_input_tokens),
        `$${cost.toFixed(3)}`,
        fmt(stats.byStatus['429'] ?? 0),
        fmt(final.request_counts.succeeded),
        load1(),
      ]);
    } finally {
      await stopChild(worker);
      await runtime.close();
      await emulator.close();
      await redis.stop({ removeDir: true });
    }
  }
  const [off, on] = results as [{ wall: number; cost: number }, { wall: number; cost: number }];
  return {
    key: 'autocache',
    title: '12. Automatic prompt caching: a templated batch with and without',
    intro:
      `${fmt(n)} requests to ${MODEL} sharing a ~2,500-token system prompt, each with a short question; the ` +
      `emulator enforces ${fmt(RPM)} RPM and ${fmt(ITPM)} ITPM and answers after 0.5-1.5 s; one \`claude-batch worker\` ` +
      'process with --rpm/--itpm as the emulator\'s. Cost at the built-in list prices from the batch\'s usage.',
    tables: [
      {
        header: ['variant', 'N', 'wall s', 'input', 'cache write', 'cache read', 'cost', '429s', 'succeeded', 'load'],
        rows,
      },
    ],
    notes: [
      `With auto-caching: ${fmt(on.wall / off.wall, 2)}x the wall time and ${fmt(on.cost / off.cost, 2)}x the cost of the same batch without.`,
    ],
  };
}
