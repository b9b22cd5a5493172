/**
 * Shared tools of the durability suite: worker processes a test can kill, a private Redis per file,
 * the CLI against it, and the emulator's log read as "how often was each prompt sent".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import {
  startPrivateRedis,
  type PrivateRedis,
  type PrivateRedisOptions,
} from '../../src/devtools/private-redis.js';
import { replyFingerprint, type EmulatorHandle } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/logger.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { getBatchStatus, type BatchStatus } from '../../src/operations/batch-status.js';
import { request, type TestRequest } from '../helpers/batch.js';
import { BIN, cliEnv, runCli, type CliResult } from '../helpers/cli.js';
import { uniquePrefix } from '../helpers/runtime.js';

export { request, type TestRequest };

/** Stall settings short enough for tests: a dead worker's jobs come back within ~3 s. */
export const FAST_STALLS = {
  CLAUDE_BATCH_STALLED_INTERVAL_MS: '1000',
  CLAUDE_BATCH_LOCK_DURATION_MS: '2000',
  CLAUDE_BATCH_BACKOFF_BASE_MS: '50',
  CLAUDE_BATCH_BACKOFF_MAX_MS: '200',
} as const;

/** A small seeded PRNG (mulberry32): the kill moments of a run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Polls `check` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  pollMs = 50,
): Promise<NonNullable<T>> {
  try {
    return await vi.waitFor(
      async () => {
        const value = await check();
        if (!value) throw new Error(`not yet: ${what}`);
        return value;
      },
      { timeout: timeoutMs, interval: pollMs },
    );
  } catch (err) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: err });
  }
}

/** A `claude-batch` child process whose output is kept, and which a test may kill at any moment. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly startedAt = Date.now();

  constructor(
    readonly args: readonly string[],
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Milliseconds since spawn. */
  get age(): number {
    return Date.now() - this.startedAt;
  }

  /** The JSON log lines written so far (the logger writes JSON when stderr is not a TTY). */
  logLines(): Array<Record<string, unknown>> {
    return this.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      `${pattern} in the output of ${this.args.join(' ')}`,
      () => pattern.test(this.stderr),
      timeoutMs,
    );
  }

  /** Sends the signal by pid (this child only) and waits for the exit. */
  async kill(
    signal: NodeJS.Signals = 'SIGKILL',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

/** Environment for one test's CLI children: its Redis, its prefix, the emulator, short stall timers. */
export function durabilityEnv(
  redisUrl: string,
  prefix: string,
  emulator: EmulatorHandle | null,
  extra: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  return cliEnv({
    REDIS_URL: redisUrl,
    CLAUDE_BATCH_PREFIX: prefix,
    ANTHROPIC_API_KEY: 'sk-test-durability-0000',
    ANTHROPIC_BASE_URL: emulator?.url,
    ...FAST_STALLS,
    ...extra,
  });
}

/** A per-file sandbox: a private Redis, a temp dir, and a runtime in this process for polling. */
export class Sandbox {
  private runtimes: Runtime[] = [];
  private processes: CliProcess[] = [];

  private constructor(
    public redis: PrivateRedis,
    readonly dir: string,
  ) {}

  static async start(name: string, redis: PrivateRedisOptions = {}): Promise<Sandbox> {
    const dir = await mkdtemp(join(tmpdir(), `cb-durability-${name}-`));
    return new Sandbox(await startPrivateRedis(redis), dir);
  }

  /** Starts a `claude-batch` process, stopped (SIGKILL) by {@link dispose} if still running. */
  spawn(args: readonly string[], env: NodeJS.ProcessEnv): CliProcess {
    const proc = new CliProcess(args, env);
    this.processes.push(proc);
    return proc;
  }

  cli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
    return runCli(args, env);
  }

  async writeJsonl(name: string, requests: readonly TestRequest[]): Promise<string> {
    const file = join(this.dir, name);
    await writeFile(file, requests.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return file;
  }

  /** A runtime on the sandbox's Redis under `prefix`, closed by {@link dispose}. */
  async runtime(prefix: string): Promise<Runtime> {
    const runtime = await openRuntime(
      loadConfig({ env: { REDIS_URL: this.redis.url }, overrides: { prefix } }),
      { logger: silentLogger },
    );
    this.runtimes.push(runtime);
    return runtime;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill('SIGKILL')));
    await Promise.all(this.runtimes.map((r) => r.close()));
    await this.redis.stop({ signal: 'SIGKILL', removeDir: true });
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function newPrefix(name: string): string {
  return uniquePrefix(`dur-${name}`);
}

/** Waits until the batch has ended (every request has its results line). */
export async function waitForEnded(
  runtime: Runtime,
  batchId: string,
  timeoutMs = 60_000,
): Promise<BatchStatus> {
  return waitFor(
    `batch ${batchId} to end`,
    async () => {
      const status = await getBatchStatus(runtime, batchId);
      return status?.processing_status === 'ended' ? status : null;
    },
    timeoutMs,
    200,
  );
}

/** The batch id a submit printed alone on its last stdout line. */
export function batchIdOf(result: CliResult): string {
  const id = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.code !== 0 || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    throw new Error(`submit printed no batch id (exit ${result.code}): ${result.stderr}`);
  }
  return id;
}

/** Results lines parsed, keeping duplicates visible: custom_id → how many lines, and the last result. */
export function tallyResults(
  stdout: string,
): Map<string, { lines: number; type: string; errorType?: string | undefined }> {
  const tally = new Map<string, { lines: number; type: string; errorType?: string | undefined }>();
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = JSON.parse(line) as {
      custom_id: string;
      result: { type: string; error?: { error?: { type?: string } } };
    };
    const seen = tally.get(parsed.custom_id);
    tally.set(parsed.custom_id, {
      lines: (seen?.lines ?? 0) + 1,
      type: parsed.result.type,
      errorType: parsed.result.error?.error?.type,
    });
  }
  return tally;
}

/** What the emulator saw of one prompt. */
export interface PromptCalls {
  /** Every `/v1/messages` request with this prompt (answered, failed, reset or hung). */
  calls: number;
  /** Those answered 200 (logged when admitted: a worker killed before reading the reply still counts). */
  ok: number;
  /** Calls made after the first 200: work the runner repeated. */
  afterSuccess: number;
}

/** The emulator's log, per request of the batch (by the prompt fingerprint the emulator logs). */
export function callsByRequest(
  emulator: EmulatorHandle,
  requests: readonly TestRequest[],
): Map<string, PromptCalls> {
  const byHash = new Map<string, PromptCalls>();
  for (const entry of emulator.control.log()) {
    if (entry.path !== '/v1/messages' || entry.promptHash === null) continue;
    const seen = byHash.get(entry.promptHash) ?? { calls: 0, ok: 0, afterSuccess: 0 };
    if (seen.ok > 0) seen.afterSuccess += 1;
    seen.calls += 1;
    if (entry.status === 200) seen.ok += 1;
    byHash.set(entry.promptHash, seen);
  }
  return new Map(
    requests.map((r) => [
      r.custom_id,
      byHash.get(replyFingerprint(r.params)) ?? { calls: 0, ok: 0, afterSuccess: 0 },
    ]),
  );
}

/**
 * Calls the runner repeated: for each request, calls beyond the one it needed (a request that
 * fails by design on every attempt needs one call; one that fails its first k needs k + 1).
 */
export function repeatedCalls(calls: Map<string, PromptCalls>, needed: (customId: string) => number): number {
  let repeated = 0;
  for (const [id, c] of calls) repeated += Math.max(0, c.calls - needed(id));
  return repeated;
}
