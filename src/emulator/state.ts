/**
 * Everything one emulator instance knows, shared by the API handler and the control surface.
 * Handlers run to completion on one thread, so a check followed by a charge needs no locking.
 */
import type { BillingErrorStatus } from './api-error.js';
import { AttemptCounter } from './attempts.js';
import { CacheMinimums } from './cache-minimums.js';
import { CreditLedger } from './credits.js';
import { FaultInjector } from './fault-plan.js';
import { HostedBatches, hostedSettings } from './hosted-batches.js';
import { IdSource } from './ids.js';
import { ModelCatalog } from './models.js';
import type { ResolvedCredits, ResolvedLatency, ResolvedOptions } from './options.js';
import { PromptCache } from './prompt-cache.js';
import { RateLimiter } from './rate-limiter.js';
import { ReplyGenerator } from './replies.js';
import { RequestLog } from './request-log.js';

export class EmulatorState {
  readonly clock: () => number;
  readonly seed: number;
  readonly requireVersion: boolean;
  readonly billingErrorStatus: BillingErrorStatus;
  readonly maxBodyBytes: number;
  readonly maxOutputTokens: number;
  /** null: any non-empty key is accepted. */
  readonly #keys: ReadonlySet<string> | null;
  readonly #revoked = new Set<string>();
  readonly #forbidden: ResolvedOptions['forbiddenModels'];
  spendCapReached: boolean;
  /** null: no concurrency limit. */
  maxConcurrent: number | null;
  /** `/v1/messages` requests admitted and not yet answered in full. */
  inFlight = 0;
  credits: CreditLedger | null;
  latency: ResolvedLatency;
  readonly limiter: RateLimiter;
  readonly faults: FaultInjector;
  readonly cache: PromptCache;
  readonly cacheMinimums: CacheMinimums;
  readonly attempts = new AttemptCounter();
  readonly log: RequestLog;
  readonly models: ModelCatalog;
  readonly replies: ReplyGenerator;
  readonly ids = new IdSource();
  readonly batches: HostedBatches;
  /** Replies waiting out their latency, so close() can cancel them. */
  readonly timers = new Set<NodeJS.Timeout>();

  constructor(o: ResolvedOptions) {
    this.clock = o.clock;
    this.seed = o.seed;
    this.requireVersion = o.anthropicVersionRequired;
    this.billingErrorStatus = o.billingErrorStatus;
    this.maxBodyBytes = o.maxBodyBytes;
    this.maxOutputTokens = o.maxOutputTokens;
    this.#keys = o.apiKeys.length === 0 ? null : new Set(o.apiKeys);
    this.#forbidden = o.forbiddenModels;
    this.spendCapReached = o.spendCapReached;
    this.maxConcurrent = o.maxConcurrent;
    this.credits = o.credits === null ? null : new CreditLedger(o.credits);
    this.latency = o.latency;
    this.limiter = new RateLimiter(o.limits, o.clock);
    this.faults = new FaultInjector(o.faults, o.seed);
    this.cache = new PromptCache(o.clock);
    this.cacheMinimums = new CacheMinimums(o.minCacheableTokens);
    this.log = new RequestLog(o.requestLogSize);
    this.models = new ModelCatalog(o.models);
    this.replies = new ReplyGenerator(o.seed);
    this.batches = new HostedBatches(hostedSettings(o));
  }

  keyAccepted(key: string): boolean {
    return !this.#revoked.has(key) && (this.#keys === null || this.#keys.has(key));
  }

  revokeKey(key: string): void {
    this.#revoked.add(key);
  }

  restoreKey(key: string): void {
    this.#revoked.delete(key);
  }

  get revokedKeyCount(): number {
    return this.#revoked.size;
  }

  modelForbidden(key: string, model: string): boolean {
    if (this.#forbidden.everyKey.has(model)) return true;
    return this.#forbidden.byKey.get(key)?.has(model) ?? false;
  }

  setCredits(credits: ResolvedCredits | null): void {
    this.credits = credits === null ? null : new CreditLedger(credits);
  }

  /** Runs `fn` after `ms`, or at once when there is no delay (the common, fast case). */
  later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  /**
   * Counters, log, buckets, attempt counts and caches; not keys, credits, faults, limits or the hosted
   * batches themselves (only their created/deleted counters).
   */
  reset(): void {
    this.batches.resetCounters();
    this.log.clear();
    this.limiter.reset();
    this.attempts.clear();
    this.cache.clear();
  }
}
