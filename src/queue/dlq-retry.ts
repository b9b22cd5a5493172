import { closeModelBreakers, resumeQueue } from '../breakers/breakers.js';
import { getBreakerState } from '../breakers/breaker-state.js';
import type { Runtime } from '../runtime.js';
import { deadLetterEntries, type DeadLetterFilter } from './dead-letters.js';
import { requestJobId, type RequestJobData } from './jobs.js';

export interface DeadLetterRetryOptions extends DeadLetterFilter {
  /** Only this custom_id. */
  customId?: string;
  /** Send with this model id instead (a mistyped or retired one fixed). */
  model?: string;
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
 * Then closes the breakers of the models involved and resumes a queue the key-wide breaker paused.
 */
export async function retryDeadLetters(
  runtime: Runtime,
  options: DeadLetterRetryOptions = {},
): Promise<DeadLetterRetryResult> {
  let requeued = 0;
  let dropped = 0;
  const models = new Set<string>();
  const taken: string[] = [];
  for await (const { jobId, entry } of deadLetterEntries(runtime, options)) {
    if (options.customId !== undefined && entry.custom_id !== options.customId) continue;
    taken.push(jobId);
    models.add(entry.params.model);
    const outcome = await runtime.store.reopen(
      entry.batch_id,
      entry.custom_id,
      entry.gen,
      entry.error_type,
      entry.condition ?? null,
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
      params,
    };
    await runtime.requests.add(params.model, data, {
      jobId: requestJobId(entry.batch_id, entry.custom_id, gen),
      attempts: 5,
      backoff: { type: 'exponential', delay: 1_000 },
    });
    requeued += 1;
  }
  // Entries go last: until here, a rerun finds them and finishes the job.
  for (let i = 0; i < taken.length; i += 500) {
    await Promise.all(taken.slice(i, i + 500).map((id) => runtime.deadLetters.remove(id)));
  }
  const reopenedModels = [...models];
  await closeModelBreakers(runtime, reopenedModels);
  const { key } = await getBreakerState(runtime);
  const resumed = requeued > 0 && key?.reason === 'key_breaker' ? await resumeQueue(runtime) : false;
  return { requeued, dropped, resumed, reopenedModels };
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
