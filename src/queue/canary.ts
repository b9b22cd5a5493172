import type { Runtime } from '../runtime.js';
import { HOLD_MS, Holds } from './holds.js';

/** How long non-canary requests are held until their canary has an outcome (see {@link HOLD_MS}). */
export const CANARY_HOLD_MS = HOLD_MS;

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
 * Marks the model's canary as done and promotes the batch's held requests of that model into the
 * queue. Idempotent: safe to call from every worker that sees the canary end, and again from a
 * resumed submit or the reconciler.
 */
export async function releaseCanary(runtime: Runtime, batchId: string, model: string): Promise<number> {
  return new Holds(runtime).markReleasedAndRelease(batchId, canaryField(model));
}

/** Promotes the held requests of one model of a batch (exactly those recorded). Returns how many. */
export async function releaseHeld(runtime: Runtime, batchId: string, model: string): Promise<number> {
  return new Holds(runtime).release(batchId, canaryField(model));
}
