import Bottleneck from 'bottleneck';
import { silentLogger, type Logger } from '../logger.js';
import type { RedisClient } from '../redis/connection.js';
import { isTransientRedisError } from '../redis/transient-error.js';
import {
  ModelClassResolver,
  isLimited,
  type BudgetClass,
  type BudgetLimits,
  type ResolvedClass,
} from './budget-config.js';
import { budgetKey, learnedLimitsKey } from './budget-keys.js';
import { ACQUIRE_SCRIPT, SETTLE_SCRIPT, SNAPSHOT_SCRIPT } from './budget-scripts.js';
import {
  OverBudgetError,
  type BudgetAmounts,
  type BudgetLease,
  type CallReport,
  type RateBudget,
  type RequestEstimate,
} from './rate-budget.js';
import { FairQueue } from './fair-queue.js';
import {
  DIMENSIONS,
  DIMENSION_INFO,
  parseRateLimitHeaders,
  settlementDelta,
  type Dimension,
} from './settlement.js';

/** How long an idle bucket is kept in Redis (refreshed by every look); longer while a hold lasts. */
const BUCKET_TTL_MS = 60 * 60 * 1000;
/** Default {@link RateBudgetOptions.refillLeadMs}: covers connection set-up to the API. */
const DEFAULT_REFILL_LEAD_MS = 500;
/** The longest one sleep lasts before the head of the queue looks again (to see other processes' refunds). */
const DEFAULT_MAX_SLEEP_MS = 2_000;
/** How coarsely the API reports `remaining`, per limit. */
const REMAINING_ROUNDING: Readonly<Record<Dimension, number>> = {
  requests: 1,
  inputTokens: 1000,
  outputTokens: 1000,
};
/** How long settle() keeps retrying a Redis that does not answer before giving up on that correction. */
const SETTLE_RETRY_MS = 10_000;
/**
 * How long limits learned from the API's headers are kept in Redis after they last changed: a
 * process starting later uses them from its first request. Every response re-teaches them.
 */
const LEARNED_TTL_MS = 24 * 3_600_000;
/** How often a process with nothing learned for a class looks in Redis for what another process learned. */
const LEARNED_LOOK_MS = 2_000;
/**
 * Admission in bulk (issue 16 item 5): once requests of a class wait in this process, the head of
 * its FIFO asks the shared bucket for the requests behind it too, as many as the bucket refills in
 * {@link BULK_REFILL_MS} (at most {@link BULK_MAX}), and hands the surplus out locally, one Redis
 * round trip for the lot instead of one each. At 600 RPM that is one request (no change); at
 * 120,000 RPM up to 40. A surplus nobody takes within {@link CREDIT_TTL_MS} is given back.
 */
const BULK_REFILL_MS = 20;
const BULK_MAX = 64;
const CREDIT_TTL_MS = 100;

/** Where the limit of one dimension comes from. */
type LimitSource = 'configured' | 'api';

export interface BudgetClock {
  /** Local wall time in ms (only for remembering when this process last saw a bucket). */
  now(): number;
}

export interface RateBudgetOptions {
  /** The runner's connection (`maxRetriesPerRequest: null`: commands wait out an outage). */
  redis: RedisClient;
  /** The API key's {@link Secret.fingerprint}: the budget belongs to the account, whatever the queue prefix. */
  accountId: string;
  /** Classes from the budgets file; the first whose glob matches a model id is its class. */
  classes?: readonly BudgetClass[];
  /** Limits of every model no class matches (from --rpm/--itpm/--otpm). */
  default?: BudgetLimits;
  logger?: Logger;
  clock?: BudgetClock;
  /** The longest single sleep while waiting, in ms (default 2000). */
  maxSleepMs?: number;
  /**
   * How long after a grant empties a full bucket its refill starts (default 500 ms): the API's bucket
   * starts refilling only when that first request reaches it. See ACQUIRE_SCRIPT.
   */
  refillLeadMs?: number;
}

/** One class in {@link SharedRateBudget.describe}. */
interface BudgetClassDescription extends ResolvedClass {
  /** The Redis key of its bucket, or null when it limits nothing (never touches Redis). */
  key: string | null;
}

export interface BudgetDescription {
  accountId: string;
  classes: BudgetClassDescription[];
}

/** Per limit: configured, in force (after the API's headers) and current level; null where not limited. */
export interface BudgetDimensionSnapshot {
  /**
   * The per-minute limit the budget was given: configured (--rpm, --budgets), or, where nothing
   * is configured, learned from the API's `anthropic-ratelimit-*-limit` headers (see `source`).
   */
  configured: number;
  /** Where `configured` comes from. */
  source: LimitSource;
  /** The capacity in force: the configured limit, or the lower one the API's headers reported. */
  capacity: number;
  /** The limit the API's headers last reported, if any. */
  reported: number | null;
  /** Current level (after refill); negative is a debt. Null when the bucket does not exist yet. */
  level: number | null;
}

export interface BudgetClassSnapshot {
  name: string;
  match: string | null;
  key: string | null;
  /** Whether the bucket exists in Redis (false before first use, or after it expired). */
  exists: boolean;
  /** ms left of a 429 hold, 0 when none. */
  holdMs: number;
  requests: BudgetDimensionSnapshot | null;
  inputTokens: BudgetDimensionSnapshot | null;
  outputTokens: BudgetDimensionSnapshot | null;
}

export interface BudgetSnapshot {
  accountId: string;
  /** Redis time of the snapshot (ms), or the local time when no class is limited. */
  at: number;
  classes: BudgetClassSnapshot[];
}

export interface SharedRateBudgetApi extends RateBudget {
  /** The class a model id belongs to. */
  resolveModelClass(model: string): ResolvedClass;
  /** The budget in force as configured (no Redis call). */
  describe(): BudgetDescription;
  /** Current levels per class, read from Redis (one read-only script call per limited class). */
  snapshot(): Promise<BudgetSnapshot>;
  /** One look at the bucket without waiting: the lease, or the ms the bucket says to wait. */
  tryAcquire(
    estimate: RequestEstimate,
  ): Promise<{ lease: BudgetLease; waitMs: 0 } | { lease: null; waitMs: number }>;
}

interface Waiter {
  readonly estimate: RequestEstimate;
  readonly charge: BudgetAmounts;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (lease: BudgetLease) => void;
  readonly reject: (err: Error) => void;
}

interface ClassState {
  /** The class with its limits in force: configured, or learned from the API where none is. */
  cls: ResolvedClass;
  readonly key: string;
  /** In-process FIFO gate: only the head of this process's queue asks Redis; the rest wait in memory. */
  readonly gate: Bottleneck;
  /** Requests of this process queued in (or running through) the gate. */
  queued: number;
  /** Local time of the last successful script call on this bucket; null until then. */
  seenAt: number | null;
  /** Wakes the sleeping head early (a local refund may have made room). */
  wake: (() => void) | null;
  sleepUntil: number;
  readonly logged: Map<Dimension, number>;
  /** This process's requests waiting for the class, in arrival order. */
  /** This process's requests waiting for the class, served round-robin across batches (their lanes). */
  readonly waiters: FairQueue<Waiter>;
  /** Whether a gate job is serving the waiters. */
  serving: boolean;
  /** Charged to the shared bucket in bulk, not yet handed to a request: spent locally first. */
  credit: BudgetAmounts | null;
  /** Gives the credit back when nobody took it in time. */
  creditTimer: NodeJS.Timeout | null;
}

/**
 * The account's rate budget, shared by every worker process on every host through one Redis.
 *
 * Each model class is one token bucket per limit (RPM, ITPM, OTPM) in one Redis hash. Admission is
 * ONE Lua script call that refills from Redis TIME, checks all three limits and the 429 hold, and
 * charges all three at once or none; when it cannot grant it returns the exact wait until the shortest
 * limit has refilled enough, and the caller sleeps that long (plus a little jitter), not a heartbeat.
 * In front of it, a local Bottleneck (maxConcurrent 1) per class queues this process's requests in
 * FIFO order, so only the head of each process's queue polls Redis, whatever the concurrency.
 * Settlement is one more script call: refund or charge the difference between the estimate and the
 * real usage, store a 429 hold, adapt to the API's rate-limit headers.
 *
 * Workers that disagree on the limits (e.g. two processes started with different --rpm): each
 * process charges the shared bucket with its own idea of capacity and rate. The refill since the last
 * look is computed at the caller's rate and capped at the caller's capacity, and that result is
 * stored. So the bucket never holds more than the largest configured capacity and never refills
 * faster than the largest configured rate: the sum of all grants never exceeds what the most permissive
 * process's limits allow (capacity + rate x elapsed), and the stricter process waits more. A process
 * with no limit on a dimension neither checks nor charges that dimension. Use one configuration
 * everywhere. Limits reported by the API's headers are shared: when lower than configured, every
 * process uses them.
 *
 * When the bucket's key vanishes (a flush, a Redis restart without persistence, expiry after an hour
 * unused), the next look recreates it: full if this process has never seen the class (or not for an
 * hour: the bucket would be full by then), else EMPTY, so recovery never bursts past the budget.
 */
export class SharedRateBudget implements SharedRateBudgetApi {
  readonly #redis: RedisClient;
  readonly #accountId: string;
  readonly #resolver: ModelClassResolver;
  readonly #logger: Logger;
  readonly #clock: BudgetClock;
  readonly #maxSleepMs: number;
  readonly #refillLeadMs: number;
  readonly #states = new Map<string, ClassState>();
  readonly #closer = new AbortController();
  #redisTrouble = false;
  /** Classes as configured, by name. */
  readonly #configured = new Map<string, ResolvedClass>();
  /** Per class: limits the API's headers stated (0 where none), for the dimensions not configured. */
  readonly #learned = new Map<string, Limits>();
  /** Per class: the configured class with its learned limits filled in (see #inForce). */
  readonly #merged = new Map<string, ResolvedClass>();
  /** Per class with nothing learned: when this process last looked in Redis for another's. */
  readonly #learnedLookAt = new Map<string, number>();

  constructor(options: RateBudgetOptions) {
    this.#redis = options.redis;
    this.#accountId = options.accountId;
    budgetKey(options.accountId, 'check'); // validates the account id
    this.#resolver = new ModelClassResolver(options.classes ?? [], options.default ?? {});
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#maxSleepMs = options.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
    this.#refillLeadMs = options.refillLeadMs ?? DEFAULT_REFILL_LEAD_MS;
    for (const cls of this.#resolver.all()) this.#configured.set(cls.name, cls);
  }

  resolveModelClass(model: string): ResolvedClass {
    return this.#resolver.resolve(model);
  }

  describe(): BudgetDescription {
    return {
      accountId: this.#accountId,
      classes: this.#resolver.all().map((cls) => ({
        ...cls,
        key: isLimited(cls) ? budgetKey(this.#accountId, cls.name) : null,
      })),
    };
  }

  async acquire(estimate: RequestEstimate, signal?: AbortSignal): Promise<BudgetLease> {
    if (this.#closer.signal.aborted) throw new Error('the rate budget is closed');
    throwIfAborted(signal);
    const plan = this.#plan(estimate);
    if ('lease' in plan) return plan.lease;
    const { state, charge } = plan;
    // Fast path: while nobody in this process waits for the class, ask the bucket at once, as many
    // requests concurrently as there are; only when it says wait does a request join the FIFO gate.
    // (Through the gate alone, every acquire would queue behind the previous one's round trip, and
    // a worker far below its budget would run at one acquire per Redis round trip.)
    if (state.queued === 0) {
      try {
        const first = await this.#attempt(state, estimate, charge);
        if (typeof first !== 'number') return first;
      } catch (err) {
        if (!isTransientRedisError(err)) throw err;
      }
      throwIfAborted(signal);
    }
    state.queued += 1;
    const job = new Promise<BudgetLease>((resolve, reject) => {
      state.waiters.push({ estimate, charge, signal, resolve, reject }, estimate.lane, estimate.weight);
    }).finally(() => {
      state.queued -= 1;
    });
    this.#serveSoon(state);
    if (!signal) return job;
    return raceAbort(job, signal, (lease) => this.#release(lease));
  }

  /**
   * One look at the shared bucket, without queueing or waiting: the lease if granted now, else how
   * long the bucket says to wait. Rejects with {@link OverBudgetError} like acquire, and with Redis
   * errors as they come. For tools and tests; workers use acquire.
   */
  waiting(): number {
    let n = 0;
    for (const state of this.#states.values()) n += state.waiters.length;
    return n;
  }

  async tryAcquire(
    estimate: RequestEstimate,
  ): Promise<{ lease: BudgetLease; waitMs: 0 } | { lease: null; waitMs: number }> {
    const plan = this.#plan(estimate);
    if ('lease' in plan) return { lease: plan.lease, waitMs: 0 };
    const result = await this.#attempt(plan.state, estimate, plan.charge);
    return typeof result === 'number' ? { lease: null, waitMs: result } : { lease: result, waitMs: 0 };
  }

  /** Local checks: the class, what to charge, and whether it could ever fit. */
  #plan(estimate: RequestEstimate): { lease: BudgetLease } | { state: ClassState; charge: BudgetAmounts } {
    const cls = this.#inForce(this.#resolver.resolve(estimate.model));
    if (!isLimited(cls)) {
      this.#lookForLearned(cls.name);
      return { lease: { estimate, modelClass: cls.name } };
    }
    const charge: BudgetAmounts = {
      requests: cls.rpm > 0 ? 1 : 0,
      inputTokens: cls.itpm > 0 ? Math.max(0, Math.ceil(estimate.inputTokens)) : 0,
      outputTokens: cls.otpm > 0 ? Math.max(0, Math.ceil(estimate.outputTokens)) : 0,
    };
    if (cls.itpm > 0 && charge.inputTokens > cls.itpm)
      throw overBudget(cls, estimate, 'inputTokens', cls.itpm, false);
    if (cls.otpm > 0 && charge.outputTokens > cls.otpm)
      throw overBudget(cls, estimate, 'outputTokens', cls.otpm, false);
    return { state: this.#stateFor(cls), charge };
  }

  /** One acquire script call: the lease, or the ms to wait. */
  async #attempt(
    state: ClassState,
    estimate: RequestEstimate,
    charge: BudgetAmounts,
    bulk = 1,
  ): Promise<BudgetLease | number> {
    const createFull = state.seenAt === null || this.#clock.now() - state.seenAt > BUCKET_TTL_MS ? 1 : 0;
    const asked = bulk > 1 ? scale(charge, bulk) : charge;
    const reply = (await ACQUIRE_SCRIPT.run(
      this.#redis,
      [state.key],
      [
        ...ownLimits(state.cls),
        asked.requests,
        asked.inputTokens,
        asked.outputTokens,
        createFull,
        BUCKET_TTL_MS,
        this.#refillLeadMs,
      ],
    )) as Array<number | string>;
    state.seenAt = this.#clock.now();
    const code = Number(reply[0]);
    if (code === 0) {
      if (bulk > 1) this.#addCredit(state, scale(charge, bulk - 1));
      return { estimate, modelClass: state.cls.name, charged: charge, grantedAt: Number(reply[1]) };
    }
    // In bulk, more than the whole bucket: ask for this request alone.
    if (code === 2 && bulk > 1) return this.#attempt(state, estimate, charge, 1);
    if (code === 2) {
      const dim = DIMENSIONS[Number(reply[1]) - 1] ?? 'inputTokens';
      throw overBudget(state.cls, estimate, dim, Number(reply[2]), true);
    }
    return Math.max(1, Number(reply[1]));
  }

  async settle(lease: BudgetLease, report: CallReport): Promise<void> {
    await this.#learnFrom(lease.modelClass, report.headers);
    const state = this.#states.get(lease.modelClass);
    if (!state || !lease.charged) return;
    const delta = settlementDelta(lease.charged, report.usage);
    const headers = parseRateLimitHeaders(report.headers);
    const holdMs = Math.max(0, Math.ceil(report.rateLimitedForMs ?? 0));
    const own = ownLimits(state.cls);
    let informative = holdMs > 0;
    const headerLimit = [-1, -1, -1];
    const headerRemaining = [-1, -1, -1];
    DIMENSIONS.forEach((dim, d) => {
      if (own[d] === 0) return;
      if (delta[dim] !== 0) informative = true;
      const h = headers[dim];
      if (h.limit !== undefined) {
        headerLimit[d] = h.limit;
        informative = true;
        this.#noteReportedLimit(state, dim, own[d] ?? 0, h.limit);
      }
      if (h.remaining !== undefined) {
        // The API rounds remaining down (tokens to the thousand): the truth may be up to one step
        // more. Cap at that, so rounding alone never drains a budget that our own accounting
        // already tracks; what the API knows and we do not (another client on the key) still caps us.
        headerRemaining[d] = h.remaining + REMAINING_ROUNDING[dim];
        informative = true;
      }
    });
    if (!informative) return;
    if (holdMs > 0) {
      this.#logger.debug('rate limited by the API: holding the class', { class: state.cls.name, holdMs });
    }
    const args = [
      ...own,
      delta.requests,
      delta.inputTokens,
      delta.outputTokens,
      holdMs,
      ...headerLimit,
      ...headerRemaining,
      BUCKET_TTL_MS,
    ];
    const ok = await this.#runSettle(state, args);
    if (ok && (delta.inputTokens < 0 || delta.outputTokens < 0 || delta.requests < 0))
      this.#wakeIfLong(state);
  }

  async snapshot(): Promise<BudgetSnapshot> {
    const out: BudgetSnapshot = { accountId: this.#accountId, at: this.#clock.now(), classes: [] };
    for (const configured of this.#resolver.all()) {
      // A status process has seen no header: what the workers learned is in Redis.
      if (!isFullyConfigured(configured)) await this.#readLearned(configured.name);
      const cls = this.#inForce(configured);
      if (!isLimited(cls)) {
        out.classes.push({
          name: cls.name,
          match: cls.match,
          key: null,
          exists: false,
          holdMs: 0,
          requests: null,
          inputTokens: null,
          outputTokens: null,
        });
        continue;
      }
      const key = budgetKey(this.#accountId, cls.name);
      const own = ownLimits(cls);
      const reply = (await SNAPSHOT_SCRIPT.run(this.#redis, [key], own)) as Array<string | number>;
      const now = Number(reply[0]);
      out.at = now;
      const dims = DIMENSIONS.map((_, d): BudgetDimensionSnapshot | null => {
        if ((own[d] ?? 0) === 0) return null;
        const level = String(reply[3 + 3 * d] ?? '');
        const reported = String(reply[5 + 3 * d] ?? '');
        return {
          configured: own[d] ?? 0,
          source: (ownLimits(configured)[d] ?? 0) > 0 ? 'configured' : 'api',
          capacity: Number(reply[4 + 3 * d]),
          reported: reported === '' ? null : Number(reported),
          level: level === '' ? null : Number(level),
        };
      });
      out.classes.push({
        name: cls.name,
        match: cls.match,
        key,
        exists: Number(reply[1]) === 1,
        holdMs: Math.max(0, Math.ceil(Number(reply[2]) - now)),
        requests: dims[0] ?? null,
        inputTokens: dims[1] ?? null,
        outputTokens: dims[2] ?? null,
      });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closer.signal.aborted) return;
    // Credit charged in bulk and not handed out goes back before this process leaves.
    await Promise.all(
      [...this.#states.values()].map((state) => this.#returnCredit(state).catch(() => undefined)),
    );
    this.#closer.abort();
    for (const state of this.#states.values()) this.#rejectAll(state, new Error('the rate budget is closed'));
    await Promise.all(
      [...this.#states.values()].map((s) =>
        s.gate.stop({ dropWaitingJobs: true, dropErrorMessage: 'the rate budget is closed' }).catch(() => {}),
      ),
    );
  }

  #stateFor(cls: ResolvedClass): ClassState {
    let state = this.#states.get(cls.name);
    // Limits learned since: the same bucket, charged with the limits now in force.
    if (state) state.cls = cls;
    if (!state) {
      state = {
        cls,
        key: budgetKey(this.#accountId, cls.name),
        gate: new Bottleneck({ maxConcurrent: 1 }),
        queued: 0,
        waiters: new FairQueue<Waiter>(),
        serving: false,
        credit: null,
        creditTimer: null,
        seenAt: null,
        wake: null,
        sleepUntil: 0,
        logged: new Map(),
      };
      this.#states.set(cls.name, state);
    }
    return state;
  }

  /** The head of this process's queue for the class: ask Redis until granted, sleeping the wait it names. */
  /** Makes sure one gate job serves the class's waiters (one per busy period, not one per request). */
  #serveSoon(state: ClassState): void {
    if (state.serving) return;
    state.serving = true;
    void state.gate
      .schedule(() => this.#serve(state))
      .catch((err: unknown) => this.#rejectAll(state, err))
      .finally(() => {
        state.serving = false;
        if (state.waiters.length > 0 && !this.#closer.signal.aborted) this.#serveSoon(state);
      });
  }

  /**
   * Serves the class's waiters in turn (round-robin across their batches, each batch first in,
   * first out: {@link FairQueue}) until none is left: each from the local credit when
   * it covers it; else the head asks the shared bucket for itself and those behind it in bulk
   * ({@link #bulk}), sleeping exactly what the bucket says between looks. Bottleneck runs this once
   * per busy period: through Bottleneck one job at a time, admission stalled near 350 a second.
   */
  async #serve(state: ClassState): Promise<void> {
    let failures = 0;
    while (state.waiters.length > 0) {
      const head = state.waiters.peek()!;
      if (this.#closer.signal.aborted) return this.#rejectAll(state, new Error('the rate budget is closed'));
      if (head.signal?.aborted) {
        state.waiters.take(head);
        head.reject(abortError(head.signal));
        continue;
      }
      const fromCredit = this.#takeCredit(state, head.estimate, head.charge);
      if (fromCredit) {
        state.waiters.take(head);
        head.resolve(fromCredit);
        continue;
      }
      await this.#returnCredit(state);
      let result: BudgetLease | number;
      try {
        result = await this.#attempt(state, head.estimate, head.charge, this.#bulk(state, head.charge));
      } catch (err) {
        if (!isTransientRedisError(err)) {
          state.waiters.take(head);
          head.reject(err instanceof Error ? err : new Error(String(err)));
          continue;
        }
        failures += 1;
        this.#noteTrouble(err);
        await this.#sleep(state, Math.min(50 * 2 ** (failures - 1), 1_000), head.signal).catch(
          () => undefined,
        );
        continue;
      }
      failures = 0;
      this.#noteRecovered();
      if (typeof result !== 'number') {
        // A waiter whose signal aborted meanwhile gives its lease back (raceAbort in acquire).
        state.waiters.take(head);
        head.resolve(result);
        continue;
      }
      // Sleep exactly what the bucket said (plus a little jitter, so heads of several processes
      // do not all look at the same instant), at most maxSleepMs so other processes' refunds are seen.
      const jitter = Math.random() * Math.min(25, 2 + result * 0.02);
      await this.#sleep(state, Math.min(result + jitter, this.#maxSleepMs), head.signal).catch(
        () => undefined,
      );
    }
  }

  #rejectAll(state: ClassState, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    for (const waiter of state.waiters.drain()) waiter.reject(error);
  }

  /** Gives back everything a lease charged (the call was never sent). */
  async #release(lease: BudgetLease): Promise<void> {
    const state = this.#states.get(lease.modelClass);
    if (!state || !lease.charged) return;
    const delta = settlementDelta(lease.charged, null, true);
    const args = [...ownLimits(state.cls), delta.requests, delta.inputTokens, delta.outputTokens, 0];
    await this.#runSettle(state, [...args, -1, -1, -1, -1, -1, -1, BUCKET_TTL_MS]);
  }

  /** Runs the settle script; retries a Redis in trouble for a while, then gives up on that correction (never throws). */
  async #runSettle(state: ClassState, args: number[]): Promise<boolean> {
    const deadline = this.#clock.now() + SETTLE_RETRY_MS;
    for (let failures = 0; ; failures++) {
      try {
        await SETTLE_SCRIPT.run(this.#redis, [state.key], args);
        this.#noteRecovered();
        state.seenAt = this.#clock.now();
        return true;
      } catch (err) {
        if (!isTransientRedisError(err) || this.#clock.now() > deadline || this.#closer.signal.aborted) {
          this.#logger.warn('could not settle a rate-budget lease; the correction is lost', {
            class: state.cls.name,
            error: (err as Error).message,
          });
          return false;
        }
        this.#noteTrouble(err);
        await delay(Math.min(50 * 2 ** failures, 1_000));
      }
    }
  }

  #sleep(state: ClassState, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const signals = signal ? [signal, this.#closer.signal] : [this.#closer.signal];
      const done = () => {
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener('abort', onAbort);
        if (state.wake === wake) state.wake = null;
      };
      const wake = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(signal?.aborted ? abortError(signal) : new Error('the rate budget is closed'));
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      state.wake = wake;
      state.sleepUntil = this.#clock.now() + ms;
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
      if (signals.some((s) => s.aborted)) onAbort();
    });
  }

  /** A local refund may let the head go sooner than it planned: wake it unless it is about to look anyway. */
  #wakeIfLong(state: ClassState): void {
    if (state.wake && state.sleepUntil - this.#clock.now() > 20) state.wake();
  }

  #noteReportedLimit(state: ClassState, dim: Dimension, configured: number, reported: number): void {
    if (reported >= configured || state.logged.get(dim) === reported) return;
    state.logged.set(dim, reported);
    this.#logger.warn('the API reports a lower rate limit than configured; every worker now uses it', {
      class: state.cls.name,
      limit: DIMENSION_INFO[dim].limit,
      configured,
      reported,
    });
  }

  /**
   * How many requests' worth the head asks for: itself and those queued behind it, at most what
   * the bucket refills in {@link BULK_REFILL_MS} (so bulk never makes anyone wait longer than that
   * for the lot) and {@link BULK_MAX}.
   */
  #bulk(state: ClassState, charge: BudgetAmounts): number {
    let k = Math.min(BULK_MAX, state.waiters.length);
    const own = ownLimits(state.cls);
    DIMENSIONS.forEach((dim, d) => {
      const cost = charge[dim];
      const limit = own[d] ?? 0;
      if (cost > 0 && limit > 0) k = Math.min(k, Math.floor(((limit / 60_000) * BULK_REFILL_MS) / cost));
    });
    return Math.max(1, k);
  }

  /** Hands a request its charge from the local credit, if the credit covers it (no Redis call). */
  #takeCredit(state: ClassState, estimate: RequestEstimate, charge: BudgetAmounts): BudgetLease | null {
    const credit = state.credit;
    if (!credit || DIMENSIONS.some((dim) => credit[dim] < charge[dim])) return null;
    for (const dim of DIMENSIONS) credit[dim] -= charge[dim];
    if (DIMENSIONS.every((dim) => credit[dim] <= 0)) this.#clearCredit(state);
    return { estimate, modelClass: state.cls.name, charged: charge, grantedAt: this.#clock.now() };
  }

  #addCredit(state: ClassState, amounts: BudgetAmounts): void {
    const credit = (state.credit ??= { requests: 0, inputTokens: 0, outputTokens: 0 });
    for (const dim of DIMENSIONS) credit[dim] += amounts[dim];
    if (state.creditTimer) clearTimeout(state.creditTimer);
    state.creditTimer = setTimeout(() => void this.#returnCredit(state), CREDIT_TTL_MS);
    state.creditTimer.unref();
  }

  #clearCredit(state: ClassState): void {
    state.credit = null;
    if (state.creditTimer) clearTimeout(state.creditTimer);
    state.creditTimer = null;
  }

  /** Gives unused credit back to the shared bucket (the requests it was for did not fit it, or nobody came). */
  async #returnCredit(state: ClassState): Promise<void> {
    const credit = state.credit;
    if (!credit) return;
    this.#clearCredit(state);
    if (DIMENSIONS.every((dim) => credit[dim] <= 0)) return;
    const args = [...ownLimits(state.cls), -credit.requests, -credit.inputTokens, -credit.outputTokens, 0];
    await this.#runSettle(state, [...args, -1, -1, -1, -1, -1, -1, BUCKET_TTL_MS]);
  }

  /**
   * The class with its limits in force: each dimension as configured, or, where nothing is
   * configured, as the API's headers last stated it (issue 16: with no limits given, the budget
   * is the API's, shared by every process, instead of none).
   */
  #inForce(cls: ResolvedClass): ResolvedClass {
    const learned = this.#learned.get(cls.name);
    if (!learned || isFullyConfigured(cls)) return cls;
    // Once per learning, not per request: this runs on every admission.
    let merged = this.#merged.get(cls.name);
    if (!merged) {
      merged = {
        ...cls,
        rpm: cls.rpm || learned[0],
        itpm: cls.itpm || learned[1],
        otpm: cls.otpm || learned[2],
      };
      this.#merged.set(cls.name, merged);
    }
    return merged;
  }

  #setLearned(className: string, limits: Limits): void {
    this.#learned.set(className, limits);
    this.#merged.delete(className);
  }

  /**
   * Learns the limits the response states for the dimensions of the class nobody configured: every
   * response carries `anthropic-ratelimit-{requests,input-tokens,output-tokens}-limit`
   * (anthropic-api.md, "Headers on responses"; the emulator sends them from its tier).
   */
  async #learnFrom(className: string, headers: Readonly<Record<string, string>>): Promise<void> {
    const configured = this.#configured.get(className);
    if (!configured || isFullyConfigured(configured)) return;
    const stated = parseRateLimitHeaders(headers);
    const own = ownLimits(configured);
    const before = this.#learned.get(className) ?? [0, 0, 0];
    const next = DIMENSIONS.map((dim, d) => (own[d] ? 0 : (stated[dim].limit ?? before[d] ?? 0))) as Limits;
    if (next.every((v, d) => v === before[d])) return;
    this.#setLearned(className, next);
    this.#logger.info(
      "learned the API's rate limits for a class with none configured; every worker uses them",
      {
        class: className,
        rpm: next[0] || undefined,
        itpm: next[1] || undefined,
        otpm: next[2] || undefined,
      },
    );
    try {
      await this.#redis
        .multi()
        .hset(learnedLimitsKey(this.#accountId, className), {
          rpm: next[0],
          itpm: next[1],
          otpm: next[2],
          at: new Date().toISOString(),
        })
        .pexpire(learnedLimitsKey(this.#accountId, className), LEARNED_TTL_MS)
        .exec();
    } catch (err) {
      // This process uses them anyway; the others learn from their own responses. Never throws:
      // settle runs between a paid call and the write of its answer (a full Redis refusing this
      // write must not lose that answer).
      this.#logger.warn('could not share the learned rate limits; this process uses them', {
        class: className,
        error: (err as Error).message,
      });
    }
  }

  /** With nothing learned for the class yet, looks (in the background, now and then) for another process's. */
  #lookForLearned(className: string): void {
    const configured = this.#configured.get(className);
    if (!configured || isFullyConfigured(configured) || this.#learned.has(className)) return;
    const now = this.#clock.now();
    if (now - (this.#learnedLookAt.get(className) ?? -Infinity) < LEARNED_LOOK_MS) return;
    this.#learnedLookAt.set(className, now);
    this.#readLearned(className).catch(() => undefined);
  }

  /** Reads what any process learned for the class (one HMGET). */
  async #readLearned(className: string): Promise<void> {
    const fields = await this.#redis.hmget(
      learnedLimitsKey(this.#accountId, className),
      'rpm',
      'itpm',
      'otpm',
    );
    const limits = fields.map((f) => Math.max(0, Math.floor(Number(f ?? 0)) || 0)) as Limits;
    if (limits.some((v) => v > 0) && !this.#learned.has(className)) this.#setLearned(className, limits);
  }

  #noteTrouble(err: unknown): void {
    if (this.#redisTrouble) return;
    this.#redisTrouble = true;
    this.#logger.warn('Redis is not answering the rate budget; retrying', { error: (err as Error).message });
  }

  #noteRecovered(): void {
    if (!this.#redisTrouble) return;
    this.#redisTrouble = false;
    this.#logger.info('Redis answers the rate budget again');
  }
}

type Limits = [number, number, number];

function scale(amounts: BudgetAmounts, k: number): BudgetAmounts {
  return {
    requests: amounts.requests * k,
    inputTokens: amounts.inputTokens * k,
    outputTokens: amounts.outputTokens * k,
  };
}

function ownLimits(cls: ResolvedClass): Limits {
  return [cls.rpm, cls.itpm, cls.otpm];
}

/** Every dimension configured: nothing to learn. */
function isFullyConfigured(cls: ResolvedClass): boolean {
  return cls.rpm > 0 && cls.itpm > 0 && cls.otpm > 0;
}

function overBudget(
  cls: ResolvedClass,
  estimate: RequestEstimate,
  dim: Dimension,
  capacity: number,
  reported: boolean,
): OverBudgetError {
  const need =
    dim === 'inputTokens' ? estimate.inputTokens : dim === 'outputTokens' ? estimate.outputTokens : 1;
  const what = dim === 'outputTokens' ? 'reserves' : 'needs';
  const unit = dim === 'requests' ? 'request' : dim === 'inputTokens' ? 'input tokens' : 'output tokens';
  return new OverBudgetError(
    `request for ${estimate.model} ${what} ${need} ${unit} (estimated), more than the whole ${DIMENSION_INFO[dim].limit.toUpperCase()} ` +
      `budget of class "${cls.name}" (${capacity} ${DIMENSION_INFO[dim].words}` +
      `${reported ? ', as the API reports it' : ''}): it could never be admitted`,
  );
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  const err = new Error(
    reason instanceof Error
      ? `acquire aborted: ${reason.message}`
      : 'acquire aborted while waiting for the rate budget',
  );
  err.name = 'AbortError';
  (err as Error & { cause?: unknown }).cause = reason;
  return err;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Rejects as soon as the signal aborts; a lease granted after that is given back. */
function raceAbort(
  job: Promise<BudgetLease>,
  signal: AbortSignal,
  giveBack: (lease: BudgetLease) => Promise<void>,
): Promise<BudgetLease> {
  return new Promise<BudgetLease>((resolve, reject) => {
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    job.then(
      (lease) => {
        signal.removeEventListener('abort', onAbort);
        if (settled) {
          void giveBack(lease).catch(() => {});
          return;
        }
        settled = true;
        resolve(lease);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
