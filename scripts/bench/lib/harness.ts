/**
 * What every benchmark section shares: the Redis under test (a private redis-server by default, so
 * INFO commandstats and used_memory see only the benchmark), the emulator in a child process (so it
 * never shares an event loop with the code under test), runtimes under unique prefixes that are
 * deleted afterwards, generated JSONL inputs in a temp dir, and measured child processes.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadConfig, type ConfigOverrides } from '../../../src/config/load-config.js';
import type { EmulatorOptions, EmulatorStats } from '../../../src/emulator/index.js';
import { budgetKeyPattern } from '../../../src/limits/index.js';
import { silentLogger } from '../../../src/logger.js';
import { openRuntime, type Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';

export const MODEL = 'claude-haiku-4-5';
/** Above the emulator's longest reply (128 tokens), so no reply is cut short. */
export const MAX_TOKENS = 256;
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI_BIN = join(REPO_ROOT, 'bin/claude-batch.js');

export interface BenchContext {
  quick: boolean;
  redisUrl: string;
  /** True when the Redis is private to this run: commandstats and memory figures are then exact. */
  privateRedis: boolean;
  /** The admin connection (INFO, cleanup). */
  admin: Redis;
  /** Scratch directory for generated inputs and results; removed at the end. */
  tmpDir: string;
  /** Extra node flags for measured child processes (e.g. --cpu-prof), empty normally. */
  childNodeFlags: string[];
  /** Options of individual sections (from the command line). */
  options: Record<string, string | boolean | undefined>;
  log(message: string): void;
}

/** The 1-minute load average, as `uptime` shows it: noted next to every figure. */
export function load1(): string {
  return (loadavg()[0] ?? 0).toFixed(2);
}

export function randomId(): string {
  return randomBytes(4).toString('hex');
}

/** A hash-tagged prefix no one else uses. */
export function benchPrefix(section: string): string {
  return `{cb-bench-${section}-${randomId()}}`;
}

/** A random API key per run: the shared budget is keyed by the key's fingerprint, not the prefix. */
export function benchApiKey(): Secret {
  return new Secret(`sk-bench-${randomBytes(12).toString('hex')}`);
}

export async function benchRuntime(
  ctx: BenchContext,
  prefix: string,
  apiKey: Secret,
  overrides: ConfigOverrides = {},
): Promise<Runtime> {
  const config = loadConfig({
    env: { REDIS_URL: ctx.redisUrl, ANTHROPIC_API_KEY: apiKey.reveal() },
    overrides: { prefix, logLevel: 'warn', ...overrides },
  });
  return openRuntime(config, { logger: silentLogger });
}

/** Deletes every key matching `pattern` (SCAN + UNLINK). Returns how many. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Closes the runtime, then removes its prefix's keys and its account's budget buckets. */
export async function disposeRuntime(ctx: BenchContext, runtime: Runtime, apiKey: Secret): Promise<void> {
  const prefix = runtime.keys.bullPrefix;
  await runtime.close();
  await deleteKeys(ctx.admin, `${prefix}:*`);
  await deleteKeys(ctx.admin, budgetKeyPattern(apiKey.fingerprint()));
}

// ---------------------------------------------------------------------------------------------
// Redis figures
// ---------------------------------------------------------------------------------------------

/** Calls per command since the server started (INFO commandstats). */
export async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    out.set(match[1] ?? '?', Number(match[2]));
  }
  return out;
}

/** `after - before` per command, the admin's own INFO calls left out. */
export function commandDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [cmd, calls] of after) {
    let n = calls - (before.get(cmd) ?? 0);
    if (cmd === 'info') n -= 1;
    if (n > 0) out.set(cmd, n);
  }
  return out;
}

export function sumCalls(delta: Map<string, number>): number {
  let total = 0;
  for (const n of delta.values()) total += n;
  return total;
}

/** The busiest commands, as `evalsha 2.0, hget 1.0, ...` per job. */
export function topCommands(delta: Map<string, number>, perJobs: number, limit = 8): string {
  return [...delta.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([cmd, n]) => `${cmd} ${(n / perJobs).toFixed(2)}`)
    .join(', ');
}

export async function infoField(redis: Redis, section: string, field: string): Promise<string> {
  const info = await redis.info(section);
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return (match?.[1] ?? '').trim();
}

/** Redis server CPU seconds (user + system) since it started. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = Number(/^used_cpu_user:([\d.]+)/m.exec(info)?.[1] ?? 0);
  const sys = Number(/^used_cpu_sys:([\d.]+)/m.exec(info)?.[1] ?? 0);
  return user + sys;
}

let commandsSent = 0;
let counterInstalled = false;

/** Counts every command any ioredis connection of this process sends (pipelined ones included). */
export function installCommandCounter(): void {
  if (counterInstalled) return;
  counterInstalled = true;
  const proto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown };
  const original = proto.sendCommand;
  proto.sendCommand = function (this: unknown, ...args: unknown[]) {
    commandsSent++;
    return original.apply(this, args);
  };
}

export function clientCommandsSent(): number {
  return commandsSent;
}

// ---------------------------------------------------------------------------------------------
// Private Redis
// ---------------------------------------------------------------------------------------------

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A redis-server on a free port, no persistence (like the shared one here), in a temp dir. */
export async function startPrivateRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
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
      await sleep(50);
    }
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The emulator, in a child process
// ---------------------------------------------------------------------------------------------

export interface EmulatorChild {
  url: string;
  stats(): Promise<EmulatorStats>;
  /** CPU the emulator process used since it started (ms). */
  cpuMs(): Promise<number>;
  close(): Promise<void>;
}

type EmulatorReply = { id: number; stats?: EmulatorStats; cpuMs?: number };

export async function startEmulatorChild(options: EmulatorOptions): Promise<EmulatorChild> {
  const script = fileURLToPath(new URL('./emulator-child.ts', import.meta.url));
  const child = fork(script, [JSON.stringify(options)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url?: string }) => (m.url ? resolve(m.url) : reject(new Error('no url'))));
    child.once('exit', (code) => reject(new Error(`emulator child exited ${code}`)));
  });
  let seq = 0;
  const ask = (type: 'stats' | 'cpu'): Promise<EmulatorReply> =>
    new Promise((resolve) => {
      const id = ++seq;
      const onMessage = (m: EmulatorReply) => {
        if (m.id !== id) return;
        child.off('message', onMessage);
        resolve(m);
      };
      child.on('message', onMessage);
      child.send({ type, id });
    });
  return {
    url,
    stats: async () => (await ask('stats')).stats as EmulatorStats,
    cpuMs: async () => (await ask('cpu')).cpuMs ?? 0,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.send({ type: 'stop', id: 0 });
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

const WORDS = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma omega'.split(' ');

/** The prompt text of request `i`: about `chars` characters, different for every i. */
export function promptText(i: number, chars = 200): string {
  let text = `Request ${i}: summarise these words in one sentence:`;
  let k = i;
  while (text.length < chars) {
    text += ` ${WORDS[k % WORDS.length]}`;
    k = Math.floor(k / 3) + 7;
  }
  return text;
}

export function customId(i: number): string {
  return `req-${String(i).padStart(7, '0')}`;
}

export function requestParams(i: number): { model: string; max_tokens: number; messages: unknown[] } {
  return { model: MODEL, max_tokens: MAX_TOKENS, messages: [{ role: 'user', content: promptText(i) }] };
}

/** Writes `n` full-format request lines (about 300 bytes each). Returns the file's path. */
export async function writePromptsFile(ctx: BenchContext, name: string, n: number): Promise<string> {
  const path = join(ctx.tmpDir, name);
  if (existsSync(path)) return path;
  const out = createWriteStream(path);
  let buffer = '';
  for (let i = 0; i < n; i++) {
    buffer += `${JSON.stringify({ custom_id: customId(i), params: requestParams(i) })}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
  return path;
}

// ---------------------------------------------------------------------------------------------
// Measured child processes
// ---------------------------------------------------------------------------------------------

export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak RSS from /usr/bin/time -v (KiB), or null without it. */
  maxRssKb: number | null;
}

const TIME_BIN = '/usr/bin/time';

/** Runs `node ARGS` to completion under /usr/bin/time -v (when present), keeping its output. */
export async function runNode(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { nodeFlags?: readonly string[]; echoStderr?: boolean } = {},
): Promise<ChildRun> {
  const nodeArgs = [...(options.nodeFlags ?? []), ...args];
  const timed = existsSync(TIME_BIN);
  const started = performance.now();
  const child: ChildProcess = timed
    ? spawn(TIME_BIN, ['-v', process.execPath, ...nodeArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, nodeArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (options.echoStderr) process.stderr.write(d);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  const wallMs = performance.now() - started;
  const rss = timed ? /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr) : null;
  return { code, stdout, stderr, wallMs, maxRssKb: rss ? Number(rss[1]) : null };
}

/** The last JSON object line a child printed on stdout. */
export function lastJsonLine<T>(stdout: string): T {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`no JSON result in the child's output: ${stdout.slice(-500)}`);
  return JSON.parse(line) as T;
}

/** A minimal environment for a child: no API key or other secrets inherited. */
export function childEnv(ctx: BenchContext, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    TMPDIR: process.env['TMPDIR'],
    REDIS_URL: ctx.redisUrl,
    ...extra,
  };
}

/**
 * A `claude-batch worker` process (the built CLI) working `prefix` against the emulator at
 * `baseURL`, with the API key in its environment only, logging warnings to this process's stderr.
 */
export function spawnCliWorker(
  ctx: BenchContext,
  worker: { prefix: string; apiKey: Secret; baseURL: string; args?: readonly string[] },
): ChildProcess {
  return spawn(process.execPath, [CLI_BIN, 'worker', ...(worker.args ?? [])], {
    env: childEnv(ctx, {
      CLAUDE_BATCH_PREFIX: worker.prefix,
      ANTHROPIC_API_KEY: worker.apiKey.reveal(),
      ANTHROPIC_BASE_URL: worker.baseURL,
      CLAUDE_BATCH_LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Stops a child (SIGTERM: a worker finishes its in-flight requests) and waits for it to exit. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function mb(kb: number | null): string {
  return kb === null ? 'n/a' : `${fmt(kb / 1024, 0)} MB`;
}
