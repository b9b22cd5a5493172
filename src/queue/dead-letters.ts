import { trippedStormSignatures } from '../breakers/storm.js';
import { CONDITION_TYPE } from '../errors/error-table.js';
import { failureSignature } from '../errors/failure-signature.js';
import type { Runtime } from '../runtime.js';
import type { DeadLetterEntry } from './jobs.js';

export interface DeadLetterFilter {
  /** Only this batch's entries. Default: every batch under the prefix. */
  batch?: string | undefined;
  /**
   * API error type (e.g. `billing_error`) or runner-level condition (e.g. `billing`): an entry
   * matches by either, so `--type billing_error` also takes the credit refusals the API sent as a
   * 400 invalid_request_error.
   */
  type?: string | undefined;
}

/** Whether an entry is of the type or condition an operator named. */
function matchesType(entry: DeadLetterEntry, type: string): boolean {
  if (entry.error_type === type) return true;
  const condition = entry.condition ?? null;
  return condition !== null && (condition === type || CONDITION_TYPE[condition] === type);
}

/** One `dlq list --json` row. */
export interface DeadLetterRow {
  batch_id: string;
  custom_id: string;
  status: number | null;
  error_type: string;
  /** Runner-level condition (billing, auth, spend_cap, model) or null. */
  condition: string | null;
  reason: string;
  message: string;
  attempts: number;
  /** Tries that may have paid twice (after a timeout or a cut connection). */
  maybe_billed: number;
  failed_at: string;
  request_id: string | null;
  model: string;
}

const PAGE = 500;

/** Streams dead-letter entries matching the filter, page by page. */
export async function* deadLetterEntries(
  runtime: Runtime,
  filter: DeadLetterFilter = {},
): AsyncGenerator<{ jobId: string; entry: DeadLetterEntry }> {
  // A storm is not in the entries themselves: it is the failures alike the one that tripped it.
  const storms = filter.type === 'storm' ? await trippedStormSignatures(runtime) : null;
  const matches = (entry: DeadLetterEntry): boolean =>
    filter.type === undefined ||
    (storms
      ? storms.has(failureSignature({ status: entry.status, type: entry.error_type, message: entry.message }))
      : matchesType(entry, filter.type));
  for (let start = 0; ; start += PAGE) {
    const jobs = await runtime.deadLetters.getJobs(['waiting', 'prioritized'], start, start + PAGE - 1, true);
    if (jobs.length === 0) return;
    for (const job of jobs) {
      const entry = job?.data;
      if (!entry || !job.id) continue;
      if (filter.batch !== undefined && entry.batch_id !== filter.batch) continue;
      if (!matches(entry)) continue;
      yield { jobId: job.id, entry };
    }
    if (jobs.length < PAGE) return;
  }
}

function toDeadLetterRow(entry: DeadLetterEntry): DeadLetterRow {
  return {
    batch_id: entry.batch_id,
    custom_id: entry.custom_id,
    status: entry.status,
    error_type: entry.error_type,
    condition: entry.condition ?? null,
    reason: entry.reason,
    message: entry.message,
    attempts: entry.attempts,
    maybe_billed: entry.maybe_billed ?? 0,
    failed_at: entry.failed_at,
    request_id: entry.request_id,
    model: entry.params.model,
  };
}

export async function listDeadLetters(
  runtime: Runtime,
  filter: DeadLetterFilter = {},
): Promise<DeadLetterRow[]> {
  const rows: DeadLetterRow[] = [];
  for await (const { entry } of deadLetterEntries(runtime, filter)) rows.push(toDeadLetterRow(entry));
  return rows;
}
