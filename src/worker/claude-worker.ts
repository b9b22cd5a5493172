import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import { isRedisConnectionError } from '../redis/transient-error.js';
import type { Alerter } from '../breakers/alert.js';
import type { StormOptions } from '../breakers/storm.js';
import type { ClaudeClient } from '../claude/claude-client.js';
import type { InFlightController } from '../limits/in-flight-controller.js';
import type { RateBudget } from '../limits/rate-budget.js';
import { REQUESTS_QUEUE, type RequestJobData } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import { finalizeDeadLetter, deadLetterEntry, releaseIfCanary } from './apply-outcome.js';
import type { RetryPolicy } from './outcome.js';
import { Reconciler } from './reconciler.js';
import { ConcurrencySizer } from './concurrency-sizer.js';
import { Dispatcher } from './dispatcher.js';
import { HostedRunner, type HostedRunnerOptions } from '../hosted/hosted-runner.js';
import { RequestProcessor } from './request-processor.js';

export interface ClaudeWorkerOptions {
  client: ClaudeClient;
  /** The shared rate budget; the worker closes it when it closes. */
  budget: RateBudget;
  retry: RetryPolicy;
  alert: Alerter;
  /** Consecutive model-wide failures that open a model's breaker. */
  modelBreakerThreshold: number;
  /** The failure-storm breaker of the API key. */
  storm: StormOptions;
  /**
   * The most requests this process holds at once (`--concurrency`): the ceiling of its in-flight
   * cap, which {@link ConcurrencySizer} sizes below it from what the worker sees.
   */
  concurrency: number;
  /** The in-flight controller of the API key; the worker closes it when it closes. */
  inFlight: InFlightController;
  /** The model class of a model id (the budget's classes). */
  classOf: (model: string) => string;
  /** BullMQ lock duration (ms): a dead worker's jobs are taken back after it. */
  lockDurationMs: number;
  /** How often stalled jobs are looked for (ms). */
  stalledIntervalMs: number;
  /** Stalls before BullMQ fails a job; the runner then dead-letters it as `stalled`. */
  maxStalledCount: number;
  /** On close, how long in-flight requests may finish before they are handed back (ms). */
  gracePeriodMs: number;
  /** How often this worker tries a reconciler sweep (ms); one worker at a time sweeps. */
  reconcileIntervalMs: number;
  /** A batch without progress for this long is examined by the reconciler (ms). */
  reconcileStallMs: number;
  /**
   * The hosted path (issue 14): packs, creates, polls and downloads the hosted Message Batches of
   * batches submitted `--via batches|auto`. Absent: this worker does only the live path.
   */
  hosted?: HostedRunnerOptions | undefined;
}

/** How often the in-flight cap is re-sized. */
const SIZE_EVERY_MS = 1_000;

/** How many of the last completed jobs BullMQ keeps for the dashboard (results live elsewhere). */
const KEEP_COMPLETED = 1_000;

/** Failed jobs read per round of a sweep. */
const SWEEP_PAGE = 100;

/**
 * A worker process's share of the work: a BullMQ Worker running {@link RequestProcessor}, plus
 * the sweeper that gives jobs BullMQ failed on its own (stalled too often) their outcome, and a
 * graceful stop that hands unfinished jobs back.
 */
export class ClaudeWorker {
  readonly worker: Worker<RequestJobData>;
  private readonly processor: RequestProcessor;
  /** Finds and finishes requests no event will finish (removed jobs, missed releases). */
  readonly reconciler: Reconciler;
  /** Sends the batches' held requests into the queue in turn (one worker at a time does). */
  readonly dispatcher: Dispatcher;
  /** The hosted path's loop (one process per batch at a time), when the worker has one. */
  readonly hosted: HostedRunner | undefined;
  private readonly inFlight = new Map<string, AbortController>();
  private sweeper: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private sweeping: Promise<number> = Promise.resolve(0);
  /** Sizes BullMQ's concurrency (the in-flight cap) between a floor and options.concurrency. */
  readonly sizer: ConcurrencySizer;
  private sizing: NodeJS.Timeout | undefined;
  private readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: ClaudeWorkerOptions,
  ) {
    this.sizer = new ConcurrencySizer(
      { ceiling: options.concurrency },
      {
        active: () => this.inFlight.size,
        waitingForBudget: () => options.budget.waiting?.() ?? 0,
        waitingForSlot: () => options.inFlight.waiting(),
      },
    );
    this.processor = new RequestProcessor({
      observeLatency: (ms) => this.sizer.observeLatency(ms),
      runtime,
      client: options.client,
      budget: options.budget,
      retry: options.retry,
      alert: options.alert,
      modelBreakerThreshold: options.modelBreakerThreshold,
      storm: options.storm,
      inFlight: options.inFlight,
      classOf: options.classOf,
      // BullMQ renews the lock at half its duration: a write retried this long after the last
      // renewal has not yet let another worker take the job (which would check for the result
      // first anyway, but might come before it was written).
      writeRetryMs: Math.floor(options.lockDurationMs / 2),
      // A cost reservation of a dead worker comes back when its job does.
      costLeaseMs: options.lockDurationMs,
    });
    this.reconciler = new Reconciler(runtime, {
      intervalMs: options.reconcileIntervalMs,
      stallMs: options.reconcileStallMs,
      giveFailedJobOutcome: (job) => this.giveFailedJobOutcome(job),
    });
    this.dispatcher = new Dispatcher(runtime);
    this.hosted = options.hosted ? new HostedRunner(runtime, options.hosted) : undefined;
    this.worker = new Worker<RequestJobData>(REQUESTS_QUEUE, (job, token) => this.run(job, token), {
      connection: runtime.redis,
      prefix: runtime.keys.bullPrefix,
      concurrency: this.sizer.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      removeOnComplete: { count: KEEP_COMPLETED },
      // An idle worker blocks this long (s) between looks; `resume` does not wake it, so keep it
      // short: one cheap blocking call per second while idle.
      drainDelay: 1,
      autorun: false,
    });
    this.worker.on('error', (err) => {
      // BullMQ repeats a socket error on each reconnect attempt of each of its connections; the
      // runtime already says once that Redis is gone and once that it is back.
      if (isRedisConnectionError(err)) {
        runtime.logger.debug('worker connection error', { error: err.message });
      } else {
        runtime.logger.warn('worker error', { error: err.message });
      }
    });
  }

  /** Starts taking jobs. Resolves once the worker runs; it keeps running until {@link close}. */
  start(): void {
    void this.worker.run();
    void this.sweepFailed();
    this.sweeper = setInterval(() => void this.sweepFailed(), this.options.stalledIntervalMs);
    this.sweeper.unref();
    this.reconciler.start();
    this.dispatcher.start();
    this.hosted?.start();
    this.sizing = setInterval(() => void this.resize(), SIZE_EVERY_MS);
    this.sizing.unref();
  }

  /** Re-sizes the in-flight cap, and says so in Redis for `status` and /metrics (one HSET a second). */
  private async resize(): Promise<void> {
    const concurrency = this.sizer.tick();
    if (concurrency !== this.worker.concurrency) this.worker.concurrency = concurrency;
    const { redis, keys } = this.runtime;
    await redis
      .hset(keys.workerSizes(), this.workerId, JSON.stringify({ ...this.sizer.state(), at: Date.now() }))
      .catch(() => undefined);
  }

  /**
   * Gives every job BullMQ failed by itself its outcome now (also run every stalled interval, and
   * once more on close). One sweep at a time in this process: a call during a sweep waits for it,
   * then sweeps again. Returns the failed jobs handled.
   */
  sweepFailed(): Promise<number> {
    const previous = this.sweeping;
    const next = previous.then(() => this.sweepFailedOnce());
    this.sweeping = next.catch(() => 0);
    return next;
  }

  /** Jobs this process is working on now. */
  get activeCount(): number {
    return this.inFlight.size;
  }

  /**
   * Stops taking jobs, lets in-flight ones finish for the grace period, then hands the rest back
   * to the queue (another worker sends them). Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
      clearInterval(this.sizing);
      await this.runtime.redis.hdel(this.runtime.keys.workerSizes(), this.workerId).catch(() => undefined);
      // First, so another worker takes over dispatching at once, not a lock's life later.
      await this.dispatcher.stop();
      await this.hosted?.stop();
      const reconciling = this.reconciler.stop();
      const closed = this.worker.close();
      const grace = setTimeout(() => {
        for (const controller of this.inFlight.values()) controller.abort();
      }, this.options.gracePeriodMs);
      try {
        await closed;
      } finally {
        clearTimeout(grace);
      }
      // A job BullMQ failed since the last sweep would otherwise wait, outcome-less, for another
      // worker to start (and `wait` with it): give it its outcome before leaving.
      await this.sweepFailed();
      await reconciling;
      // The worker owns its budget: its waiters are gone now, and its timers must not keep the process.
      await this.options.budget.close();
      this.options.inFlight.close();
      this.processor.cost.close();
    })();
    return this.closing;
  }

  private async run(job: Job<RequestJobData>, token: string | undefined): Promise<void> {
    const controller = new AbortController();
    const key = job.id ?? `${Math.random()}`;
    this.inFlight.set(key, controller);
    try {
      await this.processor.process(job, token, controller.signal);
    } finally {
      this.inFlight.delete(key);
    }
  }

  /**
   * BullMQ fails a job by itself when it stalled more than `maxStalledCount` times (its worker
   * died each time) or when our processor threw (Redis trouble): such a job never reached an
   * outcome of ours. Give it one: its own if it already had one, else the dead-letter queue.
   */
  private async sweepFailedOnce(): Promise<number> {
    let handled = 0;
    try {
      for (;;) {
        const failed = await this.runtime.requests.getFailed(0, SWEEP_PAGE - 1);
        for (const job of failed) {
          await this.giveFailedJobOutcome(job);
          handled += 1;
        }
        if (failed.length < SWEEP_PAGE) break;
      }
    } catch (err) {
      this.runtime.logger.debug('failed-job sweep skipped', { error: (err as Error).message });
    }
    return handled;
  }

  /**
   * The outcome of one job BullMQ failed: its own if it already had one, else the dead-letter
   * queue; then, if it was a canary, the release of its model (its siblings wait for nothing
   * else); then the failed job goes.
   */
  async giveFailedJobOutcome(job: Job<RequestJobData>): Promise<void> {
    if (!(await this.processor.finishIfEnded(job))) {
      const stalled = /stalled/i.test(job.failedReason ?? '');
      const entry = deadLetterEntry(
        job.data,
        'stalled',
        {
          status: null,
          type: stalled ? 'worker_lost' : 'worker_error',
          message: stalled
            ? `the request was in flight ${this.options.maxStalledCount + 1} times when its worker died or lost Redis ` +
              "for longer than the job lock (check the workers' memory and logs, and Redis), so it was not sent again; " +
              'dlq retry it once the cause is fixed'
            : `the worker failed on this request: ${job.failedReason ?? 'unknown error'}`,
          request_id: null,
        },
        { calls: job.data.calls ?? 0, firstAt: job.data.first_at ?? null },
      );
      await this.runtime.deadLetters.add(
        entry.params.model,
        entry,
        job.id === undefined ? {} : { jobId: job.id },
      );
      await finalizeDeadLetter({ runtime: this.runtime }, entry);
      await releaseIfCanary({ runtime: this.runtime }, job.data);
    }
    await job.remove();
  }
}
