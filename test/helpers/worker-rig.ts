import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { createClaudeClient } from '../../src/claude/claude-client.js';
import type { ConfigOverrides } from '../../src/config/load-config.js';
import {
  replyFingerprint,
  startEmulator,
  type EmulatorHandle,
  type EmulatorOptions,
} from '../../src/emulator/index.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { Secret } from '../../src/secret.js';
import type { ClaudeWorker } from '../../src/worker/claude-worker.js';
import { startWorker } from '../../src/worker/start-worker.js';
import type { TestRequest } from './batch.js';
import { resultsById } from './batch.js';
import { cliEnv } from './cli.js';
import { captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from './runtime.js';

export interface WorkerRigOptions {
  /** Test name, part of the key prefix. */
  name: string;
  emulator?: EmulatorOptions;
  /** Config overrides for every runtime (the test defaults of testConfig apply first). */
  overrides?: ConfigOverrides;
  /** The API key the workers use. */
  apiKey?: string;
  /** Default: the test Redis (REDIS_URL). */
  redisUrl?: string;
  /** The workers' client timeout (the config's requestTimeoutMs). Default 10 s. */
  clientTimeoutMs?: number;
}

/**
 * One emulator, one key prefix, an alert webhook that records what it receives, and any number of
 * workers, each with its own runtime (its own Redis connection, as separate processes would have).
 * `runtime` is the operator's: submit, status, dlq retry go through it. `close()` removes it all.
 */
export class WorkerRig {
  readonly logger = captureLogger();
  readonly workers: ClaudeWorker[] = [];
  private readonly workerRuntimes: Runtime[] = [];

  private constructor(
    readonly emulator: EmulatorHandle,
    readonly runtime: Runtime,
    readonly prefix: string,
    readonly apiKey: string,
    /** The alert webhook's requests, as received. */
    readonly hooks: ReadonlyArray<Record<string, unknown>>,
    private readonly hookServer: Server,
    private readonly hookUrl: string,
    private readonly overrides: ConfigOverrides,
    readonly redisUrl: string,
  ) {}

  static async start(options: WorkerRigOptions): Promise<WorkerRig> {
    const hooks: Array<Record<string, unknown>> = [];
    const hookServer = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as Record<string, unknown>);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
    const emulator = await startEmulator({ seed: 3, ...options.emulator });
    const prefix = uniquePrefix(options.name);
    // A key of its own (see testConfig): a key-wide trip pauses every prefix of the key.
    const apiKey = options.apiKey ?? `sk-test-rig-key-${randomBytes(6).toString('hex')}`;
    // A hung call should fail a test in seconds, not in the default 10 minutes.
    const overrides = { requestTimeoutMs: String(options.clientTimeoutMs ?? 10_000), ...options.overrides };
    const redisUrl = options.redisUrl ?? REDIS_URL;
    const runtime = await openRuntime(
      testConfig(prefix, overrides, { ANTHROPIC_API_KEY: apiKey, REDIS_URL: redisUrl }),
      { logger: silentLogger },
    );
    return new WorkerRig(emulator, runtime, prefix, apiKey, hooks, hookServer, hookUrl, overrides, redisUrl);
  }

  /** Starts a worker with its own runtime, logging into {@link logger}. */
  async startWorker(key = this.apiKey): Promise<ClaudeWorker> {
    const runtime = await openRuntime(
      testConfig(this.prefix, this.overrides, {
        ALERT_WEBHOOK_URL: this.hookUrl,
        ANTHROPIC_API_KEY: key,
        // The hosted Message Batches endpoints (issue 14) are the emulator's too.
        ANTHROPIC_BASE_URL: this.emulator.url,
        REDIS_URL: this.redisUrl,
      }),
      { logger: process.env['TEST_LOG'] ? createLogger({ level: 'debug' }) : this.logger },
    );
    this.workerRuntimes.push(runtime);
    const apiKey = new Secret(key);
    const worker = await startWorker(runtime, {
      apiKey,
      client: createClaudeClient({
        apiKey,
        baseURL: this.emulator.url,
        timeoutMs: runtime.config.requestTimeoutMs,
        streamMinMaxTokens: runtime.config.streamMinMaxTokens,
      }),
    });
    this.workers.push(worker);
    return worker;
  }

  /** Requests in flight in every worker of the rig. */
  get activeCount(): number {
    return this.workers.reduce((n, w) => n + w.activeCount, 0);
  }

  /** Environment for a `claude-batch` CLI child on this rig's Redis prefix (no API key). */
  cliEnv(): NodeJS.ProcessEnv {
    return cliEnv({
      REDIS_URL: this.redisUrl,
      CLAUDE_BATCH_PREFIX: this.prefix,
      ANTHROPIC_BASE_URL: this.emulator.url,
    });
  }

  /** Every request succeeded, and the emulator answered each with exactly one 200. */
  async expectAllSucceededOnce(batchId: string, requests: readonly TestRequest[]): Promise<void> {
    const lines: string[] = [];
    for await (const line of this.runtime.store.results(batchId)) lines.push(line);
    const results = resultsById(lines);
    expect(results.size).toBe(requests.length);
    for (const q of requests) expect(results.get(q.custom_id)?.type, q.custom_id).toBe('succeeded');
    const okByPrompt = new Map<string | null, number>();
    for (const e of this.emulator.control.log()) {
      if (e.status === 200) okByPrompt.set(e.promptHash, (okByPrompt.get(e.promptHash) ?? 0) + 1);
    }
    for (const q of requests) expect(okByPrompt.get(replyFingerprint(q.params)) ?? 0, q.custom_id).toBe(1);
  }

  /** Nothing the rig saw (webhook bodies, log lines, the emulator's log) holds the API key. */
  expectNoKey(): void {
    const text = JSON.stringify([this.hooks, this.logger.lines, this.emulator.control.log()]);
    expect(text).not.toContain(this.apiKey);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.close()));
    await Promise.allSettled(this.workerRuntimes.map((r) => r.close()));
    await this.runtime.close();
    await deletePrefix(this.prefix, { url: this.redisUrl, clusterNodes: [] });
    await this.emulator.close();
    await new Promise((resolve) => this.hookServer.close(resolve));
  }
}

/**
 * Resolves the next time the worker looks for a job and finds none to take (BullMQ's 'drained'):
 * the positive event after which "nothing was sent" means something, since the worker had its
 * chance. Call it as soon as the worker is started (before awaiting anything else), so that its
 * first look is not missed; rejects after `timeoutMs`.
 */
export function nextDrained(worker: ClaudeWorker, timeoutMs = 30_000): Promise<void> {
  const drained = once(worker.worker, 'drained', { signal: AbortSignal.timeout(timeoutMs) }).then(
    () => undefined,
    (err: unknown) => {
      throw new Error(`the worker did not look for jobs within ${timeoutMs} ms`, { cause: err });
    },
  );
  drained.catch(() => {}); // a test that fails before awaiting it must not also see an unhandled rejection
  return drained;
}
