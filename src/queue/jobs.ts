import type { JobsOptions } from 'bullmq';
import type { MessageParams } from '../batch/types.js';
import type { Condition } from '../errors/error-table.js';

/** Name of the queue of requests to send. */
export const REQUESTS_QUEUE = 'requests';
/** Name of the dead-letter queue: requests that ended errored, kept for `dlq retry`. */
export const DEAD_LETTER_QUEUE = 'dead-letter';

/** The last failed call of a request, carried across retries into its dead-letter entry. */
export interface LastError {
  status: number | null;
  type: string;
  message: string;
  request_id: string | null;
}

/** A request job in the main queue. */
export interface RequestJobData {
  batch_id: string;
  custom_id: string;
  /** Position in the input file (0-based). */
  index: number;
  /** 0 when submitted; `dlq retry` sends generation n+1 under a new job id. */
  gen: number;
  /**
   * The batch's incarnation (absent: 0). `delete` bumps it, so a job left over from a deleted
   * batch is told apart from one of the batch submitted again under the same id.
   */
  inc?: number;
  params: MessageParams;
  /** API calls made so far (all generations' calls are not summed: a retry starts afresh). */
  calls?: number;
  /** When this generation was first sent (ms), for the retry budget's total wait. */
  first_at?: number;
  /** Retries of this generation after a failure that may have been billed (timeout, cut connection). */
  maybe_billed?: number;
  last_error?: LastError;
  /**
   * Set on jobs a resumed submit added again: such a job may already have run and been removed,
   * so its worker checks for a result before sending.
   */
  resumed?: boolean;
  /** The batch's first request of its model: the rest of the model is held until it has an outcome. */
  canary?: boolean;
  /**
   * Estimated tokens of the prefix auto-caching marked in this request (absent: none). Sent after
   * its model's canary wrote the prefix, it reads it from the cache, and cache reads do not count
   * against the input-token budget: the budget's estimate leaves them out (settled to real usage).
   */
  cached_prefix?: number;
}

/** Why a request ended in the dead-letter queue. */
export type DeadLetterReason =
  | 'terminal'
  | 'retries_exhausted'
  | 'over_budget'
  | 'stalled'
  | 'key_breaker'
  | 'model_breaker'
  /** Sent and unanswered more often than --max-maybe-billed allows: not sent again. */
  | 'maybe_billed';

/** A dead-letter entry: the original request, its last error and how it got here. */
export interface DeadLetterEntry {
  batch_id: string;
  custom_id: string;
  index: number;
  gen: number;
  /** The batch's incarnation (absent: 0), as in {@link RequestJobData.inc}. */
  inc?: number;
  params: MessageParams;
  /** Last HTTP status, null if never sent or no response came. */
  status: number | null;
  /** Last API error type, exactly as the API sent it (a credit-balance 400 stays `invalid_request_error`). */
  error_type: string;
  /**
   * What the runner made of it beyond this request (`billing`, `auth`, `spend_cap`, `model`), or
   * null for the request's own fault. Absent in entries written before conditions existed.
   */
  condition?: Condition | null;
  reason: DeadLetterReason;
  message: string;
  request_id: string | null;
  /** API calls made. */
  attempts: number;
  /** Tries of this generation that may have paid twice (after a timeout or a cut connection). */
  maybe_billed?: number;
  /** `hosted`: its error came in a hosted Message Batches result line (issue 14). Absent: live. */
  path?: 'hosted';
  /** RFC 3339. */
  failed_at: string;
  /** RFC 3339, null if never sent. */
  first_attempt_at: string | null;
}

/**
 * Job ids may not contain ':' and may not be integers; custom and batch ids never contain '.'.
 * Incarnation 0 keeps the original `batch.custom.gen` form, so a resumed submit re-adds exactly
 * the ids it added before (BullMQ ignores them); a batch submitted again after `delete` gets
 * `batch.custom.gen.inc`, which no leftover job of the deleted one can hold. The sweep of dead
 * jobs (dead-job-sweep.ts) parses this form.
 */
export function requestJobId(batchId: string, customId: string, gen: number, inc = 0): string {
  return inc === 0 ? `${batchId}.${customId}.${gen}` : `${batchId}.${customId}.${gen}.${inc}`;
}

/** Attempts BullMQ makes when our processor itself throws (Redis trouble); API retries are ours. */
const PROCESSOR_ATTEMPTS = 5;

/** A request's BullMQ job, as `Queue.addBulk` takes it. */
export interface RequestJob {
  name: string;
  data: RequestJobData;
  opts: JobsOptions;
}

/**
 * The job of a request, under its deterministic id (BullMQ ignores an id it already holds, which
 * is what makes every enqueue idempotent). `front`: to the head of the queue (a canary).
 */
export function requestJob(data: RequestJobData, front = false): RequestJob {
  return {
    // The model as the job's name: shown in Bull Board, and what a model's requests are told by.
    name: data.params.model,
    data,
    opts: {
      jobId: requestJobId(data.batch_id, data.custom_id, data.gen, data.inc ?? 0),
      attempts: PROCESSOR_ATTEMPTS,
      backoff: { type: 'exponential', delay: 1_000 },
      ...(front ? { lifo: true } : {}),
    },
  };
}
