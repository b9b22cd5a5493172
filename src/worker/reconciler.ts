import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { canaryField, canaryIdField, releaseCanary } from '../queue/canary.js';
import { Chunks } from '../hosted/chunks.js';
import { Holds, SHARE_REASON } from '../queue/holds.js';
import { ExpiringLock } from '../redis/expiring-lock.js';
import { requestJobId, type DeadLetterEntry, type RequestJobData } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import { LuaScript } from '../redis/lua-script.js';
import { canceledLine, erroredLine } from '../store/result-line.js';
import { finalizeDeadLetter } from './apply-outcome.js';
import {
  locateRequests,
  presenceKeys,
  REQUEST_PLACES,
  type OpenRequest,
  type PlaceRecovery,
  type RequestPlace,
} from './request-places.js';

/** The kinds of repair, as counted in `status`, the batch record and /metrics. */
export type RepairKind =
  /** A job BullMQ failed by itself, missed by the failed-job sweeper: given its outcome. */
  | 'failed_outcome'
  /** A finished job with no result: back in the queue. */
  | 'requeued'
  /** A dead-letter entry whose errored line was never written: written. */
  | 'dead_letter_finalized'
  /** A request in no place at all (its job removed behind the runner's back): ended. */
  | 'lost'
  /** A canary that ended without releasing its model: released. */
  | 'canary_released'
  /** Requests still held for a reason already released: released. */
  | 'held_released';

export type Repairs = Partial<Record<RepairKind, number>>;

/** The error type of the results line of a lost request. */
export const LOST_ERROR_TYPE = 'request_lost';

const LOST_MESSAGE =
  "the request's queued job disappeared before it had an outcome (removed in Bull Board or Redis: empty, clean, " +
  'remove; or lost by a Redis restart without persistence), taking its parameters with it, so it could not be ' +
  'sent again: submit it again in a new batch';

export interface ReconcilerOptions {
  /** How often this worker tries to sweep (ms); one worker at a time sweeps. Default 60,000. */
  intervalMs: number;
  /**
   * A batch whose counts have not changed for this long is examined (ms). Default 300,000. When
   * the queue has nothing left to run, every batch still processing is examined at the next
   * sweep, stalled or not.
   */
  stallMs: number;
  /**
   * Before ending a request found in no place, look again after this long (ms): a request in
   * transit between two places (a `dlq retry` between bumping its generation and adding its job)
   * is found then. Default 1,000.
   */
  confirmMs?: number;
  /** Custom ids read per page of a batch. Default 1,000. */
  pageSize?: number;
  /** Gives a job BullMQ failed by itself its outcome (the failed-job sweeper's). */
  giveFailedJobOutcome: (job: Job<RequestJobData>) => Promise<void>;
}

/** What one sweep did. */
export interface SweepReport {
  /** Whether this worker held the lock (another worker sweeps otherwise). */
  ran: boolean;
  /** Batches examined (stalled ones). */
  examined: string[];
  repairs: Repairs;
}

/** Lost requests confirmed at once, at most (bounds memory on a batch whose every job was removed). */
const LOST_FLUSH = 10_000;

/**
 * Counts repairs in the batch record (only while it exists: a deleted batch is not resurrected)
 * and in the /metrics counters. KEYS: batch, stats. ARGV: now (ISO), then kind, n pairs.
 */
const NOTE_REPAIRS = new LuaScript(`
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], 'reconciled:' .. ARGV[i], ARGV[i + 1]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'reconciled_at', ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], 'repaired:' .. ARGV[i], ARGV[i + 1]) end
return 1
`);

/**
 * One page of a batch's requests still without a results line, with their generations: read in
 * Redis, so the (possibly large) lines of the ended ones never cross the network.
 * KEYS: ids, results, generations. ARGV: start, stop (LRANGE indexes).
 * Returns {page length, custom_id, generation, custom_id, generation, ...}.
 */
const OPEN_PAGE = new LuaScript(`
local ids = redis.call('LRANGE', KEYS[1], ARGV[1], ARGV[2])
local out = {#ids}
for _, id in ipairs(ids) do
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
  end
end
return out
`);

/** The batch-record fields that move when a batch makes progress. */
const PROGRESS_FIELDS = ['id', 'processing', 'succeeded', 'errored', 'canceled', 'enqueued', 'submit_state'];

/**
 * Finds what no event will ever finish, and finishes it: a periodic sweep, run by one worker at a
 * time under an expiring Redis lock, of the batches that have made no progress for `stallMs`.
 * For each such batch it pages through its custom ids (HMGET of results and generations, then
 * one pipeline of place probes for the open ones, {@link REQUEST_PLACES}): requests in a lawful
 * place are left alone, the others recovered (see each place), and a request in no place at all
 * ends (`request_lost`, or `canceled` in a canceled batch); then canaries that have ended release
 * their model, and holds released but still holding are released again. The cost is bounded:
 * O(batch size / page) round trips per stalled batch, nothing per request beyond its page.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepReport> | undefined;
  private readonly lock: ExpiringLock;
  private readonly holds: Holds;
  /** Set while a sweep of this process holds the lock (examine() alone, e.g. in a bench, holds none). */
  private locked = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly options: ReconcilerOptions,
  ) {
    this.holds = new Holds(runtime);
    this.lock = new ExpiringLock(runtime.redis, runtime.keys.reconcilerLock());
  }

  start(): void {
    // A tick during a sweep (a long one) is skipped, not queued.
    this.timer = setInterval(() => {
      if (!this.running) void this.sweep();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops sweeping; waits for a sweep in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * One sweep now, if no other worker is sweeping (one at a time in this process too).
   * `everyBatch`: examine every batch not ended, stalled or not (`worker --until-idle` once the
   * queue is idle: nothing is left that could still make progress).
   */
  sweep(options: { everyBatch?: boolean } = {}): Promise<SweepReport> {
    // After the sweep in progress, if any: it may have looked at stalled batches only.
    const next = (this.running ?? Promise.resolve())
      .then(() => this.sweepLocked(options.everyBatch ?? false))
      .catch((err: unknown): SweepReport => {
        this.runtime.logger.warn('reconciler sweep failed', { error: (err as Error).message });
        return { ran: false, examined: [], repairs: {} };
      })
      .finally(() => {
        if (this.running === next) this.running = undefined;
      });
    this.running = next;
    return next;
  }

  /**
   * Two intervals, at least 5 s: a worker killed mid-sweep holds the lock this long, and no batch is
   * repaired meanwhile (30 s at least, as it was, let a crash-looping fleet starve the reconciler:
   * soak seed 9105). A live sweep extends it after every page and every chunk of lost requests.
   */
  private get lockTtlMs(): number {
    return Math.max(5_000, this.options.intervalMs * 2);
  }

  private async sweepLocked(everyBatch: boolean): Promise<SweepReport> {
    const { redis, keys } = this.runtime;
    if (!(await this.lock.acquire(this.lockTtlMs))) return { ran: false, examined: [], repairs: {} };
    this.locked = true;
    try {
      const report: SweepReport = { ran: true, examined: [], repairs: {} };
      // With nothing left to run in the queue, a batch still processing can make no progress by
      // itself (its jobs were removed, or it waits in a place outside BullMQ): look now, not a stall
      // window later. This is what ends, within one interval, a batch whose queue was emptied.
      const examineAll = everyBatch || (await this.nothingToRun());
      for (const batchId of await this.stalledBatches(examineAll)) {
        report.examined.push(batchId);
        const repairs = await this.examine(batchId);
        addRepairs(report.repairs, repairs);
      }
      await redis.hset(keys.reconcilerState(), {
        last_run_at: new Date().toISOString(),
        examined: report.examined.length,
        repairs: JSON.stringify(report.repairs),
      });
      if (Object.keys(report.repairs).length > 0) {
        this.runtime.logger.warn('reconciler repaired requests', {
          examined: report.examined,
          repairs: report.repairs,
        });
      }
      return report;
    } finally {
      this.locked = false;
      await this.lock.release();
    }
  }

  /**
   * Whether the requests queue has no job that a worker could still take or that is running:
   * wait (which holds a paused queue's jobs in BullMQ 6), active, delayed (retries), prioritized
   * and waiting-children are all empty, and no batch holds requests for the dispatcher to send. A
   * few O(1) reads per batch with requests held, once per sweep.
   */
  private async nothingToRun(): Promise<boolean> {
    const counts = await this.runtime.requests.getJobCounts(
      'wait',
      'active',
      'delayed',
      'prioritized',
      'waiting-children',
    );
    return Object.values(counts).every((n) => n === 0) && (await this.holds.waitingForShare()) === 0;
  }

  private async extendLock(): Promise<void> {
    if (!this.locked) return;
    if (!(await this.lock.extend(this.lockTtlMs)))
      throw new Error('reconciler lock lost (a sweep outlived it): stopping this sweep');
  }

  /**
   * Batches not ended whose progress fields have not changed for `stallMs` (or every batch not
   * ended). A batch seen for the first time, or changed since the last look, starts its stall
   * clock now.
   */
  private async stalledBatches(everyBatch: boolean): Promise<string[]> {
    const { redis, keys, store } = this.runtime;
    const ids = await store.list();
    if (ids.length === 0) return [];
    const now = Date.now();
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hmget(keys.batch(id), ...PROGRESS_FIELDS);
    const seen = await redis.hgetall(keys.reconcilerSeen());
    const replies = (await pipeline.exec()) ?? [];
    const stalled: string[] = [];
    const update = redis.pipeline();
    ids.forEach((id, i) => {
      const fields = (replies[i]?.[1] ?? []) as Array<string | null>;
      const [exists, processing, , , , , submitState] = fields;
      if (!exists || (submitState === 'submitted' && Number(processing) <= 0)) {
        if (seen[id] !== undefined) update.hdel(keys.reconcilerSeen(), id);
        return;
      }
      const signature = fields.join('|');
      if (everyBatch) {
        stalled.push(id);
        return;
      }
      const previous = seen[id];
      const cut = previous?.lastIndexOf('@') ?? -1;
      if (previous === undefined || cut < 0 || previous.slice(0, cut) !== signature) {
        update.hset(keys.reconcilerSeen(), id, `${signature}@${now}`);
        return;
      }
      if (now - Number(previous.slice(cut + 1)) >= this.options.stallMs) {
        stalled.push(id);
        // Examined now: the next look at a batch still stalled (lawfully) is a full stall away.
        update.hset(keys.reconcilerSeen(), id, `${signature}@${now}`);
      }
    });
    await update.exec();
    return stalled;
  }

  /** Examines one stalled batch and repairs what it finds. */
  async examine(batchId: string): Promise<Repairs> {
    const { redis, keys } = this.runtime;
    const repairs: Repairs = {};
    const pageSize = this.options.pageSize ?? 1_000;
    const [canceledAt, incarnation] = await redis.hmget(keys.batch(batchId), 'canceled_at', 'incarnation');
    const canceled = Boolean(canceledAt);
    const inc = Number(incarnation ?? 0);
    const context = {
      keys,
      holdReasons: await this.holds.reasons(batchId),
      openChunks: await new Chunks(this.runtime).openNumbers(batchId),
    };
    // Requests held for the batch's share are the dispatcher's to send: make sure it knows the
    // batch (a set it lost, with Redis restored from an older snapshot, would strand them).
    if (context.holdReasons.includes(SHARE_REASON) || (await redis.hlen(keys.dispatching(batchId))) > 0) {
      await redis.sadd(keys.shareBatches(), batchId);
    }
    let lost: OpenRequest[] = [];
    for (let start = 0; ; start += pageSize) {
      const page = (await OPEN_PAGE.run(
        redis,
        [keys.ids(batchId), keys.results(batchId), keys.generations(batchId)],
        [start, start + pageSize - 1],
      )) as [number, ...string[]];
      if (Number(page[0]) === 0) break;
      const open: OpenRequest[] = [];
      for (let i = 1; i < page.length; i += 2) {
        const customId = String(page[i]);
        const gen = Number(page[i + 1]);
        open.push({ batchId, customId, gen, inc, jobId: requestJobId(batchId, customId, gen, inc) });
      }
      if (open.length > 0) {
        const places = await locateRequests(redis, context, open);
        for (let i = 0; i < open.length; i++) {
          const place = places[i]!;
          if (place < 0) lost.push(open[i]!);
          else await this.recoverLogged(open[i]!, REQUEST_PLACES[place]!, repairs);
        }
      }
      if (lost.length >= LOST_FLUSH) {
        await this.endLost(lost, canceled, context, repairs);
        lost = [];
      }
      await this.extendLock();
    }
    if (lost.length > 0) await this.endLost(lost, canceled, context, repairs);
    await this.releaseEndedCanaries(batchId, repairs);
    const released = await this.holds.releaseOverdue(batchId);
    if (released > 0) repairs.held_released = (repairs.held_released ?? 0) + released;
    if (Object.keys(repairs).length > 0) {
      const pairs = Object.entries(repairs).flatMap(([kind, n]) => [kind, n]);
      await NOTE_REPAIRS.run(
        redis,
        [keys.batch(batchId), keys.stats()],
        [new Date().toISOString(), ...pairs],
      );
    }
    return repairs;
  }

  /** One request's recovery; its failure (the job moved on meanwhile) does not stop the sweep. */
  private async recoverLogged(request: OpenRequest, place: RequestPlace, repairs: Repairs): Promise<void> {
    try {
      await this.recover(request, place.recovery, repairs);
    } catch (err) {
      this.runtime.logger.warn('reconciler: recovery failed, tried again next sweep', {
        batch_id: request.batchId,
        custom_id: request.customId,
        place: place.name,
        error: (err as Error).message,
      });
    }
  }

  private async recover(request: OpenRequest, recovery: PlaceRecovery, repairs: Repairs): Promise<void> {
    const { runtime } = this;
    switch (recovery) {
      case 'none':
        return;
      case 'failed-outcome': {
        const job = await Job.fromId<RequestJobData>(runtime.requests, request.jobId);
        if (!job?.data || !job.failedReason) return;
        await this.options.giveFailedJobOutcome(job);
        return count(repairs, 'failed_outcome');
      }
      case 'requeue-finished': {
        const job = await Job.fromId<RequestJobData>(runtime.requests, request.jobId);
        if (!job?.data) return;
        // Its processor will look for a result or an entry first (attemptsStarted > 1).
        await job.retry('completed').catch(() => undefined);
        return count(repairs, 'requeued');
      }
      case 'finalize-dead-letter': {
        const entry = await Job.fromId<DeadLetterEntry>(runtime.deadLetters, request.jobId);
        if (!entry?.data) return;
        // A canary among them releases its model in releaseEndedCanaries, once its line is written.
        await finalizeDeadLetter({ runtime }, entry.data);
        return count(repairs, 'dead_letter_finalized');
      }
    }
  }

  /**
   * Ends requests found in no place, once they are still in none after `confirmMs`: each in a
   * script that writes the line only while neither its job nor its entry exists.
   */
  private async endLost(
    candidates: readonly OpenRequest[],
    canceled: boolean,
    context: Parameters<typeof locateRequests>[1],
    repairs: Repairs,
  ): Promise<void> {
    const { runtime } = this;
    await sleep(this.options.confirmMs ?? 1_000);
    await this.extendLock();
    const places = await locateRequests(runtime.redis, context, candidates);
    const lost = candidates.filter((_, i) => places[i] === -1);
    for (let i = 0; i < lost.length; i += 200) {
      const statuses = await Promise.all(
        lost.slice(i, i + 200).map((r) =>
          runtime.store.finalize(r.batchId, r.customId, r.gen, {
            ...(canceled
              ? { kind: 'canceled' as const, line: canceledLine(r.customId) }
              : {
                  kind: 'errored' as const,
                  line: erroredLine(r.customId, LOST_ERROR_TYPE, LOST_MESSAGE, null),
                  errorType: LOST_ERROR_TYPE,
                }),
            unlessExists: presenceKeys(runtime.keys, r),
            incarnation: r.inc,
          }),
        ),
      );
      const ended = statuses.filter((s) => s === 'written').length;
      if (ended > 0) repairs.lost = (repairs.lost ?? 0) + ended;
      await this.extendLock();
    }
  }

  /** A model whose canary has its results line, still marked pending: release it. */
  private async releaseEndedCanaries(batchId: string, repairs: Repairs): Promise<void> {
    const { redis, keys } = this.runtime;
    const record = await redis.hgetall(keys.batch(batchId));
    for (const [field, state] of Object.entries(record)) {
      if (!field.startsWith('canary:') || state !== 'pending') continue;
      const model = field.slice('canary:'.length);
      const canaryId = record[canaryIdField(model)];
      if (canaryId === undefined) continue;
      if ((await redis.hexists(keys.results(batchId), canaryId)) === 0) continue;
      const released = await releaseCanary(this.runtime, batchId, model);
      this.runtime.logger.info('reconciler: canary had ended without releasing its model', {
        batch_id: batchId,
        model,
        field: canaryField(model),
        released,
      });
      count(repairs, 'canary_released');
    }
  }
}

function count(repairs: Repairs, kind: RepairKind, n = 1): void {
  repairs[kind] = (repairs[kind] ?? 0) + n;
}

function addRepairs(into: Repairs, more: Repairs): void {
  for (const [kind, n] of Object.entries(more) as Array<[RepairKind, number]>) count(into, kind, n);
}
