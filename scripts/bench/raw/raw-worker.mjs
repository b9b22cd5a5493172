// The floor of the `processes` benchmark section (scripts/bench/processes.ts): what a user would
// write to work the queue with BullMQ alone. Plain JavaScript on purpose: it runs with bare `node`,
// as the compiled CLI it is compared with does, so neither pays a TypeScript loader.
//
//   ANTHROPIC_API_KEY=.. ANTHROPIC_BASE_URL=.. node raw-worker.mjs '{"redisUrl":..,"prefix":..,"queue":..,"concurrency":16}'
//
// A BullMQ Worker whose processor calls the SDK (maxRetries 0: retries are BullMQ's, as in the
// runner) and stores each reply in one Redis hash, `${prefix}:raw:results`, field custom_id. The
// BullMQ options are the runner's (src/worker/claude-worker.ts): locks, stalled checks, completed
// jobs kept, drain delay. Runs until SIGTERM or SIGINT, then closes the worker (in-flight jobs
// finish) and exits 0.
import process from 'node:process';
import Anthropic from '@anthropic-ai/sdk';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const args = JSON.parse(process.argv[2] ?? '{}');
const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: null });
const resultsKey = `${args.prefix}:raw:results`;
// Key and base URL from ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, as the SDK reads them.
const client = new Anthropic({ maxRetries: 0, timeout: 600_000 });
const worker = new Worker(
  args.queue,
  async (job) => {
    const message = await client.messages.create({ ...job.data.params, stream: false });
    await redis.hset(resultsKey, job.data.custom_id, JSON.stringify(message));
  },
  {
    connection: redis,
    prefix: args.prefix,
    concurrency: args.concurrency,
    lockDuration: 30_000,
    stalledInterval: 30_000,
    maxStalledCount: 2,
    removeOnComplete: { count: 1_000 },
    drainDelay: 1,
  },
);
worker.on('error', (err) => process.stderr.write(`raw worker: ${err.message}\n`));
const stop = () => {
  void worker.close().then(() => {
    redis.disconnect();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
