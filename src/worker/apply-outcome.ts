import { DelayedError, type Job, type Queue } from 'bullmq';
import type { Logger } from '../logger.js';
import {
  requestJobId,
  type DeadLetterEntry,
  type DeadLetterReason,
  type LastError,
  type RequestJobData,
} from '../queue/jobs.js';
import type { BatchStore, FinalizeStatus } from '../store/batch-store.js';
import { erroredLine, succeededLine } from '../store/result-line.js';
import type { Outcome } from './outcome.js';

export interface ApplyDeps {
  store: BatchStore;
  deadLetters: Queue<DeadLetterEntry>;
  logger: Logger;
}

/** The attempt's bookkeeping, carried into the job data on a retry. */
export interface AttemptState {
  calls: number;
  firstAt: number | null;
}

/**
 * The one place an outcome changes state. Order matters for crash safety:
 * - succeeded: one script writes the result line, counts and usage together;
 * - dead-letter: the entry is added first (idempotent by job id), then the result and counts; a
 *   worker that dies in between leaves the entry, which the redelivered job finds and finishes
 *   from, without sending again;
 * - retry: the job is delayed in BullMQ, which keeps its attempts (DelayedError).
 */
export async function applyOutcome(
  deps: ApplyDeps,
  job: Job<RequestJobData>,
  token: string | undefined,
  outcome: Outcome,
  attempt: AttemptState,
): Promise<void> {
  const data = job.data;
  switch (outcome.kind) {
    case 'succeeded': {
      const { call } = outcome;
      await finalizeLogged(deps, data, 'succeeded', () =>
        deps.store.finalize(data.batch_id, data.custom_id, data.gen, {
          kind: 'succeeded',
          line: succeededLine(data.custom_id, call.messageJson),
          usage: {
            input_tokens: call.usage.input_tokens,
            output_tokens: call.usage.output_tokens,
            cache_creation_input_tokens: call.usage.cache_creation_input_tokens ?? 0,
            cache_read_input_tokens: call.usage.cache_read_input_tokens ?? 0,
          },
          truncated: call.stopReason === 'max_tokens',
          refused: call.stopReason === 'refusal',
          called: true,
        }),
      );
      return;
    }
    case 'retry': {
      await deps.store.countRetry(outcome.lastError.type);
      await job.updateData({
        ...data,
        calls: attempt.calls,
        first_at: attempt.firstAt ?? Date.now(),
        last_error: outcome.lastError,
      });
      await job.moveToDelayed(Date.now() + outcome.delayMs, token);
      throw new DelayedError();
    }
    case 'dead-letter': {
      const entry = deadLetterEntry(data, outcome.reason, outcome.lastError, attempt, outcome.message);
      await deps.deadLetters.add(`${data.batch_id}.${data.custom_id}`, entry, {
        jobId: requestJobId(data.batch_id, data.custom_id, data.gen),
      });
      await finalizeDeadLetter(deps, entry);
      deps.logger.warn('request dead-lettered', {
        batch_id: data.batch_id,
        custom_id: data.custom_id,
        reason: entry.reason,
        error_type: entry.error_type,
        status: entry.status,
        request_id: entry.request_id,
      });
      return;
    }
  }
}

/** Writes the errored results line of a dead-letter entry (also used when recovering one). */
export async function finalizeDeadLetter(deps: ApplyDeps, entry: DeadLetterEntry): Promise<void> {
  await finalizeLogged(deps, entry, 'errored', () =>
    deps.store.finalize(entry.batch_id, entry.custom_id, entry.gen, {
      kind: 'errored',
      line: erroredLine(entry.custom_id, entry.error_type, entry.message, entry.request_id),
      errorType: entry.error_type,
      called: entry.attempts > 0 && entry.reason !== 'stalled',
    }),
  );
}

export function deadLetterEntry(
  data: RequestJobData,
  reason: DeadLetterReason,
  lastError: LastError,
  attempt: AttemptState,
  message?: string,
): DeadLetterEntry {
  return {
    batch_id: data.batch_id,
    custom_id: data.custom_id,
    index: data.index,
    gen: data.gen,
    params: data.params,
    status: lastError.status,
    error_type: lastError.type,
    reason,
    message: message ?? lastError.message,
    request_id: lastError.request_id,
    attempts: attempt.calls,
    failed_at: new Date().toISOString(),
    first_attempt_at: attempt.firstAt === null ? null : new Date(attempt.firstAt).toISOString(),
  };
}

async function finalizeLogged(
  deps: ApplyDeps,
  ids: { batch_id: string; custom_id: string },
  kind: string,
  write: () => Promise<FinalizeStatus>,
): Promise<void> {
  const status = await write();
  if (status === 'batch-deleted') {
    deps.logger.warn('result dropped: the batch was deleted while the request was in flight', {
      batch_id: ids.batch_id,
      custom_id: ids.custom_id,
      kind,
    });
  }
}
