import type { Runtime } from '../runtime.js';
import { Holds } from './holds.js';

/**
 * Batch-record field holding the canary state of a model (`pending` or `released`); also the hold
 * reason of the model's held requests, so {@link Holds} finds the release state by it.
 */
export function canaryField(model: string): string {
  return `canary:${model}`;
}

/** Batch-record field naming the custom_id of a model's canary, for the reconciler. */
export function canaryIdField(model: string): string {
  return `canary_id:${model}`;
}

/**
 * Marks the model's canary as done and releases the batch's held requests of that model to the
 * batch's share (the dispatcher then sends them in its turn). Idempotent: safe to call from every
 * worker that sees the canary end, and again from a resumed submit or the reconciler.
 */
export async function releaseCanary(runtime: Runtime, batchId: string, model: string): Promise<number> {
  return new Holds(runtime).markReleasedAndRelease(batchId, canaryField(model));
}

/** Releases the held requests of one model of a batch (exactly those recorded) to its share. Returns how many. */
export async function releaseHeld(runtime: Runtime, batchId: string, model: string): Promise<number> {
  return new Holds(runtime).release(batchId, canaryField(model));
}
