/**
 * The model check as a soak: `npm run soak -- --minutes N [--seed S] [--in-process] [--no-shrink]`.
 *
 * Runs random operation sequences one after another until the time is up, each on a fresh world
 * (its own emulator and prefix). By default against real `claude-batch worker` processes on a
 * private redis-server with AOF, adding SIGKILL and SIGTERM of workers and Redis restarts (clean
 * and killed) to the operations; `--in-process` runs the workers in this process on REDIS_URL, as
 * `npm test` does. Prints the seed of each sequence, its operations, and any counterexample,
 * shrunk by fast-check (replay one with `--seed S --runs 1`).
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Op, submitArbitrary, type ExtraCommands } from '../../test/model/commands.js';
import { VALID_MODELS } from '../../test/model/model-state.js';
import { getBatchStatus } from '../../test/model/system.js';
import { BASE_LATENCY } from '../../test/model/world.js';
import { Counterexample, runOnce, type RunOptions } from '../../test/model/run-model.js';
import { commandsArbitrary } from '../../test/model/commands.js';
import { startPrivateRedis, silentLogger, type PrivateRedis } from '../../test/model/system.js';
import { InProcessPool, ProcessPool } from '../../test/model/worker-pool.js';
import type { World } from '../../test/model/world.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    seed: { type: 'string' },
    runs: { type: 'string' },
    'max-commands': { type: 'string', default: '20' },
    'in-process': { type: 'boolean', default: false },
    'no-shrink': { type: 'boolean', default: false },
    'quiesce-ms': { type: 'string', default: '30000' },
    only: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

const minutes = Number(values.minutes);
const baseSeed = Number(values.seed ?? Date.now() % 2_147_483_647);
const maxRuns = values.runs === undefined ? Number.POSITIVE_INFINITY : Number(values.runs);
const maxCommands = Number(values['max-commands']);
const inProcess = values['in-process'];
const deadline = Date.now() + minutes * 60_000;

/** The private Redis of the process mode; replaced on restart (same port and directory). */
let redis: PrivateRedis | undefined;
let world: World | undefined;

async function restartRedis(signal: 'SIGTERM' | 'SIGKILL'): Promise<string> {
  if (!redis) return 'no private redis';
  const { port, dir } = redis;
  if (signal === 'SIGKILL') world?.crashes.push(Date.now());
  await redis.stop({ signal });
  redis = await startPrivateRedis({ port, dir, appendonly: true });
  return `restarted on ${port}`;
}

const BIN = fileURLToPath(new URL('../../bin/claude-batch.js', import.meta.url));

/**
 * Workers killed again and again while requests are in flight (slow replies): the same jobs stall
 * past maxStalledCount and BullMQ fails them by itself. Leaves no worker running.
 */
async function crashLoop(w: World, times: number): Promise<string> {
  const pool = w.pool as ProcessPool;
  w.emulator.control.setLatency({ fixedMs: 2_500, jitterMs: 200 });
  let kills = 0;
  try {
    // Every running worker first: what they have in flight (a canary, maybe) stalls too.
    while (pool.running > 0) {
      w.crashes.push(Date.now());
      await pool.killNewest();
      kills += 1;
    }
    for (let i = 0; i < times; i++) {
      const before = w.emulator.control.stats().lastSeq;
      await pool.start();
      // Wait (bounded) until this worker has sent something, so a kill finds requests in flight.
      const until = Date.now() + 8_000;
      while (Date.now() < until && pool.inFlightSince(w, before) === 0) await sleep(100);
      await sleep(300);
      w.crashes.push(Date.now());
      await pool.killNewest();
      kills += 1;
    }
  } finally {
    w.emulator.control.setLatency(BASE_LATENCY);
  }
  return `${kills} kills`;
}

/**
 * `worker --until-idle` alone: once it exits, the queue not paused, every live batch must have
 * ended (or be waiting on a stated fix: paused, or dead letters of a breaker to retry).
 */
async function untilIdle(w: World): Promise<string> {
  if (w.pool.running > 0) return 'skipped: other workers run';
  const env = (w.pool as ProcessPool).environment();
  const child = spawn(process.execPath, [BIN, 'worker', '--until-idle'], { env, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
  const code = await exited;
  clearTimeout(timer);
  if (await w.runtime.requests.isPaused()) return `exit ${code}, queue paused`;
  const counts = await w.runtime.requests.getJobCounts();
  const open: string[] = [];
  for (const id of w.model.liveIds()) {
    const status = await getBatchStatus(w.runtime, id);
    if (status && status.processing_status !== 'ended')
      open.push(`${id} (${status.request_counts.processing} processing)`);
  }
  if (open.length > 0 && code === 0) {
    w.violation(
      `worker --until-idle exited 0 while ${open.join(', ')} had not ended and the queue was not paused; queue ${JSON.stringify(counts)}`,
    );
  }
  return `exit ${code}${open.length ? `, not ended: ${open.join(', ')}` : ''}`;
}

const processCommands: ExtraCommands = [
  {
    arbitrary: submitArbitrary(
      { min: 1_100, max: 1_600 },
      fc.constant([VALID_MODELS[0], VALID_MODELS[1]]),
      fc.constant(true),
    ),
    weight: 1,
  },
  {
    arbitrary: fc.integer({ min: 3, max: 4 }).map(
      (n) =>
        new Op(
          `worker crash loop x${n}`,
          () => true,
          async (_m, w) => crashLoop(w, n),
        ),
    ),
    weight: 1,
  },
  {
    arbitrary: fc.constant(
      new Op(
        'worker --until-idle',
        () => true,
        async (_m, w) => untilIdle(w),
      ),
    ),
    weight: 1,
  },
  {
    arbitrary: fc.constant(
      new Op(
        'worker SIGKILL',
        () => true,
        async (_m, w) => {
          const pool = w.pool as ProcessPool;
          if (pool.running === 0) return 'none running';
          w.crashes.push(Date.now());
          await pool.kill();
          return undefined;
        },
      ),
    ),
    weight: 2,
  },
  {
    arbitrary: fc.constant(
      new Op(
        'worker SIGTERM',
        () => true,
        async (_m, w) => void (await w.pool.stop()),
      ),
    ),
    weight: 1,
  },
  {
    arbitrary: fc.constantFrom<'SIGTERM' | 'SIGKILL'>('SIGTERM', 'SIGKILL').map(
      (signal) =>
        new Op(
          `redis ${signal} + restart`,
          () => true,
          async () => restartRedis(signal),
        ),
    ),
    weight: 1,
  },
];

function runOptions(seed: number): RunOptions {
  const common = {
    seed,
    quiesceMs: Number(values['quiesce-ms']),
    verbose: !values.quiet,
    ...(values.only ? { only: new RegExp(values.only) } : {}),
    onWorld: (w: World) => (world = w),
  };
  if (inProcess) {
    return {
      ...common,
      redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      pool: (config) => new InProcessPool(config, silentLogger),
    };
  }
  return {
    ...common,
    redisUrl: redis!.url,
    pool: (config) =>
      new ProcessPool(() => ({
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        REDIS_URL: config.redisUrl,
        CLAUDE_BATCH_PREFIX: config.prefix,
        ANTHROPIC_API_KEY: 'sk-test-model-check-0000',
        ANTHROPIC_BASE_URL: config.baseURL,
        CLAUDE_BATCH_STALLED_INTERVAL_MS: '1000',
        CLAUDE_BATCH_LOCK_DURATION_MS: '2000',
        CLAUDE_BATCH_BACKOFF_BASE_MS: '50',
        CLAUDE_BATCH_BACKOFF_MAX_MS: '200',
        CLAUDE_BATCH_CONCURRENCY: '4',
        CLAUDE_BATCH_GRACE_PERIOD_MS: '5000',
        CLAUDE_BATCH_REQUEST_TIMEOUT_MS: '20000',
        CLAUDE_BATCH_RECONCILE_INTERVAL_MS: '1000',
        CLAUDE_BATCH_RECONCILE_STALL_MS: '1000',
        // As the in-process model check (test/model/world.ts): hosted batches polled often.
        CLAUDE_BATCH_HOSTED_POLL_MS: '200',
        CLAUDE_BATCH_HOSTED_POLL_MAX_MS: '1000',
        CLAUDE_BATCH_HOSTED_MAX_REQUESTS: '25',
        CLAUDE_BATCH_LOG_LEVEL: 'info',
      })),
  };
}

async function main(): Promise<void> {
  console.log(
    `[soak] base seed ${baseSeed}, ${minutes} min, ${inProcess ? 'in-process workers on REDIS_URL' : 'worker processes on a private redis-server (AOF)'}`,
  );
  if (!inProcess) redis = await startPrivateRedis({ appendonly: true });
  const extra = inProcess ? [] : processCommands;
  const failures: Array<{ seed: number; report: string }> = [];
  let runs = 0;
  try {
    for (let i = 0; Date.now() < deadline && runs < maxRuns; i++) {
      const seed = baseSeed + i;
      runs += 1;
      const started = Date.now();
      if (values['no-shrink']) {
        const [commands] = fc.sample(commandsArbitrary(maxCommands, extra), { seed, numRuns: 1 });
        try {
          await runOnce(commands!, runOptions(seed));
          console.log(`[soak] seed ${seed}: ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
        } catch (err) {
          const report = err instanceof Counterexample ? err.message : String((err as Error).stack);
          failures.push({ seed, report });
          console.log(`[soak] seed ${seed}: COUNTEREXAMPLE\n${report}`);
        }
        continue;
      }
      const property = fc.asyncProperty(commandsArbitrary(maxCommands, extra), async (commands) => {
        await runOnce(commands, runOptions(seed));
      });
      const details = await fc.check(property, {
        seed,
        numRuns: 1,
        plugins: [fc.interruptAfterTimeLimit(Math.max(60_000, deadline - Date.now()))],
      });
      if (details.interrupted && details.numRuns === 0 && details.counterexample === null) {
        // The deadline came while this sequence ran: neither a pass nor a counterexample.
        runs -= 1;
        console.log(`[soak] seed ${seed}: interrupted by the deadline, not counted`);
      } else if (details.failed) {
        const report = `${fc.defaultReportMessage(details)}\n${String((details.errorInstance as Error | undefined)?.message ?? '')}`;
        failures.push({ seed, report });
        console.log(`[soak] seed ${seed}: COUNTEREXAMPLE (shrunk)\n${report}`);
      } else {
        console.log(`[soak] seed ${seed}: ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      }
    }
  } finally {
    await redis?.stop({ signal: 'SIGKILL', removeDir: true });
  }
  console.log(
    `[soak] ${runs} sequences, ${failures.length} counterexample(s)${failures.length ? `: seeds ${failures.map((f) => f.seed).join(', ')}` : ''}`,
  );
  process.exitCode = failures.length > 0 ? 1 : 0;
}

await main();
