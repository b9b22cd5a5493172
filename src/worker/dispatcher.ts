import { withoutPausedBatches } from '../queue/batch-pauses.js';
import { Holds, SHARE_REASON } from '../queue/holds.js';
import { REQUESTS_QUEUE } from '../queue/jobs.js';
import { ExpiringLock } from '../redis/expiring-lock.js';
import type { Runtime } from '../runtime.js';
import { parsePriority } from '../store/batch-record.js';
import { allocateTurns, type ShareClaim } from './fair-share.js';

export interface DispatcherOptions {
  /** How often the lock holder looks at the queue (ms). Default 100. */
  intervalMs?: number | undefined;
  /** How much sending the queue holds ahead, at the rate it is being emptied (ms). Default 500. */
  leadMs?: number | undefined;
  /** The least it keeps queued while batches have requests held. Default 16. */
  minDepth?: number | undefined;
  /**
   * The share of the in-flight caps of workers that are ramping up kept queued too, so a worker
   * that raises its cap (x1.25 a second) finds the jobs to fill it and is not mistaken for idle.
   * Workers held by the budget are left out: what waits in the queue then only delays the turns of
   * a batch submitted later. Default 0.3.
   */
  capShare?: number | undefined;
}

/** One batch's recent dispatch, as `status` reads it from {@link KeyLayout.shareState}. */
export interface ShareReport {
  /** Its priority (the weight of its turns). */
  weight: number;
  /** Requests dispatched per second (moving average over ~20 s). */
  rate: number;
  /** Its fraction of everything dispatched lately (0 to 1). */
  share: number;
  /** Requests still held for its share. */
  held: number;
  /** When this was written (ms). */
  at: number;
}

/** How often the batches' dispatch is reported, and the workers' caps read again (ms). */
const REPORT_EVERY_MS = 1_000;
/** Time constant of the per-batch rates shown in `status` (ms). */
const RATE_WINDOW_MS = 20_000;
/** Time constant of the queue's drain rate, which sizes its depth (ms). */
const DRAIN_WINDOW_MS = 3_000;
/** A worker's size report older than this is ignored (as in `status`). */
const WORKER_REPORT_MS = 10_000;

/**
 * Fair share between batches (issue 16, docs/fair-share.md). Every submitted request is held, an
 * entry of its batch's `share` hash (see {@link Holds}); the dispatcher turns them into jobs in the
 * queue a few at a time, round-robin across the batches that hold some, weighted by their
 * `--priority` ({@link allocateTurns}). It keeps the queue only a little deeper than the workers
 * can take (`leadMs` of its drain rate, a share of their in-flight caps), so a batch submitted
 * behind a million requests waits behind a moment's work, not behind the million.
 *
 * One worker at a time dispatches, under an expiring lock; the others try to take it over each
 * lock half-life, so a dispatcher killed with -9 is replaced within the lock's life (2 intervals,
 * at least 2 s), and its last take, left in the batch's dispatching hash, is sent by the next
 * holder (see {@link Holds.dispatch}). A holder checks the lock before adding each page's jobs,
 * and job ids make adding idempotent: two dispatchers (a lock that expired under a stalled
 * holder) do not send a request twice.
 *
 * Not charged to a batch's share: retries (BullMQ moves them from delayed to the queue when due),
 * `dlq retry` (enqueued directly: an operator's explicit action goes first) and canaries.
 */
export class Dispatcher {
  private readonly holds: Holds;
  private readonly lock: ExpiringLock;
  private readonly intervalMs: number;
  private readonly leadMs: number;
  private readonly minDepth: number;
  private readonly capShare: number;
  private readonly deficits = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<number> | undefined;
  /** The previous round: queue length seen, jobs promoted, when. */
  private last: { at: number; waiting: number; promoted: number } | null = null;
  /** The queue's drain rate (jobs/s, moving average). */
  private drainRate = 0;
  private workerCaps = 0;
  private reportedAt = 0;
  /** When this process last tried for the lock without holding it (ms). */
  private triedAt = 0;
  /** Per batch: dispatch rate (moving average, /s), and promoted since the last report. */
  private readonly batches = new Map<
    string,
    { rate: number; recent: number; weight: number; held: number }
  >();

  constructor(
    private readonly runtime: Runtime,
    options: DispatcherOptions = {},
  ) {
    this.holds = new Holds(runtime);
    this.lock = new ExpiringLock(runtime.redis, runtime.keys.dispatcherLock());
    this.intervalMs = options.intervalMs ?? 100;
    this.leadMs = options.leadMs ?? 500;
    this.minDepth = options.minDepth ?? 16;
    this.capShare = options.capShare ?? 0.3;
  }

  /** Whether this process still holds the lock (extending it): asked before each page is added. */
  private readonly stillHolds = (): Promise<boolean> => this.lock.extend(this.lockTtlMs);

  private get lockTtlMs(): number {
    return Math.max(2_000, this.intervalMs * 2);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.ticking) void this.tick();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops dispatching and frees the lock, so another worker takes over at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking?.catch(() => undefined);
    await this.lock.release().catch(() => undefined);
  }

  /**
   * One round, if this process holds (or takes) the lock: tops the queue up to its target depth
   * from the batches' shares. Returns the requests promoted.
   */
  tick(): Promise<number> {
    const round = this.round()
      .catch((err: unknown) => {
        this.runtime.logger.debug('dispatch round skipped', { error: (err as Error).message });
        return 0;
      })
      .finally(() => {
        if (this.ticking === round) this.ticking = undefined;
      });
    this.ticking = round;
    return round;
  }

  private async round(): Promise<number> {
    // A worker that does not hold the lock tries for it once a lock's half-life, not every round:
    // with many workers, their tries would otherwise be most of the dispatcher's Redis traffic.
    if (this.last === null && Date.now() - this.triedAt < this.lockTtlMs / 2) return 0;
    this.triedAt = Date.now();
    if (!(await this.lock.hold(this.lockTtlMs))) {
      this.last = null;
      return 0;
    }
    const { redis, keys } = this.runtime;
    const now = Date.now();
    const waiting = await redis.llen(`${keys.bullPrefix}:${REQUESTS_QUEUE}:wait`);
    this.observeDrain(now, waiting);
    if (now - this.reportedAt >= REPORT_EVERY_MS) await this.readWorkerCaps(now);
    const target = Math.max(
      this.minDepth,
      Math.ceil((this.drainRate * this.leadMs) / 1_000),
      Math.ceil(this.workerCaps * this.capShare),
    );
    let promoted = 0;
    if (waiting < target) {
      const claims = await withoutPausedBatches(this.runtime, await this.claims());
      const turns = allocateTurns(target - waiting, claims, this.deficits);
      for (const [batchId, n] of turns) {
        const sent = await this.holds.dispatch(batchId, n, this.stillHolds);
        promoted += sent;
        const b = this.batches.get(batchId);
        if (b) b.recent += sent;
      }
    }
    this.last = { at: now, waiting, promoted };
    if (now - this.reportedAt >= REPORT_EVERY_MS) await this.report(now);
    return promoted;
  }

  /** The queue's drain rate, from how much left it since the last round (what was there + promoted). */
  private observeDrain(now: number, waiting: number): void {
    const last = this.last;
    if (last === null || now <= last.at) return;
    const dt = now - last.at;
    const drained = Math.max(0, last.waiting + last.promoted - waiting);
    const instant = (drained * 1_000) / dt;
    if (waiting === 0 && drained > 0) {
      // Emptied within a round: the workers took all there was and could have taken more. Up at
      // once, to twice what they took (not compounding on its own: a queue emptied with nothing
      // new in it, or idle, changes nothing here, and the average below brings it down).
      this.drainRate = Math.max(this.drainRate, instant * 2);
      return;
    }
    // Otherwise a moving average: workers take jobs in bursts (several slots free at once, bulk
    // admission), and following each burst up would keep the queue deeper than needed, which only
    // delays a batch submitted later.
    this.drainRate += (1 - Math.exp(-dt / DRAIN_WINDOW_MS)) * (instant - this.drainRate);
  }

  /** The batches holding requests for their share, with their weights; forgets those done or gone. */
  private async claims(): Promise<ShareClaim[]> {
    const { redis, keys } = this.runtime;
    const ids = await redis.smembers(keys.shareBatches());
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) {
      pipeline.hmget(keys.batch(id), 'id', 'canceled_at', 'deleted_at', 'priority', 'route');
      // A take left in dispatching by a dispatcher that died is this batch's to send too.
      pipeline.hlen(keys.held(id, SHARE_REASON)).hlen(keys.dispatching(id));
    }
    const replies = (await pipeline.exec()) ?? [];
    const claims: ShareClaim[] = [];
    const ended: string[] = [];
    const empty: string[] = [];
    ids.forEach((id, i) => {
      const [exists, canceledAt, deletedAt, priority, route] = (replies[3 * i]?.[1] ?? []) as Array<
        string | null
      >;
      // On the hosted route (issue 14): the hosted runner packs its share into hosted batches.
      if (exists && !canceledAt && !deletedAt && route === 'hosted') return;
      const held = Number(replies[3 * i + 1]?.[1] ?? 0) + Number(replies[3 * i + 2]?.[1] ?? 0);
      // A canceled or deleted batch's held requests are ended by its cancel or removed by its
      // delete: sending them would only race that.
      if (!exists || canceledAt || deletedAt) {
        ended.push(id);
        return;
      }
      if (held === 0) {
        empty.push(id);
        return;
      }
      const weight = parsePriority(priority);
      claims.push({ id, weight, available: held });
      const b = this.batches.get(id) ?? { rate: 0, recent: 0, weight, held };
      b.weight = weight;
      b.held = held;
      this.batches.set(id, b);
    });
    if (ended.length > 0) {
      await redis.srem(keys.shareBatches(), ...ended);
      await this.dropReports(ended);
    }
    if (empty.length > 0) await this.forget(empty);
    return claims;
  }

  private async dropReports(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.batches.delete(id);
    await this.runtime.redis.hdel(this.runtime.keys.shareState(), ...ids);
  }

  /**
   * Forgets batches that hold nothing for their share (dropped from the set of those that do, and
   * the reason from their holds), then takes back any that got requests meanwhile: `Holds.record`
   * adds the members with the reason in one MULTI and the batch after them, so either the re-check
   * sees them or those SADDs come after these SREMs.
   */
  private async forget(ids: readonly string[]): Promise<void> {
    const { redis, keys } = this.runtime;
    const drop = redis.pipeline().srem(keys.shareBatches(), ...ids);
    for (const id of ids) drop.srem(keys.holds(id), SHARE_REASON);
    await drop.exec();
    const recheck = redis.pipeline();
    for (const id of ids) recheck.hlen(keys.held(id, SHARE_REASON)).hlen(keys.dispatching(id));
    const replies = (await recheck.exec()) ?? [];
    const back = ids.filter(
      (_, i) => Number(replies[2 * i]?.[1] ?? 0) + Number(replies[2 * i + 1]?.[1] ?? 0) > 0,
    );
    if (back.length > 0) {
      const restore = redis.pipeline().sadd(keys.shareBatches(), ...back);
      for (const id of back) restore.sadd(keys.holds(id), SHARE_REASON);
      await restore.exec();
    }
    const gone = ids.filter((id) => !back.includes(id));
    if (gone.length > 0) await this.dropReports(gone);
  }

  /** The in-flight caps of the workers that reported lately and are ramping up, summed. */
  private async readWorkerCaps(now: number): Promise<void> {
    const reports = await this.runtime.redis.hvals(this.runtime.keys.workerSizes());
    let caps = 0;
    for (const json of reports) {
      try {
        const r = JSON.parse(json) as { concurrency?: number; at?: number; limitedBy?: string };
        const ramping = r.limitedBy === 'concurrency';
        if (ramping && now - Number(r.at ?? 0) <= WORKER_REPORT_MS) caps += Number(r.concurrency ?? 0);
      } catch {
        // A damaged report counts for nothing; `status` deletes it.
      }
    }
    this.workerCaps = caps;
  }

  /** Writes each batch's dispatch rate and share for `status` (one HSET a second). */
  private async report(now: number): Promise<void> {
    const dt = now - this.reportedAt;
    this.reportedAt = now;
    if (dt <= 0 || dt > 10 * REPORT_EVERY_MS) {
      for (const b of this.batches.values()) b.recent = 0;
      return;
    }
    const k = 1 - Math.exp(-dt / RATE_WINDOW_MS);
    let total = 0;
    for (const b of this.batches.values()) {
      b.rate += k * ((b.recent * 1_000) / dt - b.rate);
      b.recent = 0;
      total += b.rate;
    }
    if (this.batches.size === 0) return;
    const fields: string[] = [];
    for (const [id, b] of this.batches) {
      const report: ShareReport = {
        weight: b.weight,
        rate: Math.round(b.rate * 100) / 100,
        share: total > 0 ? Math.round((b.rate / total) * 1_000) / 1_000 : 0,
        held: b.held,
        at: now,
      };
      fields.push(id, JSON.stringify(report));
    }
    await this.runtime.redis.hset(this.runtime.keys.shareState(), ...fields);
  }
}
