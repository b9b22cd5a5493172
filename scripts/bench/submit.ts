/**
 * Section "submit": enqueuing a generated JSONL file of N requests, four ways, each in a fresh child
 * process (so each has its own peak RSS), one after the other against the same Redis:
 *   raw addBulk  the floor: stream the file, JSON.parse each line, Queue.addBulk in chunks as submit's
 *                with the same job names, data, ids and options the producer uses; no validation;
 *   submitBatch  the library, --no-canary (every request held for its share, a hash entry, until sent);
 *   submitBatch  the library with the canary (the default: all but one request per model held behind it);
 *   CLI          `claude-batch submit FILE` (canary on) under /usr/bin/time -v: wall time and peak RSS
 *                of the real command, start-up included, built first as `npm ci` builds it.
 * Rates are requests/s over the work itself (child start-up excluded) except for the CLI row.
 *
 *   npm run bench -- submit [--quick]          (quick: 100k lines; full: 100k and 1M)
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_CHUNK_SIZE } from '../../src/batch/read-requests.js';
import { loadConfig } from '../../src/config/load-config.js';
import { silentLogger } from '../../src/logger.js';
import { REQUESTS_QUEUE, requestJobId, type RequestJobData } from '../../src/queue/jobs.js';
import { submitBatch } from '../../src/queue/producer.js';
import { openRuntime } from '../../src/runtime.js';
import {
  REPO_ROOT,
  benchPrefix,
  childEnv,
  deleteKeys,
  fmt,
  lastJsonLine,
  load1,
  mb,
  median,
  runNode,
  writePromptsFile,
  type BenchContext,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);
// Like for like: the raw loop enqueues in chunks of the size submit uses.
const CHUNK = DEFAULT_CHUNK_SIZE;

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
  let ms: number;
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

/** A row of the table: what ran, from which tree. */
type Run = { variant: Variant; tree: 'this' | 'baseline' } | { variant: 'cli'; tree: 'this' | 'baseline' };

const LABELS: Record<Variant | 'cli', string> = {
  raw: 'raw BullMQ addBulk (floor)',
  'lib-nocanary': 'submitBatch, no canary',
  'lib-canary': 'submitBatch, canary (default)',
  cli: 'CLI `claude-batch submit` (canary), wall',
};

export async function runSubmitSection(ctx: BenchContext): Promise<SectionResult> {
  const sizes = ctx.quick ? [100_000] : [100_000, 1_000_000];
  // Another checkout (e.g. this tree before a change) to run side by side: --baseline DIR.
  const baseline = typeof ctx.options['baseline'] === 'string' ? resolve(ctx.options['baseline']) : null;
  const rows: Row[] = [];
  const ratios: string[] = [];
  // The CLI as `npm ci` leaves it: compiled (bin/claude-batch.js runs dist/ when it is fresh).
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: 'ignore' });
  // The CLI's floor: what `claude-batch --help` alone peaks at.
  const idle = await runNode([join(REPO_ROOT, 'bin/claude-batch.js'), '--help'], childEnv(ctx));
  for (const n of sizes) {
    const file = await writePromptsFile(ctx, `submit-${n}.jsonl`, n);
    const rates = new Map<string, number[]>();
    // One after the other, the floor first; at 100k the raw loop and submitBatch run twice, in
    // mirrored order, so a burst of load elsewhere is less likely to decide a ratio.
    const runs: Run[] = [{ variant: 'raw', tree: 'this' }, { variant: 'lib-nocanary', tree: 'this' }];
    if (baseline) runs.push({ variant: 'lib-nocanary', tree: 'baseline' });
    if (n <= 100_000) runs.push(...[...runs].reverse());
    runs.push({ variant: 'lib-canary', tree: 'this' }, { variant: 'cli', tree: 'this' });
    if (baseline) runs.push({ variant: 'cli', tree: 'baseline' });
    for (const run of runs) {
      const root = run.tree === 'baseline' && baseline ? baseline : REPO_ROOT;
      const label = `${LABELS[run.variant]}${run.tree === 'baseline' ? ' [baseline]' : ''}`;
      const prefix = benchPrefix(`submit-${run.variant}`);
      ctx.log(`submit ${fmt(n)}: ${label}...`);
      let seconds: number;
      let cpuMs: number | null = null;
      let rssKb: number | null;
      if (run.variant === 'cli') {
        const cli = await runNode(
          [join(root, 'bin/claude-batch.js'), 'submit', file, '--log-level', 'warn'],
          childEnv(ctx, { CLAUDE_BATCH_PREFIX: prefix }),
          { nodeFlags: ctx.childNodeFlags },
        );
        if (cli.code !== 0) throw new Error(`claude-batch submit failed: ${cli.stderr.slice(-2000)}`);
        seconds = cli.wallMs / 1000;
        rssKb = cli.maxRssKb;
      } else {
        const child = await runNode(
          [
            '--import',
            'tsx',
            join(root, 'scripts/bench/submit.ts'),
            '--child',
            JSON.stringify({ variant: run.variant, file, redisUrl: ctx.redisUrl, prefix } satisfies ChildArgs),
          ],
          childEnv(ctx),
          { nodeFlags: ctx.childNodeFlags },
        );
        if (child.code !== 0) throw new Error(`submit child ${label} failed: ${child.stderr.slice(-2000)}`);
        const result = lastJsonLine<ChildResult>(child.stdout);
        if (result.enqueued !== n) throw new Error(`${label}: enqueued ${result.enqueued} of ${n}`);
        seconds = result.ms / 1000;
        cpuMs = result.cpuMs;
        rssKb = child.maxRssKb ?? result.maxRssKb;
      }
      const loadNow = load1();
      await deleteKeys(ctx.admin, `${prefix}:*`);
      const rate = n / seconds;
      const key = `${run.variant}/${run.tree}`;
      rates.set(key, [...(rates.get(key) ?? []), rate]);
      rows.push({ n, label, seconds, rate, cpuMs, rssKb, load: loadNow });
      ctx.log(`  ${fmt(rate)} req/s, peak RSS ${mb(rssKb)}, load ${loadNow}`);
    }
    const med = (key: string) => median(rates.get(key) ?? []);
    const ratio = med('lib-nocanary/this') / med('raw/this');
    ratios.push(
      `${fmt(n)} lines: submitBatch (no canary) / raw = **${ratio.toFixed(2)}×** (medians; goal ≥ 0.8×: ${ratio >= 0.8 ? 'met' : 'not met'}).`,
    );
    if (baseline) {
      ratios.push(
        `${fmt(n)} lines: submitBatch this tree / baseline = ${(med('lib-nocanary/this') / med('lib-nocanary/baseline')).toFixed(2)}×; ` +
          `baseline / raw = ${(med('lib-nocanary/baseline') / med('raw/this')).toFixed(2)}×.`,
      );
    }
  }

  const bigRss = rows.filter((r) => r.n === Math.max(...sizes) && r.label.startsWith('CLI'));
  const baselineNote = baseline ? [`[baseline] rows ran from ${baseline}, side by side.`] : [];
  return {
    key: 'submit',
    title: '1. Submit: submitBatch and the CLI against a raw BullMQ addBulk loop',
    intro:
      'Generated full-format lines (~300 bytes each, one model) in a temp dir. Each row is a fresh child ' +
      'process against the same Redis, one after the other; rates exclude process start-up except the ' +
      'CLI row (wall time of the whole command). Raw: readline + JSON.parse + addBulk of the same jobs ' +
      `(name, data, job id, attempts, backoff) in chunks of ${fmt(CHUNK)} (submit's chunk size), no validation. Goal: ≥ 0.8× raw; CLI ` +
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
      ...baselineNote,
      `CLI floor: \`claude-batch --help\` alone peaks at ${mb(idle.maxRssKb)} (node and the CLI's own modules, compiled).`,
      ...bigRss.map(
        (r) =>
          `Peak RSS at ${fmt(r.n)} lines, ${r.label}: ${mb(r.rssKb)} (goal ≤ 150 MB: ${(r.rssKb ?? Infinity) <= 150 * 1024 ? 'met' : 'not met'}).`,
      ),
    ],
  };
}

if (process.argv[1] === SELF && process.argv.includes('--child')) {
  await runChild(JSON.parse(process.argv[process.argv.indexOf('--child') + 1] ?? '{}') as ChildArgs);
}
