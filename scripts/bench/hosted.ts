/**
 * Section "hosted" (issue 14): the hosted Message Batches path against the live one, as the user
 * runs them: separate `claude-batch submit` and `claude-batch worker` processes (the compiled CLI,
 * default flags except the emulator's URL and key, and the budget), on the emulator in a child
 * process.
 *
 * 1. One 10,000-request file `--via live`, `--via batches` and `--via auto --deadline D`, each on a
 *    fresh emulator answering live calls in 1.5-2.5 s (fixed 1,500 ms + up to 1,000 ms jitter) and
 *    enforcing the budget's RPM itself; the worker runs `--rpm R` (submit reads the same budget from
 *    CLAUDE_BATCH_RPM: `auto` plans with it). Hosted batches start 10 s after creation and take a
 *    fixed time per request, chosen so the hosted path ends a minute after D: the hours the real
 *    API may take, compressed. D lies between the live and the hosted wall times, and leaves room
 *    for `auto` to start hosted. Wall: submit's spawn until the batch record has `ended_at`. Cost:
 *    the record's usage at the built-in prices, hosted usage (`usage_hosted`) at half.
 *    CLAUDE_BATCH_HOSTED_CANCEL_MS (auto's expected cancel-to-end time, 10 min by default for the
 *    real API) is 20 s here: the emulator's cancel ends within one request's processing time, and
 *    a 10 min margin would send every compressed `auto` run live from the start.
 * 2. Full-size splits `--via batches` with the default limits (100,000 requests, 256 MB per hosted
 *    batch): 150,000 small requests, and an input over 256 MB (about 2,600 prompts of ~100 KB).
 *    Hosted batches created and their sizes, intent → created times, the worker's peak RSS
 *    (VmHWM), wall to the end.
 *
 *   npm run bench -- hosted [--quick] [--hosted-parts paths,splits]
 *                          (quick: 2,000 requests at 1,000 RPM; splits of 15,000 requests and 27 MB at a
 *                          tenth of the API's limits. --hosted-parts: only the three paths, or the splits)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmulatorOptions } from '../../src/emulator/index.js';
import type { ChunkMeta } from '../../src/hosted/chunks.js';
import { budgetKeyPattern } from '../../src/limits/index.js';
import { DEFAULT_PRICE_TABLE, estimateCost } from '../../src/pricing/price-table.js';
import { KeyLayout } from '../../src/redis/keys.js';
import { parseBatchRecord, type BatchRecord, type UsageTotals } from '../../src/store/batch-record.js';
import {
  CLI_BIN,
  MAX_TOKENS,
  MODEL,
  REPO_ROOT,
  benchApiKey,
  benchPrefix,
  childEnv,
  customId,
  deleteKeys,
  fmt,
  infoField,
  load1,
  mb,
  promptText,
  runNode,
  sleep,
  startEmulatorChild,
  writePromptsFile,
  type BenchContext,
  type EmulatorChild,
} from './lib/harness.js';
import type { SectionResult, Table } from './lib/report.js';

const LATENCY = { fixedMs: 1_500, jitterMs: 1_000 };
const START_DELAY_MS = 10_000;
/** auto's planned cancel-to-end time (see the header). */
const CANCEL_MS = 20_000;
/** auto plans the live path at 80 % of the budget (src/hosted/route.ts routePlanOf). */
const AUTO_LIVE_SHARE = 0.8;
const POLL_MS = 500;
/** A run not ended by then has hung: fail the section rather than the machine. */
const RUN_DEADLINE_MS = 20 * 60_000;
/** Prompt size of the large-input run: ~100 KB lines, enough of them to pass its size. */
const LARGE_PROMPT_CHARS = 100_000;

/** The full-size runs, and the quick run's scaled-down ones (limits a tenth of the API's). */
interface SplitPlan {
  smallN: number;
  largeBytes: number;
  /** Hosted limits of the worker and the emulator; undefined: the defaults (the API's). */
  maxRequests?: number;
  maxBytes?: number;
}
const FULL_SPLITS: SplitPlan = { smallN: 150_000, largeBytes: 270_000_000 };
const QUICK_SPLITS: SplitPlan = { smallN: 15_000, largeBytes: 27_000_000, maxRequests: 10_000, maxBytes: 25_600_000 };

interface PathRun {
  label: string;
  seconds: number;
  served: { live: number; hosted: number };
  liveUsd: number;
  hostedUsd: number;
  hostedBatches: number;
  deadlineMet: string;
  load: string;
}

interface SplitRun {
  label: string;
  inputMb: number;
  requests: number;
  submitSeconds: number;
  submitRssKb: number | null;
  seconds: number;
  chunks: Array<ChunkMeta & { observedCreatedAt: number | null }>;
  hostedCreated: number;
  workerPeakKb: number | null;
  redisPeak: string;
  load: string;
}

export async function runHostedSection(ctx: BenchContext): Promise<SectionResult> {
  const parts = String(ctx.options['hosted-parts'] ?? 'paths,splits').split(',');
  const n = ctx.quick ? 2_000 : 10_000;
  const rpm = ctx.quick ? 1_000 : 3_000;
  // What auto plans the live path to need, and the deadline that leaves it 30 s of hosted time.
  const planLiveS = n / ((AUTO_LIVE_SHARE * rpm) / 60);
  const deadlineS = Math.round(planLiveS + CANCEL_MS / 1000 + 30);
  // Hosted ends a minute after the deadline: per-request time from the start delay on.
  const processingMs = Math.round(((deadlineS + 60) * 1000 - START_DELAY_MS) / n);
  // The CLI as `npm ci` leaves it: compiled (bin/claude-batch.js runs dist/ when it is fresh).
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: 'ignore' });

  const file = await writePromptsFile(ctx, `hosted-${n}.jsonl`, n);
  const emulatorOptions: EmulatorOptions = {
    seed: 14,
    latency: LATENCY,
    limits: { rpm },
    requestLogSize: 0,
    batchesStartDelayMs: START_DELAY_MS,
    batchesProcessingMs: processingMs,
  };
  const runs: PathRun[] = [];
  const paths = [
    ['--via live', ['--via', 'live']],
    ['--via batches', ['--via', 'batches']],
    [`--via auto --deadline ${deadlineS}s`, ['--via', 'auto', '--deadline', `${deadlineS}s`]],
  ] as const;
  for (const [label, flags] of parts.includes('paths') ? paths : []) {
    ctx.log(`hosted: ${fmt(n)} requests ${label}, --rpm ${rpm}...`);
    const run = await pathRun(ctx, file, n, rpm, [...flags], emulatorOptions);
    runs.push({ label, ...run, load: load1() });
    ctx.log(
      `  ${run.seconds.toFixed(0)} s, served live ${run.served.live} hosted ${run.served.hosted}, ` +
        `$${(run.liveUsd + run.hostedUsd).toFixed(3)}, load ${load1()}`,
    );
  }

  const splits: SplitRun[] = [];
  if (parts.includes('splits')) {
    const plan = ctx.quick ? QUICK_SPLITS : FULL_SPLITS;
    ctx.log(`hosted: split, ${fmt(plan.smallN)} requests --via batches...`);
    const small = await writePromptsFile(ctx, `hosted-split-${plan.smallN}.jsonl`, plan.smallN);
    splits.push(await splitRun(ctx, `${fmt(plan.smallN)} requests of ~300 B`, small, plan.smallN, plan));
    const large = await writeLargeFile(ctx, plan.largeBytes);
    ctx.log(`hosted: split, ${fmt(large.n)} requests in ${(large.bytes / 1e6).toFixed(0)} MB --via batches...`);
    splits.push(await splitRun(ctx, `${fmt(large.n)} prompts of ~100 KB`, large.path, large.n, plan));
  }

  const usd = (r: PathRun) => r.liveUsd + r.hostedUsd;
  const notes: string[] = [];
  const tables: Table[] = [];
  const [live, batches, auto] = runs;
  if (live && batches && auto) {
    notes.push(
      `--via batches cost ${(usd(batches) / usd(live)).toFixed(3)}× the live run (the canary goes live at full price), ` +
        `and took ${(batches.seconds / live.seconds).toFixed(2)}× its wall time.`,
      `--via auto --deadline ${deadlineS}s: ${auto.deadlineMet}; ${fmt(auto.served.hosted)} requests served hosted, ` +
        `${fmt(auto.served.live)} live; cost ${(usd(auto) / usd(live)).toFixed(3)}× live. auto plans the live path at ` +
        `${AUTO_LIVE_SHARE * 100} % of the budget (${fmt(planLiveS, 0)} s for ${fmt(n)} requests) plus ${CANCEL_MS / 1000} s ` +
        `for a cancel: it stays hosted only until ${fmt(deadlineS - planLiveS - CANCEL_MS / 1000, 0)} s after submit, then ` +
        'cancels the hosted batch and finishes live at the top priority.',
      `Emulator: live calls ${LATENCY.fixedMs}-${LATENCY.fixedMs + LATENCY.jitterMs} ms, ${fmt(rpm)} RPM bucket (it starts ` +
        `full, as the runner's budget does: the first minute's requests go at once); hosted batches start ` +
        `${START_DELAY_MS / 1000} s after creation and process ${processingMs} ms per request ` +
        `(${fmt((START_DELAY_MS + processingMs * n) / 1000, 0)} s for the batch). Worker: \`claude-batch worker --rpm ${rpm}\`, ` +
        'default hosted polling (10 s, x1.5 up to 60 s), so the hosted wall includes up to a minute of polling lag.',
      'Prices: the built-in list (claude-haiku-4-5: $1 / $5 per million input / output tokens), hosted usage at half.',
    );
    tables.push({
      header: ['path', 'wall s', 'served live', 'served hosted', 'hosted batches', 'cost live $', 'cost hosted $', 'cost $', 'deadline', 'load'],
      rows: runs.map((r) => [
        `\`${r.label}\``,
        r.seconds.toFixed(0),
        fmt(r.served.live),
        fmt(r.served.hosted),
        String(r.hostedBatches),
        r.liveUsd.toFixed(4),
        r.hostedUsd.toFixed(4),
        usd(r).toFixed(4),
        r.deadlineMet,
        r.load,
      ]),
    });
  }
  if (splits.length > 0) {
    tables.push({
      header: ['input', 'MB', 'submit s', 'submit RSS', 'hosted batches', 'sizes (requests / MB)', 'intent → created s', 'wall s', 'worker peak RSS', 'Redis peak', 'load'],
      rows: splits.map((s) => [
        s.label,
        fmt(s.inputMb),
        s.submitSeconds.toFixed(1),
        mb(s.submitRssKb),
        String(s.hostedCreated),
        s.chunks.map((c) => `${fmt(c.count)} / ${fmt(c.bytes / 1e6, 1)}`).join(', '),
        s.chunks
          .map((c) => (c.observedCreatedAt && c.intent_at ? ((c.observedCreatedAt - c.intent_at) / 1000).toFixed(1) : '?'))
          .join(', '),
        s.seconds.toFixed(0),
        mb(s.workerPeakKb),
        s.redisPeak,
        s.load,
      ]),
    });
    notes.push(
      (ctx.quick
        ? `Quick splits: the limits a tenth of the API's (CLAUDE_BATCH_HOSTED_MAX_REQUESTS ${fmt(QUICK_SPLITS.maxRequests ?? 0)}, ` +
          `CLAUDE_BATCH_HOSTED_MAX_BYTES ${fmt(QUICK_SPLITS.maxBytes ?? 0)}, the emulator's the same)`
        : 'Full-size splits: the default limits (CLAUDE_BATCH_HOSTED_MAX_REQUESTS 100,000, CLAUDE_BATCH_HOSTED_MAX_BYTES ' +
          "256,000,000), the emulator with the API's") +
        '; hosted batches processed at once after 1 s, default polling. A chunk\'s MB are the ' +
        'stored job data the runner counts (an upper bound of its create body). intent → created: from the recorded ' +
        'intent to the chunk seen `created` (polled every 0.5 s): reading the chunk from Redis, building and uploading ' +
        'the create body, the emulator parsing it. Worker peak RSS: VmHWM of the worker process over the run; Redis ' +
        'peak: used_memory_peak of the private redis-server since it started (every section before included).',
    );
  }
  return {
    key: 'hosted',
    title: '13. Hosted Message Batches: live, batches and auto on one 10,000-request file; full-size splits',
    intro:
      `Separate \`claude-batch submit\` and \`claude-batch worker --rpm ${rpm}\` processes (compiled CLI, default ` +
      'flags otherwise; CLAUDE_BATCH_RPM for submit, which `auto` plans with) on a fresh emulator child per run. ' +
      `${fmt(n)} generated ~300-byte requests (${MODEL}, max_tokens ${MAX_TOKENS}). Wall: submit spawned until the ` +
      'batch record has ended_at. Cost: the record\'s usage at the built-in prices, `usage_hosted` at half.',
    tables,
    notes,
  };
}

/** One 10,000-request run on its own emulator: submit, a worker, wait for the end, read the record. */
async function pathRun(
  ctx: BenchContext,
  file: string,
  n: number,
  rpm: number,
  flags: string[],
  emulatorOptions: EmulatorOptions,
): Promise<Omit<PathRun, 'label' | 'load'>> {
  const emulator = await startEmulatorChild(emulatorOptions);
  const prefix = benchPrefix('hosted');
  const apiKey = benchApiKey();
  const keys = new KeyLayout(prefix);
  const env = childEnv(ctx, {
    CLAUDE_BATCH_PREFIX: prefix,
    ANTHROPIC_API_KEY: apiKey.reveal(),
    ANTHROPIC_BASE_URL: emulator.url,
    CLAUDE_BATCH_LOG_LEVEL: 'warn',
    CLAUDE_BATCH_RPM: String(rpm),
    CLAUDE_BATCH_HOSTED_CANCEL_MS: String(CANCEL_MS),
  });
  const worker = spawnWorker(env, ['--rpm', String(rpm)]);
  try {
    const t0 = performance.now();
    const submit = await runNode([CLI_BIN, 'submit', file, ...flags], env);
    if (submit.code !== 0) throw new Error(`claude-batch submit exited ${submit.code}: ${submit.stderr.slice(-2000)}`);
    const batchId = submit.stdout.trim().split('\n').at(-1)?.trim() ?? '';
    const record = await waitForEnd(ctx, keys, batchId, worker.child, t0);
    const seconds = (performance.now() - t0) / 1000;
    const lines = await ctx.admin.hlen(keys.results(batchId));
    if (lines !== n || record.counts.succeeded !== n) {
      throw new Error(`${flags.join(' ')}: ${lines} results lines, ${record.counts.succeeded} succeeded of ${n}`);
    }
    const stats = await emulator.stats();
    const { liveUsd, hostedUsd } = costOf(record);
    const endedAt = Date.parse(record.ended_at ?? '');
    return {
      seconds,
      served: record.served,
      liveUsd,
      hostedUsd,
      hostedBatches: stats.hostedBatches.created,
      deadlineMet:
        record.deadline === null
          ? '-'
          : endedAt <= record.deadline
            ? `met, ${((record.deadline - endedAt) / 1000).toFixed(0)} s early`
            : `missed by ${((endedAt - record.deadline) / 1000).toFixed(0)} s`,
    };
  } finally {
    await worker.stop();
    await emulator.close();
    await deleteKeys(ctx.admin, `${keys.bullPrefix}:*`);
    await deleteKeys(ctx.admin, budgetKeyPattern(apiKey.fingerprint()));
  }
}

/** A full-size `--via batches` run with the default limits: its chunks, times and memory. */
async function splitRun(
  ctx: BenchContext,
  label: string,
  file: string,
  n: number,
  plan: SplitPlan,
): Promise<SplitRun> {
  const emulator: EmulatorChild = await startEmulatorChild({
    seed: 14,
    requestLogSize: 0,
    batchesStartDelayMs: 1_000,
    batchesProcessingMs: 0,
    ...(plan.maxRequests ? { batchesMaxRequests: plan.maxRequests } : {}),
    ...(plan.maxBytes ? { batchesMaxBytes: plan.maxBytes } : {}),
  });
  const prefix = benchPrefix('hosted-split');
  const apiKey = benchApiKey();
  const keys = new KeyLayout(prefix);
  const env = childEnv(ctx, {
    CLAUDE_BATCH_PREFIX: prefix,
    ANTHROPIC_API_KEY: apiKey.reveal(),
    ANTHROPIC_BASE_URL: emulator.url,
    CLAUDE_BATCH_LOG_LEVEL: 'warn',
    ...(plan.maxRequests ? { CLAUDE_BATCH_HOSTED_MAX_REQUESTS: String(plan.maxRequests) } : {}),
    ...(plan.maxBytes ? { CLAUDE_BATCH_HOSTED_MAX_BYTES: String(plan.maxBytes) } : {}),
  });
  const inputMb = (await stat(file)).size / 1e6;
  let worker: ReturnType<typeof spawnWorker> | undefined;
  try {
    const t0 = performance.now();
    const submit = await runNode([CLI_BIN, 'submit', file, '--via', 'batches'], env);
    if (submit.code !== 0) throw new Error(`claude-batch submit exited ${submit.code}: ${submit.stderr.slice(-2000)}`);
    const submitSeconds = (performance.now() - t0) / 1000;
    const batchId = submit.stdout.trim().split('\n').at(-1)?.trim() ?? '';
    worker = spawnWorker(env, []);
    const seen = new Map<number, number>();
    const t1 = performance.now();
    const record = await waitForEnd(ctx, keys, batchId, worker.child, t1, async () => {
      for (const chunk of await chunksOf(ctx, keys, batchId)) {
        if (!seen.has(chunk.n) && chunk.hosted_id) seen.set(chunk.n, Date.now());
      }
    });
    const seconds = (performance.now() - t1) / 1000;
    const workerPeakKb = await peakRssKb(worker.child.pid);
    if (record.counts.succeeded !== n) throw new Error(`${label}: ${record.counts.succeeded} succeeded of ${n}`);
    const chunks = (await chunksOf(ctx, keys, batchId)).map((c) => ({ ...c, observedCreatedAt: seen.get(c.n) ?? null }));
    const stats = await emulator.stats();
    return {
      label,
      inputMb,
      requests: n,
      submitSeconds,
      submitRssKb: submit.maxRssKb,
      seconds,
      chunks,
      hostedCreated: stats.hostedBatches.created,
      workerPeakKb,
      redisPeak: await infoField(ctx.admin, 'memory', 'used_memory_peak_human'),
      load: load1(),
    };
  } finally {
    await worker?.stop();
    await emulator.close();
    await deleteKeys(ctx.admin, `${keys.bullPrefix}:*`);
    await deleteKeys(ctx.admin, budgetKeyPattern(apiKey.fingerprint()));
  }
}

/** Polls the batch record until it has ended (and `each` on every round); fails if the worker dies. */
async function waitForEnd(
  ctx: BenchContext,
  keys: KeyLayout,
  batchId: string,
  worker: ChildProcess,
  t0: number,
  each: () => Promise<void> = async () => {},
): Promise<BatchRecord> {
  for (;;) {
    if (worker.exitCode !== null) throw new Error(`the worker exited ${worker.exitCode}`);
    if (performance.now() - t0 > RUN_DEADLINE_MS) throw new Error(`batch ${batchId}: not ended in time`);
    await each();
    const record = parseBatchRecord(await ctx.admin.hgetall(keys.batch(batchId)));
    if (record?.ended_at) return record;
    await sleep(POLL_MS);
  }
}

async function chunksOf(ctx: BenchContext, keys: KeyLayout, batchId: string): Promise<ChunkMeta[]> {
  const raw = await ctx.admin.hvals(keys.chunks(batchId));
  return raw.map((json) => JSON.parse(json) as ChunkMeta).sort((a, b) => a.n - b.n);
}

/** Live usage at the built-in prices, hosted usage (also counted in `usage`) at half. */
function costOf(record: BatchRecord): { liveUsd: number; hostedUsd: number } {
  const minus = (a: UsageTotals, b: UsageTotals): UsageTotals => ({
    input_tokens: a.input_tokens - b.input_tokens,
    output_tokens: a.output_tokens - b.output_tokens,
    cache_creation_input_tokens: a.cache_creation_input_tokens - b.cache_creation_input_tokens,
    cache_read_input_tokens: a.cache_read_input_tokens - b.cache_read_input_tokens,
  });
  const price = (usage: UsageTotals) => estimateCost(usage, record.models, DEFAULT_PRICE_TABLE).usd ?? 0;
  return {
    liveUsd: price(minus(record.usage, record.usage_hosted)),
    hostedUsd: price(record.usage_hosted) / 2,
  };
}

/** `claude-batch worker ARGS` with the run's environment; its stderr (warnings) goes to ours. */
function spawnWorker(env: NodeJS.ProcessEnv, args: string[]): { child: ChildProcess; stop: () => Promise<void> } {
  const child = spawn(process.execPath, [CLI_BIN, 'worker', ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const exited = once(child, 'exit');
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      }, 60_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The process's peak resident set (VmHWM, KiB) from /proc, or null where there is none. */
async function peakRssKb(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Writes ~100 KB prompts until the file passes {@link LARGE_BYTES}. */
async function writeLargeFile(ctx: BenchContext, target: number): Promise<{ path: string; n: number; bytes: number }> {
  const path = join(ctx.tmpDir, `hosted-large-${target}.jsonl`);
  const out = createWriteStream(path);
  let bytes = 0;
  let n = 0;
  while (bytes < target) {
    const line = `${JSON.stringify({
      custom_id: customId(n),
      params: { model: MODEL, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: promptText(n, LARGE_PROMPT_CHARS) }] },
    })}\n`;
    bytes += Buffer.byteLength(line);
    n++;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { path, n, bytes };
}
