/**
 * Benchmark of the shared rate budget: the Lua bucket (src/limits) against a pure Bottleneck
 * Redis-mode budget (three limiters per class with reservoir refill), side by side, in the same run.
 *
 *   npx tsx scripts/bench/budget.ts [--quick]
 *
 * Each scenario starts the emulator enforcing a limit, sets the budget to the same limit, and sends
 * N requests through the real SDK from 1 or 3 worker processes (children of this script, each with
 * its own Redis connection and `concurrency` requests in flight). A 429 is retried after its hold.
 *   utilisation = theoretical minimum time / actual time, where the minimum is the time the API's
 *                 bucket needs (a full bucket at once, then steady refill) for what the requests
 *                 actually consumed, and actual is from "go" to the last admission;
 *   429s        = rate-limit errors the emulator sent (the budget let through more than the limit);
 *   Redis calls = commands the private Redis server executed (INFO commandstats) per request.
 * A private redis-server (no persistence) on a free port keeps other Redis users out of the counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { createClaudeClient } from '../../src/claude/claude-client.js';
import { startEmulator } from '../../src/emulator/index.js';
import {
  createRateBudget,
  estimateRequest,
  type BudgetLease,
  type CallReport,
  type RateBudget,
  type RequestEstimate,
} from '../../src/limits/index.js';
import { Secret } from '../../src/secret.js';

type Variant = 'lua' | 'bottleneck';
type Dimension = 'rpm' | 'itpm';

interface ChildArgs {
  variant: Variant;
  redisUrl: string;
  emulatorUrl: string;
  accountId: string;
  limits: { rpm?: number; itpm?: number };
  requests: number;
  offset: number;
  concurrency: number;
  promptChars: number;
  deadlineMs: number;
}

interface ChildResult {
  done: number;
  rateLimited: number;
  lastAdmit: number;
  /** Commands this process sent to Redis after "go" (every connection, Bottleneck's too). */
  roundTrips: number;
}

/** Counts every command any ioredis connection of this process sends (round trips to Redis). */
let commandsSent = 0;
function countCommands(): void {
  const proto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown };
  const original = proto.sendCommand;
  proto.sendCommand = function (this: unknown, ...args: unknown[]) {
    commandsSent++;
    return original.apply(this, args);
  };
}

const MODEL = 'claude-haiku-4-5';
const MAX_TOKENS = 24;

// ---------------------------------------------------------------------------------------------
// The pure Bottleneck Redis-mode budget: one limiter per limit, reservoir = capacity, refilled by
// reservoirIncrease* every 100 ms up to the capacity; token limiters have no maxConcurrent (weight
// would count against it). Acquire schedules on each limiter in turn; settle refunds or charges the
// token difference with incrementReservoir (which Bottleneck does not cap at the maximum).
// ---------------------------------------------------------------------------------------------
class BottleneckBudget implements RateBudget {
  readonly #connection: Bottleneck.IORedisConnection;
  readonly #limiters: Array<{ limiter: Bottleneck; cost: (e: RequestEstimate) => number }> = [];
  #input: Bottleneck | null = null;

  constructor(redis: Redis, accountId: string, limits: { rpm?: number; itpm?: number }) {
    this.#connection = new Bottleneck.IORedisConnection({ client: redis });
    const make = (name: string, capacity: number) => {
      const intervalMs = 100;
      return new Bottleneck({
        id: `{cb-bn-${accountId}}-${name}`,
        datastore: 'ioredis',
        connection: this.#connection,
        clearDatastore: false,
        reservoir: capacity,
        reservoirIncreaseInterval: intervalMs,
        reservoirIncreaseAmount: Math.max(1, Math.round((capacity * intervalMs) / 60_000)),
        reservoirIncreaseMaximum: capacity,
      });
    };
    if (limits.rpm) this.#limiters.push({ limiter: make('rpm', limits.rpm), cost: () => 1 });
    if (limits.itpm) {
      this.#input = make('itpm', limits.itpm);
      this.#limiters.push({ limiter: this.#input, cost: (e) => Math.ceil(e.inputTokens) });
    }
  }

  async ready(): Promise<void> {
    await Promise.all(this.#limiters.map((l) => l.limiter.ready()));
  }

  async acquire(estimate: RequestEstimate, signal?: AbortSignal): Promise<BudgetLease> {
    for (const { limiter, cost } of this.#limiters) {
      // Queued Bottleneck jobs cannot be cancelled: give up waiting at the deadline instead.
      await Promise.race([
        limiter.schedule({ weight: cost(estimate) }, async () => {}),
        new Promise<never>((_, reject) => {
          if (signal?.aborted) reject(new Error('aborted'));
          signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
      ]);
    }
    return { estimate, modelClass: 'default' };
  }

  async settle(lease: BudgetLease, report: CallReport): Promise<void> {
    if (!this.#input) return;
    const used = report.usage ? report.usage.input_tokens + (report.usage.cache_creation_input_tokens ?? 0) : 0;
    const delta = Math.ceil(lease.estimate.inputTokens) - used;
    if (delta !== 0) await this.#input.incrementReservoir(delta);
  }

  async close(): Promise<void> {
    await Promise.all(this.#limiters.map((l) => l.limiter.disconnect(false)));
  }
}

// ---------------------------------------------------------------------------------------------
// Child: one worker process.
// ---------------------------------------------------------------------------------------------
async function runChild(args: ChildArgs): Promise<void> {
  countCommands();
  const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: null });
  await redis.ping();
  let budget: RateBudget;
  if (args.variant === 'lua') {
    budget = createRateBudget({ redis, accountId: args.accountId, default: args.limits });
  } else {
    const bn = new BottleneckBudget(redis, args.accountId, args.limits);
    await bn.ready();
    budget = bn;
  }
  const client = createClaudeClient({ apiKey: new Secret('sk-bench'), baseURL: args.emulatorUrl, timeoutMs: 30_000 });
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    createInterface({ input: process.stdin }).once('line', () => resolve());
  });
  const deadline = Date.now() + args.deadlineMs;
  const sentBefore = commandsSent;
  const stop = new AbortController();
  setMaxListeners(10_000, stop.signal);
  const timer = setTimeout(() => stop.abort(), args.deadlineMs);
  const result: ChildResult = { done: 0, rateLimited: 0, lastAdmit: 0, roundTrips: 0 };
  let next = 0;
  const worker = async () => {
    while (next < args.requests && Date.now() < deadline) {
      const i = args.offset + next++;
      const text = `Bench request ${i}. `.padEnd(args.promptChars, 'lorem ipsum dolor sit amet ');
      const params = { model: MODEL, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: text }] };
      for (;;) {
        let lease: BudgetLease;
        try {
          lease = await budget.acquire(estimateRequest(params), stop.signal);
        } catch {
          return; // deadline
        }
        result.lastAdmit = Date.now();
        const call = await client.call(params);
        const limited = !call.ok && call.failure.status === 429;
        await budget.settle(lease, {
          usage: call.ok ? call.usage : null,
          headers: call.ok ? call.headers : call.failure.headers,
          rateLimitedForMs: limited ? 1000 : null,
        });
        if (call.ok) {
          result.done++;
          break;
        }
        if (limited) {
          result.rateLimited++;
          if (args.variant === 'bottleneck') await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        throw new Error(`unexpected failure: ${call.failure.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  clearTimeout(timer);
  result.roundTrips = commandsSent - sentBefore;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Bottleneck jobs still queued at a deadline cannot be cancelled: leave without waiting for them.
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent.
// ---------------------------------------------------------------------------------------------
interface Scenario {
  variant: Variant;
  dimension: Dimension;
  processes: number;
}

interface Row extends Scenario {
  requests: number;
  done: number;
  minSeconds: number;
  actualSeconds: number;
  utilisation: number;
  rateLimited: number;
  /** Commands the clients sent (round trips), per request. */
  roundTripsPerRequest: number;
  /** Commands Redis executed, those inside scripts included (INFO commandstats), per request. */
  commandsPerRequest: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cb-bench-redis-'));
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (i > 100) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function commandCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const match of info.matchAll(/calls=(\d+)/g)) total += Number(match[1]);
  return total;
}

function spawnChild(args: ChildArgs): { child: ChildProcess; ready: Promise<void>; result: Promise<ChildResult> } {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify(args)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const result = new Promise<ChildResult>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else if (line.startsWith('{')) resolve(JSON.parse(line) as ChildResult);
    });
    child.on('exit', (code) => reject(new Error(`bench child exited ${code} without a result`)));
  });
  return { child, ready, result };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const steadySeconds = quick ? 8 : 30;
  // RPM: 600/min (10/s). ITPM: 120,000/min with prompts of about 200 tokens (10 requests/s).
  const rpm = 600;
  const itpm = 120_000;
  const promptChars = 800;
  const concurrency = quick ? 24 : 48;
  const scenarios: Scenario[] = [];
  for (const dimension of ['rpm', 'itpm'] as const) {
    for (const processes of [1, 3]) {
      for (const variant of ['lua', 'bottleneck'] as const) scenarios.push({ variant, dimension, processes });
    }
  }

  const redisServer = await startRedis();
  const admin = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const emulator = await startEmulator({ latency: { fixedMs: 30, jitterMs: 40 }, requestLogSize: 0 });
  const rows: Row[] = [];
  const started = Date.now();
  try {
    for (const scenario of scenarios) {
      const limits = scenario.dimension === 'rpm' ? { rpm } : { itpm };
      const perSecond = (scenario.dimension === 'rpm' ? rpm : itpm) / 60;
      const capacity = scenario.dimension === 'rpm' ? rpm : itpm;
      // Enough requests for a full bucket plus `steadySeconds` of refill.
      const requests = Math.round((capacity + perSecond * steadySeconds) / (scenario.dimension === 'rpm' ? 1 : 200));
      await admin.flushall();
      emulator.control.setLimits(limits);
      emulator.control.reset();
      const accountId = `bench${Date.now().toString(36)}`;
      const minSecondsGuess = steadySeconds;
      const deadlineMs = Math.round((minSecondsGuess * 3 + 10) * 1000);
      const share = Math.floor(requests / scenario.processes);
      const children = Array.from({ length: scenario.processes }, (_, p) =>
        spawnChild({
          variant: scenario.variant,
          redisUrl: redisServer.url,
          emulatorUrl: emulator.url,
          accountId,
          limits,
          requests: p === scenario.processes - 1 ? requests - share * p : share,
          offset: p * share,
          concurrency,
          promptChars,
          deadlineMs,
        }),
      );
      await Promise.all(children.map((c) => c.ready));
      const callsBefore = await commandCalls(admin);
      const go = Date.now();
      for (const c of children) c.child.stdin!.write('go\n');
      const results = await Promise.all(children.map((c) => c.result));
      const callsAfter = await commandCalls(admin);
      const stats = emulator.control.stats();
      const done = results.reduce((s, r) => s + r.done, 0);
      const lastAdmit = Math.max(...results.map((r) => r.lastAdmit));
      const consumed = scenario.dimension === 'rpm' ? (stats.byStatus['200'] ?? 0) : stats.tokens.input;
      // The API's bucket: `capacity` at once, the rest at the refill rate.
      const minSeconds = Math.max(0, (consumed - capacity) / perSecond);
      const actualSeconds = (lastAdmit - go) / 1000;
      rows.push({
        ...scenario,
        requests,
        done,
        minSeconds,
        actualSeconds,
        utilisation: actualSeconds > 0 ? minSeconds / actualSeconds : 0,
        rateLimited: stats.byStatus['429'] ?? 0,
        roundTripsPerRequest: results.reduce((sum, r) => sum + r.roundTrips, 0) / Math.max(1, done),
        commandsPerRequest: (callsAfter - callsBefore - 1) / Math.max(1, done),
      });
      const row = rows[rows.length - 1]!;
      process.stderr.write(
        `${scenario.variant} ${scenario.dimension} x${scenario.processes}: ${done}/${requests} in ${actualSeconds.toFixed(1)} s ` +
          `(min ${minSeconds.toFixed(1)} s), 429s ${row.rateLimited}, ${row.roundTripsPerRequest.toFixed(1)} round trips and ` +
          `${row.commandsPerRequest.toFixed(1)} Redis commands per request\n`,
      );
    }
  } finally {
    await emulator.close();
    admin.disconnect();
    await redisServer.stop();
  }

  const header = [
    'limit',
    'procs',
    'design',
    'done/N',
    'min s',
    'actual s',
    'utilisation',
    '429s',
    'round trips/req',
    'Redis cmds/req',
  ];
  const table = rows.map((r) => [
    r.dimension === 'rpm' ? `RPM ${rpm}` : `ITPM ${itpm}`,
    String(r.processes),
    r.variant === 'lua' ? 'Lua bucket' : 'Bottleneck Redis',
    `${r.done}/${r.requests}`,
    r.minSeconds.toFixed(1),
    r.actualSeconds.toFixed(1),
    r.utilisation.toFixed(2),
    String(r.rateLimited),
    r.roundTripsPerRequest.toFixed(1),
    r.commandsPerRequest.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  console.log(
    `\n${quick ? 'quick' : 'full'} run, ${concurrency} requests in flight per process, emulator latency 30-70 ms, ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s in all. Round trips: commands the workers sent; ` +
      'Redis cmds: commands Redis executed, those run inside scripts included.',
  );
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  await runChild(JSON.parse(process.argv[childIndex + 1] ?? '{}') as ChildArgs);
} else {
  await main();
}
