import type { ModelBreakerState } from '../breakers/breaker-state.js';
import type { RequestJobData } from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';

/** Why a request must not be sent now. */
export type Gate =
  | { kind: 'open' }
  | { kind: 'canceled' }
  | { kind: 'key-breaker' }
  | { kind: 'model-breaker'; breaker: ModelBreakerState };

/** A batch not worked on for this long (ms) is no longer watched for a cancel. */
const FORGET_BATCH_MS = 10 * 60_000;

/** How long a key breaker this process noted holds before Redis must confirm it (ms). */
const LOCAL_NOTE_MS = 5_000;

/**
 * What every request is checked against before it is sent: its batch canceled, the key-wide
 * breaker open, its model's breaker open. Read from Redis at most once per `refreshMs` per process (two commands), not once
 * per request: the hot path stays free of extra round-trips.
 */
export class RequestGates {
  private breakers = new Map<string, ModelBreakerState>();
  private canceled = new Set<string>();
  /** Batches this process has worked on, with when it last did (ms): their cancel flags are read. */
  private readonly batches = new Map<string, number>();
  private refreshedAt = 0;
  private keyBreakerInRedis = false;
  private keyBreakerNotedAt = 0;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly runtime: Runtime,
    private readonly refreshMs = 1_000,
  ) {}

  async check(data: RequestJobData): Promise<Gate> {
    if (!this.batches.has(data.batch_id)) this.refreshedAt = 0;
    this.batches.set(data.batch_id, Date.now());
    if (Date.now() - this.refreshedAt >= this.refreshMs) await this.refresh();
    if (this.canceled.has(data.batch_id)) return { kind: 'canceled' };
    if (this.keyBreakerOpen()) return { kind: 'key-breaker' };
    const breaker = this.breakers.get(data.params.model);
    return breaker ? { kind: 'model-breaker', breaker } : { kind: 'open' };
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

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const { redis, keys } = this.runtime;
        const forgetBefore = Date.now() - FORGET_BATCH_MS;
        for (const [id, seen] of this.batches) if (seen < forgetBefore) this.batches.delete(id);
        const batchIds = [...this.batches.keys()];
        const multi = redis.multi().hgetall(keys.modelBreakers()).hget(keys.keyBreaker(), 'reason');
        for (const id of batchIds) multi.hget(keys.batch(id), 'canceled_at');
        const replies = (await multi.exec()) ?? [];
        const breakers = (replies[0]?.[1] ?? {}) as Record<string, string>;
        this.keyBreakerInRedis = replies[1]?.[1] === 'key_breaker';
        this.breakers = new Map(
          Object.entries(breakers).map(([model, json]) => [model, JSON.parse(json) as ModelBreakerState]),
        );
        this.canceled = new Set(batchIds.filter((_, i) => Boolean(replies[i + 2]?.[1])));
        this.refreshedAt = Date.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}
