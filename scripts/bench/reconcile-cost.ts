/**
 * What one reconciler examination of a stalled 1M-request batch costs: wall time, Redis commands
 * (INFO commandstats) and this process's heap, on a private redis-server. The batch is written
 * directly (record, ids list, results lines, job hashes): N requests of which OPEN have no results
 * line, each with a job (a lawful place), and LOST of those without one (ended by the sweep).
 *
 *   npx tsx scripts/bench/reconcile-cost.ts [N=1000000] [OPEN=10000] [LOST=1000]
 */
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load-config.js';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
import { silentLogger } from '../../src/logger.js';
import { requestJobId } from '../../src/queue/jobs.js';
import { openRuntime } from '../../src/runtime.js';
import { Reconciler } from '../../src/worker/reconciler.js';

const [N = 1_000_000, OPEN = 10_000, LOST = 1_000] = process.argv.slice(2).map(Number);

async function commandCount(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) total += Number(m[1]);
  return total;
}

const server = await startPrivateRedis();
try {
  const runtime = await openRuntime(
    loadConfig({ env: { REDIS_URL: server.url }, overrides: { prefix: 'bench-reconcile' } }),
    { logger: silentLogger },
  );
  const { redis, keys } = runtime;
  const batchId = 'batch_bench';
  await redis.hset(keys.batch(batchId), {
    id: batchId,
    total: N,
    enqueued: N,
    submit_state: 'submitted',
    processing: OPEN,
    succeeded: N - OPEN,
    errored: 0,
    canceled: 0,
  });
  await redis.zadd(keys.batches(), Date.now(), batchId);
  const t0 = Date.now();
  for (let start = 0; start < N; start += 10_000) {
    const pipeline = redis.pipeline();
    const ids: string[] = [];
    for (let i = start; i < Math.min(N, start + 10_000); i++) ids.push(`req-${i}`);
    pipeline.rpush(keys.ids(batchId), ...ids);
    const lines: string[] = [];
    for (const id of ids) {
      const i = Number(id.slice(4));
      if (i < OPEN) {
        // Open: the first LOST have no job at all; the rest a job hash (queued).
        if (i >= LOST) pipeline.hset(`${keys.bullPrefix}:requests:${requestJobId(batchId, id, 0)}`, 'data', '{}');
      } else lines.push(id, `{"custom_id":"${id}","result":{"type":"succeeded"}}`);
    }
    if (lines.length > 0) pipeline.hset(keys.results(batchId), ...lines);
    await pipeline.exec();
  }
  const memory = await redis.info('memory');
  process.stdout.write(
    `written ${N} requests (${OPEN} open, ${LOST} lost) in ${Date.now() - t0} ms; redis ${/used_memory_human:(\S+)/.exec(memory)?.[1]}\n`,
  );

  const reconciler = new Reconciler(runtime, {
    intervalMs: 60_000,
    stallMs: 0,
    confirmMs: 1_000,
    giveFailedJobOutcome: () => Promise.resolve(),
  });
  const probe = new Redis(server.url);
  const heapBefore = process.memoryUsage().heapUsed;
  const before = await commandCount(probe);
  const started = Date.now();
  const repairs = await reconciler.examine(batchId);
  const ms = Date.now() - started;
  const commands = (await commandCount(probe)) - before;
  const heap = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  process.stdout.write(
    `examine: ${ms} ms (of which ${LOST > 0 ? 1000 : 0} ms confirmation wait), ${commands} Redis commands ` +
      `(${(commands / N).toFixed(4)} per request, ${(commands / Math.max(1, OPEN)).toFixed(2)} per open request), ` +
      `heap +${heap.toFixed(1)} MiB; repairs ${JSON.stringify(repairs)}\n`,
  );
  probe.disconnect();
  await runtime.close();
} finally {
  await server.stop({ removeDir: true });
}
