/**
 * Section "fairshare" (issue 16 item 4): a small batch submitted behind a big one. The emulator
 * (a child) answers after 3 to 8 s (uniform) and enforces 600 RPM; one `claude-batch worker`
 * process with default flags and `--rpm 600` works the queue. Rows:
 *   alone at half the budget: the 100-request batch by itself, the worker at --rpm 300 (the time
 *     the goal is measured against);
 *   behind a big batch, priority 1: a 50,000-request batch has run for a while at the whole
 *     budget when the 100-request batch is submitted; its time from submit to end;
 *   behind a big batch, priority 3: the same, the small batch submitted with --priority 3.
 * Goal: the small batch ends within 2x its time alone at half the budget; with --priority 3, sooner.
 * The big batch is canceled once the small one ends (the section measures the small one).
 *
 *   npm run bench -- fairshare [--quick]      (quick: a 10,000-request big batch, 20 s head start)
 */
import { type ChildProcess } from 'node:child_process';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
import { cancelBatch } from '../../src/operations/cancel-batch.js';
import { getBatchStatus } from '../../src/operations/batch-status.js';
import { waitForBatch } from '../../src/operations/wait-for-batch.js';
import { submitBatch } from '../../src/queue/producer.js';
import {
  benchApiKey,
  benchPrefix,
  benchRuntime,
  fmt,
  load1,
  sleep,
  startEmulatorChild,
  writePromptsFile,
  type BenchContext,
  spawnCliWorker,
  stopChild,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const RPM = 600;
const LATENCY = { fixedMs: 3_000, jitterMs: 5_000 };
const SMALL = 100;

interface Variant {
  label: string;
  /** The big batch's size (0: the small batch alone). */
  big: boolean;
  /** The worker's --rpm. */
  rpm: number;
  priority: number;
}

const VARIANTS: readonly Variant[] = [
  { label: 'alone at half the budget (--rpm 300)', big: false, rpm: RPM / 2, priority: 1 },
  { label: 'behind the big batch, priority 1', big: true, rpm: RPM, priority: 1 },
  { label: 'behind the big batch, priority 3', big: true, rpm: RPM, priority: 3 },
];

export async function runFairShareSection(ctx: BenchContext): Promise<SectionResult> {
  const bigN = ctx.quick ? 10_000 : 50_000;
  const headStartS = ctx.quick ? 20 : 60;
  const bigFile = await writePromptsFile(ctx, `fairshare-big-${bigN}.jsonl`, bigN);
  // The big file's first lines again: a batch of its own all the same, under its own batch id.
  const smallFile = await writePromptsFile(ctx, `fairshare-small-${SMALL}.jsonl`, SMALL);
  const rows: string[][] = [];
  const seconds: number[] = [];
  for (const variant of VARIANTS) {
    const redis = await startPrivateRedis();
    const emulator = await startEmulatorChild({ seed: 17, limits: { rpm: RPM }, latency: LATENCY });
    const local: BenchContext = { ...ctx, redisUrl: redis.url };
    const apiKey = benchApiKey();
    const runtime = await benchRuntime(local, benchPrefix('fairshare'), apiKey);
    let worker: ChildProcess | undefined;
    try {
      const big = variant.big ? await submitBatch(runtime, { input: bigFile }) : undefined;
      ctx.log(`fair share, ${variant.label}`);
      worker = spawnCliWorker(local, {
        prefix: runtime.keys.bullPrefix,
        apiKey,
        baseURL: emulator.url,
        args: ['--rpm', String(variant.rpm)],
      });
      if (big) await sleep(headStartS * 1_000);
      const bigBefore = big ? await getBatchStatus(runtime, big.batchId) : null;
      const t0 = performance.now();
      const small = await submitBatch(runtime, {
        input: smallFile,
        batchId: `small-${variant.priority}-${variant.big ? 'behind' : 'alone'}`,
        priority: variant.priority,
      });
      const final = await waitForBatch(runtime, small.batchId, { pollMs: 250 });
      const wall = (performance.now() - t0) / 1_000;
      seconds.push(wall);
      const bigAfter = big ? await getBatchStatus(runtime, big.batchId) : null;
      const bigDone = (s: typeof bigAfter) => (s ? s.request_counts.succeeded + s.request_counts.errored : 0);
      const stats = await emulator.stats();
      rows.push([
        variant.label,
        fmt(wall, 1),
        fmt(final.request_counts.succeeded),
        big ? fmt(bigDone(bigAfter) - bigDone(bigBefore)) : '-',
        fmt(stats.byStatus['429'] ?? 0),
        load1(),
      ]);
      if (big) await cancelBatch(runtime, big.batchId);
    } finally {
      await stopChild(worker);
      await runtime.close();
      await emulator.close();
      await redis.stop({ removeDir: true });
    }
  }
  const [alone, equal, weighted] = seconds as [number, number, number];
  return {
    key: 'fairshare',
    title: '11. Fair share: a small batch submitted behind a big one',
    intro:
      `The emulator enforces ${fmt(RPM)} RPM and answers after 3-8 s (uniform). One \`claude-batch worker\` process ` +
      `with default flags. A ${fmt(bigN)}-request batch runs for ${headStartS} s at the whole budget, then a ` +
      `${SMALL}-request batch is submitted (canary on, as by default); its time from submit to end. "big done meanwhile": ` +
      "the big batch's requests that ended while the small one ran.",
    tables: [
      {
        header: ['variant', 'small batch s', 'succeeded', 'big done meanwhile', '429s', 'load'],
        rows,
      },
    ],
    notes: [
      `Behind the big batch at equal priority: ${fmt(equal / alone, 2)}x its time alone at half the budget ` +
        `(goal ≤ 2x: ${equal <= 2 * alone ? 'met' : 'not met'}). First in, first out it would have waited for the ` +
        `big batch: ${fmt(bigN / (RPM / 60) / 60, 0)} minutes.`,
      `With --priority 3: ${fmt(weighted / alone, 2)}x (${weighted < equal ? 'sooner than at priority 1, as it should be' : 'NOT sooner than at priority 1'}).`,
    ],
  };
}
