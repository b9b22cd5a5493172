/**
 * One model-check run's isolated system: its own emulator, its own key prefix, its own workers,
 * the model of what was done, and the log of operations (with times) that a counterexample prints.
 */
import { forgetAccounts } from '../helpers/runtime.js';
import { randomBytes } from 'node:crypto';
import { ModelState } from './model-state.js';
import {
  createRedis,
  deleteKeys,
  loadConfig,
  openRuntime,
  silentLogger,
  startEmulator,
  type ClaudeBatchConfig,
  type EmulatorHandle,
  type Logger,
  type Runtime,
} from './system.js';
import type { WorkerPool } from './worker-pool.js';

export interface WorldOptions {
  redisUrl: string;
  /** Emulator seed (faults, jitter). */
  seed: number;
  /** Builds the worker pool from the run's config. */
  pool: (config: ClaudeBatchConfig, world: World) => WorkerPool;
  logger?: Logger;
  /** Quiesce deadline (ms) before a batch not ended is a counterexample. Default 20,000. */
  quiesceMs?: number;
  /**
   * In quiesce, how long (ms) nothing may be runnable (no job waiting, active or due soon, nothing
   * to fix) before a batch not ended counts as stuck, without waiting for the deadline. Default 3,000.
   */
  idleMs?: number;
}

/** The emulator's latency outside spikes. */
export const BASE_LATENCY = { fixedMs: 0, jitterMs: 50 } as const;

export class World {
  readonly ops: string[] = [];
  readonly violations: string[] = [];
  /** Times (ms) a worker or Redis was killed: a request in flight then may be sent twice. */
  readonly crashes: number[] = [];
  private readonly t0 = Date.now();

  private constructor(
    readonly options: WorldOptions,
    readonly emulator: EmulatorHandle,
    readonly config: ClaudeBatchConfig,
    readonly runtime: Runtime,
    readonly model: ModelState,
    public pool: WorkerPool,
  ) {}

  static async start(options: WorldOptions): Promise<World> {
    const tag = randomBytes(4).toString('hex');
    const emulator = await startEmulator({
      seed: options.seed,
      latency: BASE_LATENCY,
      requestLogSize: 200_000,
    });
    const prefix = `{cbt-model-${tag}}`;
    const config = loadConfig({
      env: {
        REDIS_URL: options.redisUrl,
        // Its own key: a key-wide trip in one world must not pause another world's prefix.
        ANTHROPIC_API_KEY: `sk-test-model-check-${tag}`,
        ANTHROPIC_BASE_URL: emulator.url,
      },
      overrides: {
        prefix,
        backoffBaseMs: '50',
        backoffMaxMs: '200',
        stalledIntervalMs: '1000',
        lockDurationMs: '2000',
        concurrency: '4',
        requestTimeoutMs: '20000',
        // The reconciler on a short clock, so quiesce sees it end what Bull Board removals left.
        reconcileIntervalMs: '1000',
        reconcileStallMs: '1000',
        // Hosted batches (issue 14) polled often: quiesce waits for them to end.
        hostedPollMs: '200',
        hostedPollMaxMs: '1000',
        hostedMaxRequests: '25',
      },
    });
    const runtime = await openRuntime(config, { logger: options.logger ?? silentLogger });
    const world: World = new World(
      options,
      emulator,
      config,
      runtime,
      new ModelState(tag),
      undefined as never,
    );
    world.pool = options.pool(config, world);
    // One worker from the start: most of what can go wrong needs work in flight while ops run.
    await world.pool.start();
    world.note('worker start');
    return world;
  }

  /** Seconds since the run started, for the op log. */
  now(): string {
    return ((Date.now() - this.t0) / 1000).toFixed(2);
  }

  note(line: string): void {
    this.ops.push(`${this.now()}s ${line}`);
  }

  private readonly violationKeys = new Map<string, number>();

  /**
   * Records a violation once per `key` (default: its text); repeats of a key are counted, and the
   * count shown, so one cause hitting 30 requests reads as one line.
   */
  violation(what: string, key = what): void {
    const seen = this.violationKeys.get(key);
    if (seen === undefined) {
      this.violationKeys.set(key, this.violations.length);
      this.violations.push(what);
      return;
    }
    const at = seen;
    const text = this.violations[at]!.replace(/ \(\d+ times\)$/, '');
    const times = Number(/ \((\d+) times\)$/.exec(this.violations[at]!)?.[1] ?? 1) + 1;
    this.violations[at] = `${text} (${times} times)`;
  }

  async dispose(): Promise<void> {
    await this.pool.closeAll().catch(() => {});
    await this.runtime.close().catch(() => {});
    await this.emulator.close();
    const redis = createRedis({ url: this.options.redisUrl, clusterNodes: [] });
    try {
      await forgetAccounts(redis, this.runtime.keys.bullPrefix);
      await deleteKeys(redis, `${this.runtime.keys.bullPrefix}:*`);
    } finally {
      redis.disconnect();
    }
  }
}
