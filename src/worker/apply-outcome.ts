import { setTimeout as delay } from 'node:timers/promises';
import { DelayedError, type Job } from 'bullmq';
import { isTransientRedisError } from '../redis/transient-error.js';
import type { Alerter } from '../breakers/alert.js';
import type { Condition } from '../errors/error-table.js';
import { countModelFailure, tripKeyBreaker } from '../breakers/breakers.js';
import { countStormFailure, type StormOptions } from '../breakers/storm.js';
import { canaryField, releaseCanary, releaseHeld } from '../queue/canary.js';
import {
  requestJobId,
  type DeadLetterEntry,
  type DeadLetterReason,
  type LastError,
  type RequestJobData,
} from '../queue/jobs.js';
import type { Runtime } from '../runtime.js';
import type { FinalizeStatus } from '../store/batch-store.js';
import { canceledLine, erroredLine, succeededLine } from '../store/result-line.js';
import type { Outcome } from './outcome.js';
import type { RequestGates } from './request-gates.js';

export interface ApplyDeps {
  runtime: Runtime;
  alert: Alerter;
  gates: RequestGates;
  /** Consecutive model-wide failures that open a model's breaker. */
  modelBreakerThreshold: number;
  /** The failure-storm breaker of the worker's API key. */
  storm: StormOptions;
  /**
   * How long a result write that Redis refuses for a while (an outage, out of memory) is retried
   * before the job fails (ms). Kept within the job lock: past it, another worker may take the job
   * and send it again, which is what this window exists to prevent.
   */
  writeRetryMs: number;
}

/**
 * Runs a write of an outcome, retrying errors Redis gets over: the answer of a paid call is kept
 * in memory meanwhile and the request is never sent again because of our own write failure (as
 * long as the outage is shorter than `windowMs`; then the job fails like any processor error).
 */
async function persist<T>(
  runtime: Runtime,
  write: () => Promise<T>,
  windowMs: number,
  context: Record<string, unknown>,
): Promise<T> {
  const deadline = Date.now() + windowMs;
  for (let failures = 0; ; failures++) {
    try {
      const result = await write();
      if (failures > 0)
        runtime.logger.info('outcome recorded after Redis recovered', { ...context, failures });
      return result;
    } catch (err) {
      if (!isTransientRedisError(err) || Date.now() >= deadline) throw err;
      if (failures === 0) {
        runtime.logger.warn('could not record an outcome; retrying it without sending the request again', {
          ...context,
          error: (err as Error).message,
        });
      }
      await delay(Math.min(100 * 2 ** failures, 2_000, Math.max(deadline - Date.now(), 0)));
    }
  }
}

/** The attempt's bookkeeping, carried into the job data on a retry. */
export interface AttemptState {
  calls: number;
  firstAt: number | null;
  /** ms this attempt waited for the rate budget. */
  budgetWaitMs?: number;
}

/**
 * The one place an outcome changes state. Order matters for crash safety:
 * - succeeded / canceled: one script writes the result line, counts and usage together;
 * - dead-letter: the entry is added first (idempotent by job id), then the result and counts; a
 *   worker that dies in between leaves the entry, which the redelivered job finds and finishes
 *   from, without sending again;
 * - trip-breaker: as dead-letter, then the breaker (idempotent: pausing twice, counting a failure
 *   the redelivered job never repeats since it finishes from its entry);
 * - retry: the job is delayed in BullMQ, which keeps its attempts (DelayedError).
 * A canary's outcome, whatever it is, then releases the rest of its model's requests.
 */
export async function applyOutcome(
  deps: ApplyDeps,
  job: Job<RequestJobData>,
  token: string | undefined,
  outcome: Outcome,
  attempt: AttemptState,
): Promise<void> {
  const { runtime } = deps;
  const data = job.data;
  switch (outcome.kind) {
    case 'succeeded': {
      const { call } = outcome;
      await finalizeLogged(deps, data, 'succeeded', () =>
        runtime.store.finalize(data.batch_id, data.custom_id, data.gen, {
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
          path: 'live',
          model: data.params.model,
          budgetWaitMs: attempt.budgetWaitMs,
          accountId: deps.storm.accountId,
          incarnation: data.inc ?? 0,
        }),
      );
      break;
    }
    case 'canceled': {
      await finalizeLogged(deps, data, 'canceled', () =>
        runtime.store.finalize(data.batch_id, data.custom_id, data.gen, {
          kind: 'canceled',
          line: canceledLine(data.custom_id),
          incarnation: data.inc ?? 0,
        }),
      );
      break;
    }
    case 'retry': {
      await releaseIfCanary(deps, data);
      await runtime.store.countRetry(outcome.lastError.type, {
        budgetWaitMs: attempt.budgetWaitMs,
        maybeBilledIn: outcome.maybeBilled ? data.batch_id : undefined,
      });
      await job.updateData({
        ...data,
        calls: attempt.calls,
        first_at: attempt.firstAt ?? Date.now(),
        last_error: outcome.lastError,
        ...(outcome.maybeBilled ? { maybe_billed: (data.maybe_billed ?? 0) + 1 } : {}),
      });
      await job.moveToDelayed(Date.now() + outcome.delayMs, token);
      throw new DelayedError();
    }
    case 'dead-letter': {
      // A request's own fault, unless the same one keeps coming for distinct requests of the key.
      // Counted first: a storm is stopped before the entry's writes, not after them.
      const stormTripped =
        outcome.reason === 'terminal' &&
        (await countStormFailure(runtime, deps.storm, outcome.lastError, deps.alert, () =>
          deps.gates.noteKeyBreaker(),
        ));
      await deadLetter(
        deps,
        deadLetterEntry(
          data,
          outcome.reason,
          outcome.lastError,
          attempt,
          outcome.message,
          outcome.condition ?? null,
        ),
      );
      if (stormTripped) deps.gates.confirmKeyBreaker();
      break;
    }
    case 'trip-breaker': {
      if (outcome.scope === 'key') deps.gates.noteKeyBreaker();
      await deadLetter(
        deps,
        deadLetterEntry(data, 'terminal', outcome.lastError, attempt, undefined, outcome.rule.condition),
      );
      if (outcome.scope === 'key') {
        await tripKeyBreaker(
          runtime,
          { ...outcome.lastError, errorCode: outcome.errorCode },
          outcome.rule,
          deps.alert,
          deps.storm.accountId,
        );
        deps.gates.confirmKeyBreaker();
      } else {
        // A canary speaks for its whole model at once; elsewhere one failure may be a fluke.
        const threshold = data.canary ? 1 : deps.modelBreakerThreshold;
        const opened = await countModelFailure(
          runtime,
          data.params.model,
          outcome.lastError,
          outcome.rule,
          threshold,
          deps.alert,
        );
        if (opened) deps.gates.noteModelBreaker(opened);
      }
      break;
    }
  }
  await releaseIfCanary(deps, data);
}

/** Adds the dead-letter entry, then writes the errored results line. */
export async function deadLetter(deps: Pick<ApplyDeps, 'runtime'>, entry: DeadLetterEntry): Promise<void> {
  const { runtime } = deps;
  await runtime.deadLetters.add(entry.params.model, entry, {
    jobId: requestJobId(entry.batch_id, entry.custom_id, entry.gen, entry.inc ?? 0),
  });
  if ((await finalizeDeadLetter(deps, entry)) === 'batch-deleted') {
    // Its batch was deleted while it was in flight: the entry must not outlive it. Rare (at most
    // the requests in flight at the delete), so the removal's scan of the list is affordable.
    await runtime.deadLetters.remove(
      requestJobId(entry.batch_id, entry.custom_id, entry.gen, entry.inc ?? 0),
    );
    return;
  }
  runtime.logger.warn('request dead-lettered', {
    batch_id: entry.batch_id,
    custom_id: entry.custom_id,
    reason: entry.reason,
    error_type: entry.error_type,
    condition: entry.condition ?? null,
    status: entry.status,
    request_id: entry.request_id,
  });
}

/** Releases the rest of a canary's model, once: a later look finds it released and does nothing. */
export async function releaseIfCanary(deps: Pick<ApplyDeps, 'runtime'>, data: RequestJobData): Promise<void> {
  if (!data.canary) return;
  const { runtime } = deps;
  const state = await runtime.redis.hget(runtime.keys.batch(data.batch_id), canaryField(data.params.model));
  if (state === 'released') {
    // Released by a run that died midway (this job is being redelivered): finish that release.
    const left = await runtime.redis.hlen(runtime.keys.held(data.batch_id, canaryField(data.params.model)));
    if (left > 0) await releaseHeld(runtime, data.batch_id, data.params.model);
    return;
  }
  if (state !== 'pending') return;
  const released = await releaseCanary(runtime, data.batch_id, data.params.model);
  runtime.logger.info('canary proved its model: released the rest', {
    batch_id: data.batch_id,
    model: data.params.model,
    released,
  });
}

/** Writes the errored results line of a dead-letter entry (also used when recovering one). */
export async function finalizeDeadLetter(
  deps: Pick<ApplyDeps, 'runtime'>,
  entry: DeadLetterEntry,
): Promise<FinalizeStatus> {
  return finalizeLogged(deps, entry, 'errored', () =>
    deps.runtime.store.finalize(entry.batch_id, entry.custom_id, entry.gen, {
      kind: 'errored',
      line: erroredLine(entry.custom_id, entry.error_type, entry.message, entry.request_id),
      errorType: entry.error_type,
      condition: entry.condition ?? null,
      called: entry.status !== null || entry.request_id !== null,
      path: entry.path ?? (entry.status !== null || entry.request_id !== null ? 'live' : undefined),
      incarnation: entry.inc ?? 0,
    }),
  );
}

export function deadLetterEntry(
  data: RequestJobData,
  reason: DeadLetterReason,
  lastError: LastError,
  attempt: AttemptState,
  message?: string,
  condition: Condition | null = null,
): DeadLetterEntry {
  return {
    batch_id: data.batch_id,
    custom_id: data.custom_id,
    index: data.index,
    gen: data.gen,
    ...(data.inc ? { inc: data.inc } : {}),
    params: data.params,
    status: lastError.status,
    error_type: lastError.type,
    condition,
    reason,
    message: message ?? lastError.message,
    request_id: lastError.request_id,
    attempts: attempt.calls,
    ...(data.maybe_billed ? { maybe_billed: data.maybe_billed } : {}),
    failed_at: new Date().toISOString(),
    first_attempt_at: attempt.firstAt === null ? null : new Date(attempt.firstAt).toISOString(),
  };
}

async function finalizeLogged(
  deps: Pick<ApplyDeps, 'runtime'> & Partial<Pick<ApplyDeps, 'writeRetryMs'>>,
  ids: { batch_id: string; custom_id: string },
  kind: string,
  write: () => Promise<FinalizeStatus>,
): Promise<FinalizeStatus> {
  const status = await persist(deps.runtime, write, deps.writeRetryMs ?? 0, { ...ids, kind });
  if (status === 'batch-deleted') {
    deps.runtime.logger.warn('result dropped: the batch was deleted while the request was in flight', {
      batch_id: ids.batch_id,
      custom_id: ids.custom_id,
      kind,
    });
  }
  return status;
}
