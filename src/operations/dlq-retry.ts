import { closeModelBreakers, resumeQueue } from '../breakers/breakers.js';
import { getBreakerState, type KeyBreakerState } from '../breakers/breaker-state.js';
import { CONDITION_TYPE } from '../errors/error-table.js';
import type { Runtime } from '../runtime.js';
import { deadLetterEntries, type DeadLetterFilter } from '../queue/dead-letters.js';
import { Holds, SHARE_REASON } from '../queue/holds.js';
import { requestJob, requestJobId, type RequestJobData } from '../queue/jobs.js';

export interface DeadLetterRetryOptions extends DeadLetterFilter {
  /** Only this custom_id. */
  customId?: string | undefined;
  /** Send with this model id instead (a mistyped or retired one fixed). */
  model?: string | undefined;
  /**
   * The path they are sent on (issue 14): `live` (default: an operator's retry goes first, one by
   * one) or `batches` (held for their batch's share, which then goes to the hosted Message Batches
   * API at half price, results when the hosted batch ends).
   */
  via?: 'live' | 'batches' | undefined;
}

export interface DeadLetterRetryResult {
  /** Requests sent back to the main queue. */
  requeued: number;
  /** Entries removed without requeueing: superseded or of a deleted batch. */
  dropped: number;
  /** Whether the queue, paused by the key-wide breaker, was resumed. */
  resumed: boolean;
  /** Model breakers closed. */
  reopenedModels: string[];
}

/**
 * Sends dead-lettered requests again, with a fresh retry budget and no canary: re-opens each
 * request (results line removed, counts moved from errored back to processing, generation
 * bumped, in one script), enqueues the new generation (an id of its own, so BullMQ cannot
 * swallow it), then removes the entry. Each step is idempotent, so a run that dies midway is
 * finished by running it again, and running it twice requeues nothing twice.
 * The breakers of the models involved are closed before anything is requeued; a queue the
 * key-wide breaker paused is resumed at the end.
 */
export async function retryDeadLetters(
  runtime: Runtime,
  options: DeadLetterRetryOptions = {},
): Promise<DeadLetterRetryResult> {
  let requeued = 0;
  let dropped = 0;
  const selected = (entry: { custom_id: string }) =>
    options.customId === undefined || entry.custom_id === options.customId;
  // Breakers close first (bumping the send-time epoch), then the requests go: a worker that takes
  // one re-reads its gates at once and sends it, instead of dead-lettering it unsent against a
  // breaker state it cached a moment before. A first pass finds the models involved.
  const models = new Set<string>();
  for await (const { entry } of deadLetterEntries(runtime, options)) {
    if (selected(entry)) models.add(entry.params.model);
  }
  // The model they are sent to instead: naming it is the operator's word that it works now.
  if (options.model !== undefined && models.size > 0) models.add(options.model);
  await closeModelBreakers(runtime, [...models]);
  const taken: string[] = [];
  const holds = new Holds(runtime);
  /** Batches put on the hosted route by this retry (`via: 'batches'`). */
  const hosted = new Set<string>();
  for await (const { jobId, entry } of deadLetterEntries(runtime, options)) {
    if (!selected(entry)) continue;
    taken.push(jobId);
    if (!models.has(entry.params.model)) {
      // Dead-lettered after the first pass by a breaker still open then: close it too.
      models.add(entry.params.model);
      await closeModelBreakers(runtime, [entry.params.model]);
    }
    const inc = entry.inc ?? 0;
    const outcome = await runtime.store.reopen(
      entry.batch_id,
      entry.custom_id,
      entry.gen,
      entry.error_type,
      entry.condition ?? null,
      inc,
    );
    if (outcome !== 'reopened') {
      dropped += 1;
      continue;
    }
    const gen = entry.gen + 1;
    const params = options.model ? { ...entry.params, model: options.model } : entry.params;
    const data: RequestJobData = {
      batch_id: entry.batch_id,
      custom_id: entry.custom_id,
      index: entry.index,
      gen,
      ...(inc !== 0 ? { inc } : {}),
      params,
    };
    if (options.via === 'batches') {
      if (!hosted.has(entry.batch_id)) {
        hosted.add(entry.batch_id);
        await sendHosted(runtime, entry.batch_id);
      }
      await holds.hold(entry.batch_id, SHARE_REASON, [
        [requestJobId(entry.batch_id, entry.custom_id, gen, inc), JSON.stringify(data)],
      ]);
    } else {
      const job = requestJob(data);
      await runtime.requests.add(job.name, job.data, job.opts);
    }
    requeued += 1;
  }
  // Entries go last: until here, a rerun finds them and finishes the job.
  for (let i = 0; i < taken.length; i += 500) {
    await Promise.all(taken.slice(i, i + 500).map((id) => runtime.deadLetters.remove(id)));
  }
  const { key } = await getBreakerState(runtime);
  const resumed =
    key?.reason === 'key_breaker' && (requeued > 0 || targetsBreaker(options, key))
      ? await resumeQueue(runtime)
      : false;
  return { requeued, dropped, resumed, reopenedModels: [...models] };
}

/**
 * Whether a retry names the key-wide breaker's own cause (its type or condition, or everything):
 * the stated fix then resumes the queue even when no entry is left to send (all purged, or their
 * batch deleted), or the queue would stay paused after the cause was fixed.
 */
function targetsBreaker(options: DeadLetterRetryOptions, key: KeyBreakerState): boolean {
  if (options.type === undefined) return options.batch === undefined && options.customId === undefined;
  const condition = key.condition;
  return (
    options.type === key.type ||
    (condition !== null && (options.type === condition || options.type === CONDITION_TYPE[condition]))
  );
}

/** Removes dead-letter entries; the batches' results keep their errored lines. */
export async function purgeDeadLetters(runtime: Runtime, filter: DeadLetterFilter = {}): Promise<number> {
  const ids: string[] = [];
  for await (const { jobId } of deadLetterEntries(runtime, filter)) ids.push(jobId);
  let removed = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const replies = await Promise.all(ids.slice(i, i + 500).map((id) => runtime.deadLetters.remove(id)));
    removed += replies.filter((n) => n === 1).length;
  }
  return removed;
}

/**
 * Puts a batch on the hosted route (the dispatcher leaves its share to the hosted runner), before
 * its retried requests are held: none of them is dispatched live meanwhile.
 */
async function sendHosted(runtime: Runtime, batchId: string): Promise<void> {
  const { redis, keys } = runtime;
  if ((await redis.hexists(keys.batch(batchId), 'id')) === 0) return;
  await redis.multi().hset(keys.batch(batchId), 'route', 'hosted').sadd(keys.hostedBatches(), batchId).exec();
}
