import { BatchConflictError } from '../errors/runner-errors.js';
import { Chunks, type ChunkMeta } from '../hosted/chunks.js';
import type { Runtime } from '../runtime.js';

/** What the operator knows of a chunk held after an interrupted create. */
export type ChunkSettlement =
  /** This hosted batch is the chunk's (its results' custom_ids are checked when it ends). */
  | { adopt: string }
  /** No hosted batch was created for it: create it (again). */
  | { notCreated: true };

/**
 * Settles a hosted chunk the runner held for an operator (`status` shows it, with the candidate
 * hosted ids): adopts the hosted batch the operator names (not one another chunk owns), or records
 * that none was created, so the runner creates it. Only a `held` chunk is settled: a chunk in any
 * other state is the runner's, and settling it could make two hosted batches of it.
 */
export async function settleChunk(
  runtime: Runtime,
  batchId: string,
  n: number,
  settlement: ChunkSettlement,
): Promise<ChunkMeta> {
  const chunks = new Chunks(runtime);
  const chunk = await chunks.get(batchId, n);
  if (!chunk) throw new BatchConflictError(`batch ${batchId} has no hosted chunk ${n}`);
  if (chunk.state !== 'held') {
    throw new BatchConflictError(
      `hosted chunk ${n} of batch ${batchId} is ${chunk.state}, not held: the runner is handling it`,
    );
  }
  const next: ChunkMeta = { ...chunk };
  delete next.held;
  if ('adopt' in settlement) {
    const id = settlement.adopt;
    const owner = await runtime.redis.hget(runtime.keys.hostedIds(), id);
    if (owner !== null && owner !== `${batchId}:${n}`) {
      throw new BatchConflictError(`hosted batch ${id} belongs to chunk ${owner} already`);
    }
    await runtime.redis.hset(runtime.keys.hostedIds(), id, `${batchId}:${n}`);
    Object.assign(next, { state: 'created', hosted_id: id, adopted: true });
  } else {
    delete next.hosted_id;
    delete next.intent_at;
    delete next.intent_token;
    delete next.adopted;
    next.state = 'packed';
  }
  if (!(await chunks.update(batchId, next, 'held'))) {
    throw new BatchConflictError(
      `hosted chunk ${n} of batch ${batchId} changed meanwhile: look at \`status\` again`,
    );
  }
  return next;
}
