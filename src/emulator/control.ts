/**
 * The in-process control and observation handle. The HTTP endpoints under `/_emulator/` call the same
 * methods, so both surfaces behave alike and validate alike.
 */
import { validateFaultPlan, type FaultPlan } from './fault-plan.js';
import { EmulatorOptionsError, checkBoolean, checkNumber, checkString } from './option-error.js';
import {
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
  revokedKeys: number;
  promptCacheEntries: number;
  /** Current bucket levels per model (only models that have been used and have limits). */
  buckets: Record<string, Partial<Record<LimitName, { limit: number; remaining: number }>>>;
}

export interface LogQuery {
  /** Only entries with a greater seq. Default 0. */
  sinceSeq?: number;
  /** At most this many (the newest). Default: all kept. */
  limit?: number;
}

export interface EmulatorControl {
  stats(): EmulatorStats;
  /** Copies of the log entries, oldest first. */
  log(query?: LogQuery): RequestLogEntry[];
  /** Clears counters, log, buckets (refilled), attempt counts and the prompt cache. Keeps keys, credits, spend cap, faults, limits. */
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
}

export function createControl(state: EmulatorState): EmulatorControl {
  return {
    stats: () => ({
      ...state.log.counters(),
      lastSeq: state.log.lastSeq,
      creditBalance: state.credits?.balance ?? null,
      spendCapReached: state.spendCapReached,
      revokedKeys: state.revokedKeyCount,
      promptCacheEntries: state.cache.size,
      buckets: state.limiter.snapshot(),
    }),
    log: (query = {}) =>
      state.log.entries(
        query.sinceSeq === undefined ? 0 : checkNumber(query.sinceSeq, 'log.sinceSeq', 0),
        query.limit === undefined ? Number.POSITIVE_INFINITY : checkNumber(query.limit, 'log.limit', 0),
      ),
    reset: () => state.reset(),
    faults: () => state.faults.plan(),
    setFaults: (plan) => state.faults.setPlan(validateFaultPlan(plan, 'faults')),
    setLatency: (latency) => {
      state.latency = validateLatency(latency, 'latency');
    },
    setLimits: (limits) => state.limiter.setLimits(validateLimits(limits, 'limits')),
    setCredits: (credits) => state.setCredits(credits === null ? null : validateCredits(credits, 'credits')),
    topUp: (amount) => {
      checkNumber(amount, 'amount', 0);
      if (state.credits === null) {
        throw new EmulatorOptionsError('credits', null, 'credits configured (setCredits) before a top-up');
      }
      return state.credits.topUp(amount);
    },
    revokeKey: (key) => state.revokeKey(checkString(key, 'key')),
    restoreKey: (key) => state.restoreKey(checkString(key, 'key')),
    setSpendCap: (on) => {
      state.spendCapReached = checkBoolean(on, 'on');
    },
  };
}
