/**
 * Section "worker": what the full worker costs per job over a bare BullMQ Worker. The emulator runs
 * in a child process with no latency and no limits. In this process, alternately:
 *   raw   a BullMQ Worker whose processor calls the SDK (maxRetries 0) and stores nothing, with the
 *         same BullMQ options as the runner's (concurrency, removeOnComplete 1,000, drainDelay, locks);
 *   full  startWorker: gates, estimate, the shared budget (on, at rpm/itpm/otpm far above need),
 *         the call, classification, the results line, counts and usage;
 *   nobudget  the same with no limits configured (the budget then never touches Redis): tells
 *         what the shared budget's acquire + settle cost apart from the rest of the pipeline;
 *   nogate  what-if: the same budget and limits, but admissions go straight to its one-look
 *         `tryAcquire` (the same Lua script) instead of through its in-process FIFO gate (a Bottleneck
 *         with maxConcurrent 1): tells what that gate costs. Not how the runner works.
 * Both work N pre-enqueued jobs of identical payloads. Measured over the jobs after the first 10 %
 * (start-up and JIT warm-up left out): jobs/s, CPU ms per job of this process (process.cpuUsage),
 * Redis commands per job (INFO commandstats: commands run inside scripts included), commands this
 * process sent per job (every ioredis command, pipelined ones included), Redis CPU ms per job.
 *
 *   npm run bench -- worker [--quick] [--worker-concurrency 16] [--variants raw,full,nobudget]
 */
import Anthropic from '@anthropic-ai/sdk';
import { Queue, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { createClaudeClient } from '../../src/claude/claude-client.js';
import { REQUESTS_QUEUE, requestJobId, type RequestJobData } from '../../src/queue/jobs.js';
import { submitBatch } from '../../src/queue/producer.js';
import { getBatchStatus } from '../../src/operations/batch-status.js';
import type { ClaudeWorker } from '../../src/worker/claude-worker.js';
import { budgetFromConfig, startWorker } from '../../src/worker/start-worker.js';
import type { RateBudget, SharedRateBudgetApi } from '../../src/limits/index.js';
import {
  benchApiKey,
  benchPrefix,
  benchRuntime,
  clientCommandsSent,
  commandDelta,
  commandStats,
  customId,
  deleteKeys,
  disposeRuntime,
  fmt,
  installCommandCounter,
  load1,
  median,
  redisCpuSeconds,
  requestParams,
  sleep,
  startEmulatorChild,
  sumCalls,
  topCommands,
  writePromptsFile,
  type BenchContext,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

type Variant = 'raw' | 'full' | 'nobudget' | 'nogate';

const LABELS: Record<Variant, string> = {
  raw: 'raw BullMQ + SDK',
  full: 'full worker',
  nobudget: 'full worker, no budget limits',
  nogate: 'full worker, budget without its local gate (what-if)',
};

export interface WindowFigures {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  cpuMsPerJob: number;
  redisCmdsPerJob: number;
  clientCmdsPerJob: number;
  redisCpuMsPerJob: number;
  commands: Map<string, number>;
  failed: number;
  load: string;
}

interface Mark {
  t: number;
  cpu: NodeJS.CpuUsage;
  sent: number;
  stats: Promise<Map<string, number>>;
  redisCpu: Promise<number>;
}

/**
 * Counts `completed` events of a BullMQ worker and measures between completion `skip` and `n`.
 * `start` starts the worker and returns it; listeners are attached as soon as it resolves, before
 * any job can complete (completing one takes Redis round trips; the continuation is a microtask).
 */
export async function measureWindow(
  ctx: BenchContext,
  n: number,
  start: () => Promise<Worker>,
  skipFraction = 0.1,
): Promise<WindowFigures> {
  const skip = Math.max(1, Math.floor(n * skipFraction));
  const mark = (): Mark => ({
    t: performance.now(),
    cpu: process.cpuUsage(),
    sent: clientCommandsSent(),
    stats: commandStats(ctx.admin),
    redisCpu: redisCpuSeconds(ctx.admin),
  });
  let done = 0;
  let failed = 0;
  let first: Mark | undefined;
  const bull = await start();
  const last = await new Promise<Mark>((resolve) => {
    const onCompleted = () => {
      done++;
      if (done === skip) first = mark();
      if (done === n) {
        bull.off('completed', onCompleted);
        resolve(mark());
      }
    };
    bull.on('completed', onCompleted);
    bull.on('failed', () => failed++);
  });
  if (!first) throw new Error('no first mark');
  const jobs = n - skip;
  const seconds = (last.t - first.t) / 1000;
  const cpu = process.cpuUsage(first.cpu);
  const commands = commandDelta(await first.stats, await last.stats);
  return {
    jobs,
    seconds,
    jobsPerSecond: jobs / seconds,
    cpuMsPerJob: (cpu.user + cpu.system) / 1000 / jobs,
    redisCmdsPerJob: sumCalls(commands) / jobs,
    clientCmdsPerJob: (last.sent - first.sent) / jobs,
    redisCpuMsPerJob: (((await last.redisCpu) - (await first.redisCpu)) * 1000) / jobs,
    commands,
    failed,
    load: load1(),
  };
}

/** The jobs the producer would make, for the raw worker's queue. */
function rawJobs(n: number, batchId: string): Array<{ name: string; data: RequestJobData; opts: JobsOptions }> {
  return Array.from({ length: n }, (_, i) => {
    const params = requestParams(i);
    const custom_id = customId(i);
    return {
      name: params.model,
      data: { batch_id: batchId, custom_id, index: i, gen: 0, params },
      opts: {
        jobId: requestJobId(batchId, custom_id, 0),
        attempts: 5,
        backoff: { type: 'exponential', delay: 1_000 },
      },
    };
  });
}

async function runRaw(
  ctx: BenchContext,
  emulatorUrl: string,
  n: number,
  concurrency: number,
): Promise<WindowFigures> {
  const prefix = benchPrefix('worker-raw');
  const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue<RequestJobData>(REQUESTS_QUEUE, { connection: redis, prefix });
  const jobs = rawJobs(n, 'batch_raw');
  for (let i = 0; i < jobs.length; i += 1_000) await queue.addBulk(jobs.slice(i, i + 1_000));
  const client = new Anthropic({
    apiKey: benchApiKey().reveal(),
    baseURL: emulatorUrl,
    maxRetries: 0,
    timeout: 600_000,
  });
  const worker = new Worker<RequestJobData>(
    REQUESTS_QUEUE,
    async (job: Job<RequestJobData>) => {
      await client.messages.create({
        ...(job.data.params as unknown as Anthropic.MessageCreateParamsNonStreaming),
        stream: false,
      });
    },
    {
      connection: redis,
      prefix,
      concurrency,
      lockDuration: 30_000,
      stalledInterval: 30_000,
      maxStalledCount: 2,
      removeOnComplete: { count: 1_000 },
      drainDelay: 1,
      autorun: false,
    },
  );
  worker.on('error', () => {});
  try {
    return await measureWindow(ctx, n, () => {
      // Fire and forget: run() resolves only when the worker closes (the finally below); its
      // errors are 'error' events, listened to above.
      void worker.run();
      return Promise.resolve(worker);
    });
  } finally {
    await worker.close();
    await queue.close();
    redis.disconnect();
    await deleteKeys(ctx.admin, `${prefix}:*`);
  }
}

async function runFull(
  ctx: BenchContext,
  emulatorUrl: string,
  file: string,
  n: number,
  concurrency: number,
  variant: Exclude<Variant, 'raw'>,
): Promise<WindowFigures> {
  const prefix = benchPrefix('worker-full');
  const apiKey = benchApiKey();
  const runtime = await benchRuntime(ctx, prefix, apiKey, {
    concurrency: String(concurrency),
    ...(variant === 'nobudget' ? {} : { rpm: '10000000', itpm: '10000000000', otpm: '10000000000' }),
  });
  try {
    const submitted = await submitBatch(runtime, { input: file, canary: false });
    let worker: ClaudeWorker | undefined;
    const figures = await measureWindow(ctx, n, async () => {
      const budget = await budgetFromConfig(runtime, apiKey);
      worker = await startWorker(runtime, {
        client: createClaudeClient({ apiKey, baseURL: emulatorUrl, timeoutMs: 600_000 }),
        budget: variant === 'nogate' ? withoutGate(budget) : budget,
      });
      return worker.worker;
    });
    await worker?.close();
    const status = await getBatchStatus(runtime, submitted.batchId);
    if (status?.request_counts.succeeded !== n) {
      throw new Error(`full worker: ${JSON.stringify(status?.request_counts)} of ${n}`);
    }
    return figures;
  } finally {
    await disposeRuntime(ctx, runtime, apiKey);
  }
}

/** The budget with acquire() replaced by tryAcquire() looks (the same script), for the what-if row. */
function withoutGate(budget: SharedRateBudgetApi): RateBudget {
  return {
    acquire: async (estimate) => {
      for (;;) {
        const look = await budget.tryAcquire(estimate);
        if (look.lease) return look.lease;
        await sleep(look.waitMs);
      }
    },
    settle: (lease, report) => budget.settle(lease, report),
    close: () => budget.close(),
  };
}

export async function runWorkerSection(ctx: BenchContext): Promise<SectionResult> {
  installCommandCounter();
  const n = ctx.quick ? 3_000 : 10_000;
  const rounds = ctx.quick ? 3 : 4;
  const concurrency = Number(ctx.options['worker-concurrency'] ?? 16);
  const variants = String(ctx.options['variants'] ?? 'raw,full,nobudget')
    .split(',')
    .filter((v): v is Variant => v in LABELS);
  const file = await writePromptsFile(ctx, `worker-${n}.jsonl`, n);
  const warmFile = await writePromptsFile(ctx, 'worker-warm-500.jsonl', 500);
  const emulator = await startEmulatorChild({ requestLogSize: 0 });
  const results: Array<{ variant: Variant; round: number; f: WindowFigures }> = [];
  try {
    ctx.log(`worker: warm-up (${variants.join(', ')}, 500 jobs each)`);
    for (const variant of variants) {
      if (variant === 'raw') await runRaw(ctx, emulator.url, 500, concurrency);
      else await runFull(ctx, emulator.url, warmFile, 500, concurrency, variant);
    }
    for (let round = 1; round <= rounds; round++) {
      for (const variant of round % 2 === 1 ? variants : [...variants].reverse()) {
        const f =
          variant === 'raw'
            ? await runRaw(ctx, emulator.url, n, concurrency)
            : await runFull(ctx, emulator.url, file, n, concurrency, variant);
        results.push({ variant, round, f });
        ctx.log(
          `worker ${variant} round ${round}: ${fmt(f.jobsPerSecond)} jobs/s, ${f.cpuMsPerJob.toFixed(2)} CPU ms/job, ` +
            `${f.redisCmdsPerJob.toFixed(1)} Redis cmds/job, load ${f.load}`,
        );
      }
    }
  } finally {
    await emulator.close();
  }

  const med = (variant: Variant, pick: (f: WindowFigures) => number) =>
    median(results.filter((r) => r.variant === variant).map((r) => pick(r.f)));
  const notes: string[] = [];
  if (variants.includes('raw') && variants.includes('full')) {
    const ratio = med('full', (f) => f.jobsPerSecond) / med('raw', (f) => f.jobsPerSecond);
    notes.push(
      `full / raw throughput (medians): **${ratio.toFixed(2)}×** (goal ≥ 0.6×: ${ratio >= 0.6 ? 'met' : 'not met'}).`,
      `CPU per job: full ${med('full', (f) => f.cpuMsPerJob).toFixed(2)} ms, raw ${med('raw', (f) => f.cpuMsPerJob).toFixed(2)} ms; ` +
        `Redis commands per job: full ${med('full', (f) => f.redisCmdsPerJob).toFixed(1)}, raw ${med('raw', (f) => f.redisCmdsPerJob).toFixed(1)}.`,
    );
  }
  if (variants.includes('raw') && variants.includes('nobudget')) {
    const ratio = med('nobudget', (f) => f.jobsPerSecond) / med('raw', (f) => f.jobsPerSecond);
    notes.push(`full worker without budget limits / raw (medians): ${ratio.toFixed(2)}×.`);
  }
  if (variants.includes('raw') && variants.includes('nogate')) {
    const ratio = med('nogate', (f) => f.jobsPerSecond) / med('raw', (f) => f.jobsPerSecond);
    notes.push(`what-if, the budget without its local gate / raw (medians): ${ratio.toFixed(2)}×.`);
  }
  for (const variant of variants) {
    const lastRun = results.filter((r) => r.variant === variant).at(-1);
    if (lastRun) {
      notes.push(
        `${variant}: Redis commands per job by command (last round): ${topCommands(lastRun.f.commands, lastRun.f.jobs, 12)}.`,
      );
    }
  }
  return {
    key: 'worker',
    title: '2. Worker overhead: the full worker against a raw BullMQ Worker calling the SDK',
    intro:
      `Emulator in a child process, no latency, no limits. ${fmt(n)} jobs per run, concurrency ${concurrency}, ` +
      `same process, ${rounds} alternating rounds after a 500-job warm-up of each; figures over the jobs after ` +
      'the first 10 %. CPU ms/job: this process only (the emulator and Redis run apart). Redis cmds: INFO ' +
      'commandstats (commands inside Lua scripts included); sent: commands this process sent. Goal ≥ 0.6× raw.',
    tables: [
      {
        header: [
          'variant',
          'round',
          'jobs/s',
          'CPU ms/job',
          'Redis cmds/job',
          'cmds sent/job',
          'Redis CPU ms/job',
          'failed',
          'load',
        ],
        rows: results.map(({ variant, round, f }) => [
          LABELS[variant],
          String(round),
          fmt(f.jobsPerSecond),
          f.cpuMsPerJob.toFixed(2),
          f.redisCmdsPerJob.toFixed(1),
          f.clientCmdsPerJob.toFixed(1),
          f.redisCpuMsPerJob.toFixed(3),
          String(f.failed),
          f.load,
        ]),
      },
    ],
    notes,
  };
}
