import { adoptAccountBreaker } from '../breakers/breakers.js';
import type { ModelBreakerState } from '../breakers/breaker-state.js';
import { accountBreakerKey } from '../redis/keys.js';
import { readEpoch } from '../queue/epoch.js';
import type { RequestJobData } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import { parsePriority } from '../store/batch-record.js';

/** Why a request must not be sent now. */
export type Gate =
  | { kind: 'open' }
  /** Its batch was deleted (or is being deleted), or the job is left over from a deleted incarnation. */
  | { kind: 'gone' }
  | { kind: 'canceled' }
  | { kind: 'key-breaker' }
  | { kind: 'model-breaker'; breaker: ModelBreakerState };

/** What the gates know of one batch. */
interface BatchGate {
  /** The record exists and is not being deleted. */
  live: boolean;
  canceled: boolean;
  /** The incarnation of the record (when live). */
  incarnation: number;
  /** The highest incarnation known for the id: a job of a lower one is a leftover. */
  latest: number;
  /** Its fair-share weight (`--priority`). */
  priority: number;
}

/** A batch not worked on for this long (ms) is no longer watched. */
const FORGET_BATCH_MS = 10 * 60_000;

/** How long a key breaker this process noted holds before Redis must confirm it (ms). */
const LOCAL_NOTE_MS = 5_000;

/**
 * What every request is checked against before it is sent: its batch deleted or canceled, the
 * key-wide breaker open, its model's breaker open. The state is cached and re-read only when the
 * send-time epoch (src/queue/epoch.ts) moved, when a batch is new to this process, or after
 * `backstopMs`; the epoch itself is read once per request, just before the send
 * ({@link confirm}), or before acting on a closed gate. So a cancel, a delete, a pause or a
 * breaker change acts on the very next request of every worker, and the hot path costs one GET.
 */
export class RequestGates {
  private breakers = new Map<string, ModelBreakerState>();
  private readonly state = new Map<string, BatchGate>();
  /** Batches this process has worked on, with when it last did (ms): their state is read. */
  private readonly batches = new Map<string, number>();
  /** The epoch the cached state was read under (undefined: never read). */
  private epoch: string | undefined;
  private refreshedAt = 0;
  private keyBreakerInRedis = false;
  private keyBreakerNotedAt = 0;
  private refreshing: Promise<void> | undefined;

  /**
   * @param backstopMs the cached state is re-read at least this often (ms), whatever the epoch
   * says: a safety net for a change made by a runner too old to bump the epoch. Default 30 s.
   */
  constructor(
    private readonly runtime: Runtime,
    /**
     * The API key's fingerprint: each refresh also reads the key-level breaker (one more command,
     * per refresh, never per request) and brings this prefix in line with it, as a safety net under
     * the direct pause and release of every prefix of the key (src/breakers/breakers.ts).
     */
    private readonly accountId?: string | undefined,
    private readonly backstopMs = 30_000,
  ) {}

  /**
   * The gate of a request from the cached state, read afresh when the batch (or this incarnation
   * of it) is new here. A closed gate is confirmed against the epoch before it is acted on, so a
   * breaker closed or a queue resumed a moment ago does not stop the request.
   */
  async check(data: RequestJobData): Promise<Gate> {
    this.batches.set(data.batch_id, Date.now());
    // Bounded loop: a refresh already under way when this batch was added read without it, and
    // judged alone its request would look `gone` (a deleted batch) and be dropped unsent. Two
    // batches starting at once hit this: the second's canary was completed without a result.
    for (let i = 0; i < 3 && this.stale(data); i += 1) await this.refresh();
    const gate = this.decide(data);
    return gate.kind === 'open' ? gate : this.confirm(data);
  }

  /** The batch's fair-share weight (`--priority`) as last read; 1 when not known here. */
  priorityOf(batchId: string): number {
    return this.state.get(batchId)?.priority ?? 1;
  }

  /** Whether the cached state cannot judge this request: its batch (or incarnation) is new here, or the cache is old. */
  private stale(data: RequestJobData): boolean {
    const known = this.state.get(data.batch_id);
    return !known || (data.inc ?? 0) > known.latest || Date.now() - this.refreshedAt >= this.backstopMs;
  }

  /**
   * The gate just before a send: one GET of the epoch, and the state read again only when it
   * moved. Whatever changed before that GET (a cancel that has returned, say) is seen.
   */
  async confirm(data: RequestJobData): Promise<Gate> {
    const epoch = await readEpoch(this.runtime);
    // A refresh already under way may have read before this epoch moved: read until the state is
    // of this epoch (bounded: a newer bump each time would only mean the state is newer still).
    for (let i = 0; i < 3 && epoch !== this.epoch; i += 1) await this.refresh();
    return this.decide(data);
  }

  /**
   * Whether the key-wide breaker is open. Checked again just before each call, without a round
   * trip: a process that has just seen a key-wide error sends nothing more, even before the queue
   * pause has reached Redis, so each in-flight slot spends at most one request on it.
   */
  keyBreakerOpen(): boolean {
    return this.keyBreakerInRedis || Date.now() - this.keyBreakerNotedAt < LOCAL_NOTE_MS;
  }

  /** Notes a key-wide error at once (synchronously, before any await of the caller). */
  noteKeyBreaker(): void {
    this.keyBreakerNotedAt = Date.now();
  }

  /** The breaker is recorded and the queue paused: from now on Redis alone decides (a resume acts at once). */
  confirmKeyBreaker(): void {
    this.keyBreakerInRedis = true;
    this.keyBreakerNotedAt = 0;
  }

  /** Applies a breaker this process opened at once, without waiting for the next refresh. */
  noteModelBreaker(breaker: ModelBreakerState): void {
    this.breakers.set(breaker.model, breaker);
  }

  private decide(data: RequestJobData): Gate {
    const batch = this.state.get(data.batch_id);
    const inc = data.inc ?? 0;
    if (!batch || !batch.live || inc < batch.latest || inc !== batch.incarnation) return { kind: 'gone' };
    if (batch.canceled) return { kind: 'canceled' };
    if (this.keyBreakerOpen()) return { kind: 'key-breaker' };
    const breaker = this.breakers.get(data.params.model);
    return breaker ? { kind: 'model-breaker', breaker } : { kind: 'open' };
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const { redis, keys } = this.runtime;
        const forgetBefore = Date.now() - FORGET_BATCH_MS;
        for (const [id, seen] of this.batches) if (seen < forgetBefore) this.batches.delete(id);
        const batchIds = [...this.batches.keys()];
        // The epoch first: state read after it is at least as new, so a bump that lands between
        // the two makes the next confirm() read again rather than miss it.
        const multi = redis
          .multi()
          .get(keys.epoch())
          .hgetall(keys.modelBreakers())
          .hmget(keys.keyBreaker(), 'reason', 'trip');
        for (const id of batchIds) {
          multi.hmget(keys.batch(id), 'id', 'canceled_at', 'deleted_at', 'incarnation', 'priority');
          multi.hget(keys.incarnations(), id);
        }
        // The key-level record lives in another slot: its own command, beside the transaction.
        const [execReplies, accountTrip] = await Promise.all([
          multi.exec(),
          this.accountId === undefined
            ? Promise.resolve(null)
            : redis.hget(accountBreakerKey(this.accountId), 'trip'),
        ]);
        const replies = execReplies ?? [];
        const value = (i: number): unknown => {
          const [err, reply] = replies[i] ?? [new Error('no reply'), null];
          if (err) throw err;
          return reply;
        };
        const epoch = (value(0) as string | null) ?? '';
        const breakers = (value(1) ?? {}) as Record<string, string>;
        const [reason, trip] = value(2) as Array<string | null>;
        this.keyBreakerInRedis = reason === 'key_breaker' || Boolean(accountTrip);
        // This prefix missed the key's trip or its release (a process died between its steps):
        // align it now. Rare, so in the background; the gate above already holds the requests.
        if (this.accountId !== undefined && (accountTrip ? reason !== 'key_breaker' : Boolean(trip))) {
          void adoptAccountBreaker(this.runtime, this.accountId).catch(() => {});
        }
        this.breakers = new Map(
          Object.entries(breakers).map(([model, json]) => [model, JSON.parse(json) as ModelBreakerState]),
        );
        this.state.clear();
        batchIds.forEach((id, i) => {
          const [recordId, canceledAt, deletedAt, incarnation, priority] = value(3 + 2 * i) as Array<
            string | null
          >;
          const latest = Number(value(4 + 2 * i) ?? 0);
          const live = Boolean(recordId) && !deletedAt;
          this.state.set(id, {
            live,
            canceled: Boolean(canceledAt),
            incarnation: Number(incarnation ?? 0),
            latest: Math.max(latest, live ? Number(incarnation ?? 0) : 0),
            priority: parsePriority(priority),
          });
        });
        this.epoch = epoch;
        this.refreshedAt = Date.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}
