/** What a request is expected to cost, before it is sent. */
export interface RequestEstimate {
  model: string;
  /** Input tokens that count against ITPM (input + cache creation), estimated high. */
  inputTokens: number;
  /** Output tokens to reserve (max_tokens, or a configured estimate). */
  outputTokens: number;
  /**
   * Fair share among this process's waiters (issue 16 item 4): its batch, whose waiting requests
   * are served in turn with other batches', each batch in arrival order. Default: one shared lane.
   */
  lane?: string | undefined;
  /** Its batch's weight (`--priority`) in those turns. Default 1. */
  weight?: number | undefined;
}

/** Amounts per limit: requests (RPM), input tokens (ITPM), output tokens (OTPM). */
export interface BudgetAmounts {
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

/** A granted admission, to be settled once the call is over. */
export interface BudgetLease {
  readonly estimate: RequestEstimate;
  /** The model class whose budget was charged. */
  readonly modelClass: string;
  /**
   * What was charged to the shared budget per limit (0 on a limit the class does not have).
   * Absent on leases of a budget that charges nothing (an unlimited class).
   */
  readonly charged?: Readonly<BudgetAmounts>;
  /** When the shared budget granted it (Redis time, ms); absent when nothing was charged. */
  readonly grantedAt?: number;
}

/** What the call did, for settling a lease. */
export interface CallReport {
  /** Real usage when the call succeeded; null when it failed (the API charges failed calls no tokens). */
  usage: { input_tokens: number; output_tokens: number; cache_creation_input_tokens?: number | null } | null;
  /** Response headers (`anthropic-ratelimit-*`, `retry-after`), empty when no response came. */
  headers: Readonly<Record<string, string>>;
  /** Set when the API answered 429 rate_limit_error: how long this class must hold off (ms). */
  rateLimitedForMs?: number | null;
}

/**
 * The account's shared rate budget. The worker's pipeline asks it before every call and settles
 * after; the implementation decides how the budget is shared across processes.
 */
export interface RateBudget {
  /** Resolves when the request may be sent; rejects with {@link OverBudgetError} if it never can. */
  acquire(estimate: RequestEstimate, signal?: AbortSignal): Promise<BudgetLease>;
  /** Corrects the charge with the real usage, and learns from the response's rate-limit headers. */
  settle(lease: BudgetLease, report: CallReport): Promise<void>;
  close(): Promise<void>;
  /** Requests of this process waiting for the budget now (for sizing the in-flight cap). */
  waiting?(): number;
}

/** A request larger than a whole bucket: it can never be admitted, so it must not wait forever. */
export class OverBudgetError extends Error {
  override name = 'OverBudgetError';
}
