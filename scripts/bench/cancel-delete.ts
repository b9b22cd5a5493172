/**
 * Section "cancel": cancel and delete of a big batch, side by side with its submit, while a small
 * batch keeps running. Per size N, on a fresh private redis-server (src/devtools/private-redis.ts)
 * whose CPU time is read from /proc/<pid>/stat before and after each step:
 *   small   a batch of S requests under a prefix of its own, worked by a `claude-batch worker`
 *           child (concurrency 16) against the emulator (a child, 50 ms latency): its throughput
 *           alone is measured first, then during each step below;
 *   submit  N requests, no canary (every request held for its share), under another prefix with
 *           no worker, so nothing of it is sent; then `cancel` of that batch;
 *   submit  N requests again (another id), canary on (all but one held behind it); then `delete`
 *           of that batch.
 * Wall time and Redis CPU of each step; the small batch's requests/s during it against alone.
 * Goals (issue 13): cancel and delete of 1M in about a minute, costing about what submit costs;
 * the small batch within 20 % of its throughput alone during the delete.
 *
 *   npm run bench -- cancel [--quick]          (quick: 100k; full: 100k and 1M)
 */
import type { ChildProcess } from 'node:child_process';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
import { cancelBatch } from '../../src/operations/cancel-batch.js';
import { deleteBatch } from '../../src/operations/delete-batch.js';
import { REQUESTS_QUEUE } from '../../src/queue/jobs.js';
import { submitBatch } from '../../src/queue/producer.js';
import type { Runtime } from '../../src/runtime.js';
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

const SMALL_CONCURRENCY = 16;
const LATENCY_MS = 50;
const ALONE_MS = 10_000;

interface StepRow {
  n: number;
  step: string;
  seconds: number;
  redisCpuS: number;
  smallRate: number;
  load: string;
}

/** Requests of the small batch that have their result. */
async function smallDone(runtime: Runtime, batchId: string): Promise<number> {
  const [succeeded, errored] = await runtime.redis.hmget(runtime.keys.batch(batchId), 'succeeded', 'errored');
  return Number(succeeded ?? 0) + Number(errored ?? 0);
}

export async function runCancelSection(ctx: BenchContext): Promise<SectionResult> {
  const sizes = ctx.quick ? [100_000] : [100_000, 1_000_000];
  const rows: StepRow[] = [];
  const notes: string[] = [];
  for (const n of sizes) {
    const redis = await startPrivateRedis();
    const emulator = await startEmulatorChild({ seed: 1, latency: { fixedMs: LATENCY_MS } });
    const local: BenchContext = { ...ctx, redisUrl: redis.url };
    const apiKey = benchApiKey();
    const big = await benchRuntime(local, benchPrefix('cancel-big'), apiKey);
    const small = await benchRuntime(local, benchPrefix('cancel-small'), apiKey);
    let worker: ChildProcess | undefined;
    try {
      // Enough small requests to outlast every step at full speed (16 / 50 ms = 320/s at most).
      const smallSize = Math.max(40_000, Math.ceil(n / 4));
      const smallFile = await writePromptsFile(ctx, `cancel-small-${smallSize}.jsonl`, smallSize);
      const bigFile = await writePromptsFile(ctx, `cancel-big-${n}.jsonl`, n);
      const { batchId: smallId } = await submitBatch(small, { input: smallFile, canary: false });
      worker = spawnCliWorker(local, {
        prefix: small.keys.bullPrefix,
        apiKey,
        baseURL: emulator.url,
        args: ['--concurrency', String(SMALL_CONCURRENCY)],
      });
      // Warm up, then the small batch alone.
      while ((await smallDone(small, smallId)) < 500) await sleep(100);
      const rate = async <T>(run: () => Promise<T>) => {
        const done0 = await smallDone(small, smallId);
        const cpu0 = await redis.cpuMs();
        const t0 = performance.now();
        const value = await run();
        const ms = performance.now() - t0;
        const cpuMs = (await redis.cpuMs()) - cpu0;
        const done = (await smallDone(small, smallId)) - done0;
        return { value, ms, cpuMs, smallRate: (done * 1000) / ms };
      };
      const alone = await rate(() => sleep(ALONE_MS));
      rows.push({ n, step: 'small batch alone', seconds: alone.ms / 1000, redisCpuS: alone.cpuMs / 1000, smallRate: alone.smallRate, load: load1() });
      const step = async <T>(label: string, run: () => Promise<T>) => {
        ctx.log(`cancel section, ${fmt(n)}: ${label}`);
        const r = await rate(run);
        rows.push({ n, step: label, seconds: r.ms / 1000, redisCpuS: r.cpuMs / 1000, smallRate: r.smallRate, load: load1() });
        return r;
      };

      const { value: submitted } = await step('submit, no canary (all held for the share)', () =>
        submitBatch(big, { input: bigFile, canary: false }),
      );
      const canceled = await step('cancel', () => cancelBatch(big, submitted.batchId));
      const wait = `${big.keys.bullPrefix}:${REQUESTS_QUEUE}:wait`;
      notes.push(
        `${fmt(n)}: cancel answered ${JSON.stringify(canceled.value)}; wait list after it: ${fmt(await big.redis.llen(wait))} jobs.`,
      );
      const { value: second } = await step('submit, canary (held behind it)', () =>
        submitBatch(big, { input: bigFile, batchId: 'bench-delete' }),
      );
      const deleted = await step('delete', () => deleteBatch(big, second.batchId));
      const left = await big.redis.keys(`${big.keys.bullPrefix}:*`);
      notes.push(
        `${fmt(n)}: delete answered ${JSON.stringify(deleted.value)}; keys left under its prefix: ${left.length} (${left.map((k) => k.slice(big.keys.bullPrefix.length + 1)).join(', ')}).`,
      );
      notes.push(
        `${fmt(n)}: small batch during the delete at ${fmt((deleted.smallRate / alone.smallRate) * 100)} % of its rate alone ` +
          `(goal ≥ 80 %); during the cancel ${fmt((canceled.smallRate / alone.smallRate) * 100)} %.`,
      );
    } finally {
      await stopChild(worker);
      await big.close();
      await small.close();
      await emulator.close();
      await redis.stop({ removeDir: true });
    }
  }
  return {
    key: 'cancel',
    title: '7. Cancel and delete at scale, side by side with submit, while another batch runs',
    intro:
      `Per size, a fresh private redis-server (CPU from /proc/<pid>/stat). A small batch runs throughout under a prefix of its own ` +
      `(a \`claude-batch worker\` child, concurrency ${SMALL_CONCURRENCY}, emulator latency ${LATENCY_MS} ms); the big batch is ` +
      'submitted under another prefix with no worker (nothing of it is sent), then canceled; submitted again with the canary, then ' +
      'deleted. Cancel and delete mark the batch (and bump the send-time epoch) in one script, then walk its ids in pages of ' +
      '250, one script each; the jobs of a canceled or deleted batch at the tail of the wait list are popped by a sweep script ' +
      '(500 per call), retries in the delayed set removed with ZREM, held requests (hash entries) dropped at the end. Each page is followed by a pause of 1.5 times its round ' +
      'trip (src/redis/paced-steps.ts), so the operation owns Redis at most 40 % of the time. Goal: about what submit costs; ' +
      'the small batch within 20 %.',
    tables: [
      {
        header: ['N', 'step', 'seconds', 'Redis CPU s', 'small batch req/s', 'load'],
        rows: rows.map((r) => [fmt(r.n), r.step, fmt(r.seconds, 1), fmt(r.redisCpuS, 2), fmt(r.smallRate), r.load]),
      },
    ],
    notes,
  };
}
