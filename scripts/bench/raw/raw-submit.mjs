// The floor of the `processes` benchmark section (scripts/bench/processes.ts): what a user would
// write to enqueue a JSONL file with BullMQ alone. Plain JavaScript on purpose: it runs with bare
// `node`, as the compiled CLI it is compared with does, so neither pays a TypeScript loader.
//
//   node raw-submit.mjs '{"file":..,"redisUrl":..,"prefix":..,"queue":..,"chunk":250}'
//
// readline + JSON.parse + Queue.addBulk in chunks, with the jobs the producer makes (job name,
// data, job id, attempts, backoff: src/queue/producer.ts toJob); no validation. Prints
// `{"enqueued":N}` on stdout.
import { createReadStream } from 'node:fs';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const args = JSON.parse(process.argv[2] ?? '{}');
const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue(args.queue, { connection: redis, prefix: args.prefix });
const batchId = 'batch_raw';
let enqueued = 0;
let jobs = [];
const lines = createInterface({ input: createReadStream(args.file), crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === '') continue;
  const { custom_id, params } = JSON.parse(line);
  jobs.push({
    name: params.model,
    data: { batch_id: batchId, custom_id, index: enqueued++, gen: 0, params },
    // The job id as src/queue/jobs.ts requestJobId makes it (batch.custom_id.generation).
    opts: { jobId: `${batchId}.${custom_id}.0`, attempts: 5, backoff: { type: 'exponential', delay: 1_000 } },
  });
  if (jobs.length >= args.chunk) {
    await queue.addBulk(jobs);
    jobs = [];
  }
}
if (jobs.length > 0) await queue.addBulk(jobs);
await queue.close();
redis.disconnect();
process.stdout.write(`${JSON.stringify({ enqueued })}\n`);
