import type { Runtime } from '../runtime.js';
import type { DeadLetterEntry } from './jobs.js';

export interface DeadLetterFilter {
  /** Only this batch's entries. Default: every batch under the prefix. */
  batch?: string;
  /** API error type, e.g. `billing_error`. */
  type?: string;
}

/** One `dlq list --json` row. */
export interface DeadLetterRow {
  batch_id: string;
  custom_id: string;
  status: number | null;
  error_type: string;
  reason: string;
  message: string;
  attempts: number;
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
  for (let start = 0; ; start += PAGE) {
    const jobs = await runtime.deadLetters.getJobs(['waiting', 'prioritized'], start, start + PAGE - 1, true);
    if (jobs.length === 0) return;
    for (const job of jobs) {
      const entry = job?.data;
      if (!entry || !job.id) continue;
      if (filter.batch !== undefined && entry.batch_id !== filter.batch) continue;
      if (filter.type !== undefined && entry.error_type !== filter.type) continue;
      yield { jobId: job.id, entry };
    }
    if (jobs.length < PAGE) return;
  }
}

export function toDeadLetterRow(entry: DeadLetterEntry): DeadLetterRow {
  return {
    batch_id: entry.batch_id,
    custom_id: entry.custom_id,
    status: entry.status,
    error_type: entry.error_type,
    reason: entry.reason,
    message: entry.message,
    attempts: entry.attempts,
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
