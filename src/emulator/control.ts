/**
 * The in-process control and observation handle. The HTTP endpoints under `/_emulator/` call the same
 * methods, so both surfaces behave alike and validate alike.
 */
import type { z } from 'zod';
import { validateFaultPlan, type FaultPlan } from './fault-plan.js';
import type { HostedBatchSettings, HostedBatchStats } from './hosted-batches.js';
import { advanceBatches } from './hosted-process.js';
import { EmulatorOptionsError } from './option-error.js';
import { boolean, finite, integer, nonEmptyString, parseOption, strictObject } from './option-schema.js';
import {
  emulatorOptionsSchema,
  maxConcurrentSchema,
  validateCredits,
  validateLatency,
  validateLimits,
  type CreditsOptions,
  type LatencyOptions,
  type LimitsOption,
} from './options.js';
import type { LimitName } from './rate-limiter.js';
import type { RequestCounters, RequestLogEntry } from './request-log.js';
import type { EmulatorState } from './state.js';

export interface EmulatorStats extends RequestCounters {
  /** The seq of the latest log entry (0 when none); pass it as `sinceSeq` to read only newer entries. */
  lastSeq: number;
  /** Current credit balance, or null when credits are unlimited. */
  creditBalance: number | null;
  spendCapReached: boolean;
  /** The concurrency limit (null: none) and the requests in flight now (counted while a limit is set). */
  maxConcurrent: number | null;
  inFlight: number;
  revokedKeys: number;
  promptCacheEntries: number;
  /** Current bucket levels per model (only models that have been used and have limits). */
  buckets: Record<string, Partial<Record<LimitName, { limit: number; remaining: number }>>>;
  /** Hosted Message Batches: created and deleted (counters), held by status, requests waiting. */
  hostedBatches: HostedBatchStats;
}

/** The bodies (and query) of the control calls, declared once for the method and its HTTP route. */
const logQuerySchema = strictObject({
  /** Only entries with a greater seq. Default 0. */
  sinceSeq: finite(0).default(0),
  /** At most this many (the newest). Default: all kept. */
  limit: finite(0).default(Number.POSITIVE_INFINITY),
});
type LogQuery = z.input<typeof logQuerySchema>;
export const topUpBodySchema = strictObject({ amount: finite(0) });
export const keyBodySchema = strictObject({ key: nonEmptyString() });
export const spendCapBodySchema = strictObject({ on: boolean() });
export const maxConcurrentBodySchema = strictObject({ maxConcurrent: maxConcurrentSchema });
const o = emulatorOptionsSchema.shape;
/** The hosted batches' settings, each checked as its `batches*` option is; absent ones are kept. */
export const batchesBodySchema = strictObject({
  startDelayMs: o.batchesStartDelayMs.unwrap().optional(),
  processingMs: o.batchesProcessingMs.unwrap().optional(),
  maxRequests: o.batchesMaxRequests.unwrap().optional(),
  maxBytes: o.batchesMaxBytes.unwrap().optional(),
  /** null: no limit. */
  queueLimit: integer(1).nullable().optional(),
  expiryMs: o.batchesExpiryMs.unwrap().optional(),
  createReplyDelayMs: o.batchesCreateReplyDelayMs.unwrap().optional(),
  /** null: no pause. */
  resultsPauseAfterLines: integer(0).nullable().optional(),
  resultsPauseMs: o.batchesResultsPauseMs.unwrap().optional(),
});
type BatchesSettingsChange = z.input<typeof batchesBodySchema>;

export interface EmulatorControl {
  stats(): EmulatorStats;
  /** Copies of the log entries, oldest first. */
  log(query?: LogQuery): RequestLogEntry[];
  /**
   * Clears counters (hosted batches created/deleted included), log, buckets (refilled), attempt counts
   * and the prompt cache. Keeps keys, credits, spend cap, faults, limits and the hosted batches.
   */
  reset(): void;
  faults(): FaultPlan;
  /** Replaces the fault plan (its script starts from its first step). Throws EmulatorOptionsError. */
  setFaults(plan: FaultPlan): void;
  /** Replaces the latency settings. Throws EmulatorOptionsError. */
  setLatency(latency: LatencyOptions): void;
  /** Replaces the rate limits (null or undefined: none); every bucket starts full. Throws EmulatorOptionsError. */
  setLimits(limits: LimitsOption | null | undefined): void;
  /** Replaces the credit settings (null: unlimited). Throws EmulatorOptionsError. */
  setCredits(credits: CreditsOptions | null): void;
  /** Adds credits and returns the new balance; throws when credits are unlimited (nothing to top up). */
  topUp(amount: number): number;
  /** Every later request with this key gets 401 authentication_error. */
  revokeKey(key: string): void;
  /** Undoes revokeKey. */
  restoreKey(key: string): void;
  /** On: every /v1/messages request gets 429 enforced_spend_limit_reached, without retry-after. */
  setSpendCap(on: boolean): void;
  /** Sets the concurrency limit (null: none); requests already in flight are not affected. */
  setMaxConcurrent(n: number | null): void;
  /**
   * Changes the hosted batches' settings (the `batches*` options without the prefix); fields left out
   * keep their value. Timing applies to batches created afterwards, limits, the create's reply delay
   * and the results pause to the next create or download.
   * Returns the settings now in force. Throws EmulatorOptionsError.
   */
  setBatches(change: BatchesSettingsChange): HostedBatchSettings;
}

export function createControl(state: EmulatorState): EmulatorControl {
  return {
    stats: () => {
      // Hosted batches advance when observed (hosted-batches.ts): bring them up to the clock first.
      advanceBatches(state);
      return {
        ...state.log.counters(),
        lastSeq: state.log.lastSeq,
        creditBalance: state.credits?.balance ?? null,
        spendCapReached: state.spendCapReached,
        maxConcurrent: state.maxConcurrent,
        inFlight: state.inFlight,
        revokedKeys: state.revokedKeyCount,
        promptCacheEntries: state.cache.size,
        buckets: state.limiter.snapshot(),
        hostedBatches: state.batches.stats(),
      };
    },
    log: (query = {}) => {
      const q = parseOption(logQuerySchema, query, 'log');
      advanceBatches(state);
      return state.log.entries(q.sinceSeq, q.limit);
    },
    reset: () => state.reset(),
    faults: () => state.faults.plan(),
    setFaults: (plan) => state.faults.setPlan(validateFaultPlan(plan, 'faults')),
    setLatency: (latency) => {
      state.latency = validateLatency(latency, 'latency');
    },
    setLimits: (limits) => state.limiter.setLimits(validateLimits(limits, 'limits')),
    setCredits: (credits) => state.setCredits(credits === null ? null : validateCredits(credits, 'credits')),
    topUp: (amount) => {
      parseOption(finite(0), amount, 'amount');
      if (state.credits === null) {
        throw new EmulatorOptionsError('credits', null, 'credits configured (setCredits) before a top-up');
      }
      return state.credits.topUp(amount);
    },
    revokeKey: (key) => state.revokeKey(parseOption(nonEmptyString(), key, 'key', true)),
    restoreKey: (key) => state.restoreKey(parseOption(nonEmptyString(), key, 'key', true)),
    setMaxConcurrent: (n) => {
      state.maxConcurrent = parseOption(maxConcurrentSchema, n, 'maxConcurrent');
    },
    setBatches: (change) => {
      const c = parseOption(batchesBodySchema, change, 'batches');
      const next = { ...state.batches.settings };
      for (const [k, v] of Object.entries(c) as Array<[keyof HostedBatchSettings, number | null]>) {
        if (v !== undefined) (next as Record<string, number | null>)[k] = v;
      }
      state.batches.settings = next;
      return { ...next };
    },
    setSpendCap: (on) => {
      state.spendCapReached = parseOption(boolean(), on, 'on');
    },
  };
}
