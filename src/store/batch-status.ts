import { getBreakerState, type KeyBreakerState } from '../breakers/breaker-state.js';
import type { Runtime } from '../runtime.js';
import type { BatchRecord, UsageTotals } from './batch-record.js';

/** Where a batch stands, in the Message Batches API's terms plus the runner's own. */
export type ProcessingStatus = 'in_progress' | 'paused' | 'canceling' | 'ended';

/** What `status --json` prints for a batch. */
export interface BatchStatus {
  id: string;
  processing_status: ProcessingStatus;
  request_counts: {
    processing: number;
    succeeded: number;
    errored: number;
    canceled: number;
    expired: number;
  };
  errored_by_type: Record<string, number>;
  /**
   * Errored requests by runner-level condition: `billing` counts credit refusals whatever type the
   * API sent them as (a 400 invalid_request_error "credit balance is too low" among them).
   */
  errored_by_condition: Record<string, number>;
  usage: UsageTotals;
  /** Replies cut off at max_tokens (`stop_reason: max_tokens`). */
  truncated: number;
  /** Replies with `stop_reason: refusal`. */
  refused: number;
  total: number;
  /** `submitting` while a submit is (or was, before it died) still enqueuing; rerun it to resume. */
  submit_state: 'submitting' | 'submitted';
  source: string;
  created_at: string;
  ended_at: string | null;
  models: Record<string, number>;
  /** Why the queue is paused (a key-wide breaker or `pause`), while it is. */
  paused: KeyBreakerState | null;
  /** Canary state per model: `pending` (the rest held until it has an outcome) or `released`. */
  canary: Record<string, string>;
  canceled_at: string | null;
  /** Requests sent again after a timeout or cut connection: each may have been billed twice. */
  maybe_billed: number;
}

export function toBatchStatus(record: BatchRecord, paused: KeyBreakerState | null): BatchStatus {
  const ended = record.submit_state === 'submitted' && record.counts.processing <= 0;
  const processingStatus: ProcessingStatus = ended
    ? 'ended'
    : record.canceled_at
      ? 'canceling'
      : paused
        ? 'paused'
        : 'in_progress';
  return {
    id: record.id,
    processing_status: processingStatus,
    request_counts: { ...record.counts, expired: 0 },
    errored_by_type: record.errored_by_type,
    errored_by_condition: record.errored_by_condition,
    usage: record.usage,
    truncated: record.truncated,
    refused: record.refused,
    total: record.total,
    submit_state: record.submit_state,
    source: record.source,
    created_at: record.created_at,
    ended_at: ended ? record.ended_at : null,
    models: record.models,
    paused: ended ? null : paused,
    canary: record.canary,
    canceled_at: record.canceled_at,
    maybe_billed: record.maybe_billed,
  };
}

/** Why the queue is paused, or null while it runs. */
async function pauseState(runtime: Runtime): Promise<KeyBreakerState | null> {
  const [paused, breakers] = await Promise.all([runtime.requests.isPaused(), getBreakerState(runtime)]);
  if (!paused) return null;
  return (
    breakers.key ?? {
      reason: 'manual',
      type: 'manual',
      error_code: null,
      condition: null,
      message: 'the queue is paused',
      request_id: null,
      since: '',
      fix: 'run `claude-batch resume`',
    }
  );
}

/** The status of one batch (O(1): a few commands, whatever its size), or null if unknown. */
export async function getBatchStatus(runtime: Runtime, batchId: string): Promise<BatchStatus | null> {
  const [record, paused] = await Promise.all([runtime.store.get(batchId), pauseState(runtime)]);
  return record ? toBatchStatus(record, paused) : null;
}

/** Every batch under the prefix, oldest first. */
export async function listBatchStatuses(runtime: Runtime): Promise<BatchStatus[]> {
  const [ids, paused] = await Promise.all([runtime.store.list(), pauseState(runtime)]);
  const records = await Promise.all(ids.map((id) => runtime.store.get(id)));
  return records.filter((r): r is BatchRecord => r !== null).map((r) => toBatchStatus(r, paused));
}
