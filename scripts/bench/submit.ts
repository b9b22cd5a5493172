/**
 * Section "submit": enqueuing a generated JSONL file of N requests, four ways, each in a fresh child
 * process (so each has its own peak RSS), one after the other against the same Redis:
 *   raw addBulk  the floor: stream the file, JSON.parse each line, Queue.addBulk in chunks of 1,000
 *                with the same job names, data, ids and options the producer uses; no validation;
 *   submitBatch  the library, --no-canary (like for like with the raw loop: every job waiting);
 *   submitBatch  the library with the canary (the default: all but one job per model held delayed);
 *   CLI          `claude-batch submit FILE` (canary on) under /usr/bin/time -v: wall time and peak RSS
 *                of the real command, tsx start-up included.
 * Rates are requests/s over the work itself (child start-up excluded) except for the CLI row.
 *
 *   npm run bench -- submit [--quick]          (quick: 100k lines; full: 100k and 1M)
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load-config.js';
import { silentLogger } from '../../src/logger.js';
import { REQUESTS_QUEUE, requestJobId, type RequestJobData } from '../../src/queue/jobs.js';
import { submitBatch } from '../../src/queue/producer.js';
import { openRuntime } from '../../src/runtime.js';
import {
  CLI_BIN,
  benchPrefix,
  childEnv,
  deleteKeys,
  fmt,
  lastJsonLine,
  load1,
  mb,
  runNode,
  writePromptsFile,
  type BenchContext,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);
const CHUNK = 1_000;

type Variant = 'raw' | 'lib-nocanary' | 'lib-canary';

interface ChildArgs {
  variant: Variant;
  file: string;
  redisUrl: string;
  prefix: string;
}

interface ChildResult {
  enqueued: number;
  ms: number;
  cpuMs: number;
  maxRssKb: number;
}

/** One measured submit in this (child) process. */
async function runChild(args: ChildArgs): Promise<void> {
  let enqueued = 0;
  let ms = 0;
  const cpu0 = process.cpuUsage();
  if (args.variant === 'raw') {
    const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue<RequestJobData>(REQUESTS_QUEUE, { connection: redis, prefix: args.prefix });
    await queue.waitUntilReady();
    const batchId = 'batch_raw';
    const started = performance.now();
    let jobs: Array<{ name: string; data: RequestJobData; opts: JobsOptions }> = [];
    const lines = createInterface({ input: createReadStream(args.file), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const { custom_id, params } = JSON.parse(line) as Pick<RequestJobData, 'custom_id' | 'params'>;
      jobs.push({
        name: params.model,
        data: { batch_id: batchId, custom_id, index: enqueued++, gen: 0, params },
        opts: {
          jobId: requestJobId(batchId, custom_id, 0),
          attempts: 5,
          backoff: { type: 'exponential', delay: 1_000 },
        },
      });
      if (jobs.length >= CHUNK) {
        await queue.addBulk(jobs);
        jobs = [];
      }
    }
    if (jobs.length > 0) await queue.addBulk(jobs);
    ms = performance.now() - started;
    await queue.close();
    redis.disconnect();
  } else {
    const runtime = await openRuntime(
      loadConfig({ env: { REDIS_URL: args.redisUrl }, overrides: { prefix: args.prefix } }),
      { logger: silentLogger },
    );
    const started = performance.now();
    const result = await submitBatch(runtime, { input: args.file, canary: args.variant === 'lib-canary' });
    ms = performance.now() - started;
    enqueued = result.enqueued;
    await runtime.close();
  }
  const cpu = process.cpuUsage(cpu0);
  const out: ChildResult = {
    enqueued,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssKb: process.resourceUsage().maxRSS,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

interface Row {
  n: number;
  label: string;
  seconds: number;
  rate: number;
  cpuMs: number | null;
  rssKb: number | null;
  load: string;
}

export async function runSubmitSection(ctx: BenchContext): Promise<SectionResult> {
  const sizes = ctx.quick ? [100_000] : [100_000, 1_000_000];
  const rows: Row[] = [];
  const ratios: string[] = [];
  // The CLI's floor: what `claude-batch --help` alone peaks at (tsx, every command's imports).
  const idle = await runNode([CLI_BIN, '--help'], childEnv(ctx));
  for (const n of sizes) {
    const file = await writePromptsFile(ctx, `submit-${n}.jsonl`, n);
    const rawRates: number[] = [];
    const libRates: number[] = [];
    // raw and library alternate, so a burst of load elsewhere hits both alike.
    const order: Variant[] = ['raw', 'lib-nocanary', 'lib-canary'];
    for (const variant of order) {
      const prefix = benchPrefix(`submit-${variant}`);
      ctx.log(`submit ${fmt(n)}: ${variant}...`);
      const run = await runNode(
        [
          '--import',
          'tsx',
          SELF,
          '--child',
          JSON.stringify({ variant, file, redisUrl: ctx.redisUrl, prefix } satisfies ChildArgs),
        ],
        childEnv(ctx),
        { nodeFlags: ctx.childNodeFlags },
      );
      const loadNow = load1();
      await deleteKeys(ctx.admin, `${prefix}:*`);
      if (run.code !== 0) throw new Error(`submit child ${variant} failed: ${run.stderr.slice(-2000)}`);
      const result = lastJsonLine<ChildResult>(run.stdout);
      if (result.enqueued !== n) throw new Error(`${variant}: enqueued ${result.enqueued} of ${n}`);
      const rate = n / (result.ms / 1000);
      if (variant === 'raw') rawRates.push(rate);
      if (variant === 'lib-nocanary') libRates.push(rate);
      rows.push({
        n,
        label:
          variant === 'raw'
            ? 'raw BullMQ addBulk (floor)'
            : variant === 'lib-nocanary'
              ? 'submitBatch, no canary'
              : 'submitBatch, canary (default)',
        seconds: result.ms / 1000,
        rate,
        cpuMs: result.cpuMs,
        rssKb: run.maxRssKb ?? result.maxRssKb,
        load: loadNow,
      });
      ctx.log(`  ${fmt(rate)} req/s, peak RSS ${mb(run.maxRssKb)}, load ${loadNow}`);
    }
    // The real command, canary on (its default).
    const prefix = benchPrefix('submit-cli');
    ctx.log(`submit ${fmt(n)}: CLI...`);
    const cli = await runNode(
      [CLI_BIN, 'submit', file, '--log-level', 'warn'],
      childEnv(ctx, { CLAUDE_BATCH_PREFIX: prefix }),
      { nodeFlags: ctx.childNodeFlags },
    );
    const loadNow = load1();
    await deleteKeys(ctx.admin, `${prefix}:*`);
    if (cli.code !== 0) throw new Error(`claude-batch submit failed: ${cli.stderr.slice(-2000)}`);
    rows.push({
      n,
      label: 'CLI `claude-batch submit` (canary), wall',
      seconds: cli.wallMs / 1000,
      rate: n / (cli.wallMs / 1000),
      cpuMs: null,
      rssKb: cli.maxRssKb,
      load: loadNow,
    });
    ctx.log(`  ${fmt(n / (cli.wallMs / 1000))} req/s wall, peak RSS ${mb(cli.maxRssKb)}, load ${loadNow}`);
    const raw = rawRates[0] ?? 0;
    const lib = libRates[0] ?? 0;
    ratios.push(`${fmt(n)} lines: submitBatch (no canary) / raw = ${(lib / raw).toFixed(2)}×`);
  }

  const bigRss = rows.filter((r) => r.n === Math.max(...sizes) && r.label.startsWith('CLI'));
  return {
    key: 'submit',
    title: '1. Submit: submitBatch and the CLI against a raw BullMQ addBulk loop',
    intro:
      'Generated full-format lines (~300 bytes each, one model) in a temp dir. Each row is a fresh child ' +
      'process against the same Redis, one after the other; rates exclude process start-up except the ' +
      'CLI row (wall time of the whole command). Raw: readline + JSON.parse + addBulk of the same jobs ' +
      '(name, data, job id, attempts, backoff) in chunks of 1,000, no validation. Goal: ≥ 0.8× raw; CLI ' +
      'peak RSS ≤ 150 MB at 1M lines.',
    tables: [
      {
        header: ['N', 'variant', 'seconds', 'requests/s', 'CPU ms/1k req', 'peak RSS', 'load'],
        rows: rows.map((r) => [
          fmt(r.n),
          r.label,
          r.seconds.toFixed(1),
          fmt(r.rate),
          r.cpuMs === null ? '—' : fmt((r.cpuMs / r.n) * 1000),
          mb(r.rssKb),
          r.load,
        ]),
      },
    ],
    notes: [
      ...ratios,
      `CLI floor: \`claude-batch --help\` alone peaks at ${mb(idle.maxRssKb)} (tsx compiling and loading every command's imports).`,
      ...bigRss.map((r) => `CLI peak RSS at ${fmt(r.n)} lines: ${mb(r.rssKb)} (goal ≤ 150 MB).`),
    ],
  };
}

if (process.argv[1] === SELF && process.argv.includes('--child')) {
  await runChild(JSON.parse(process.argv[process.argv.indexOf('--child') + 1] ?? '{}') as ChildArgs);
}
