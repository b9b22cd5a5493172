import type { Runtime } from '../runtime.js';

/**
 * The send-time epoch: a counter bumped after every change of what may be sent (cancel, delete,
 * pause, resume, a breaker opened or closed). Workers compare it with the value they cached their
 * gates under, once just before each send, and re-read the gates when it moved, so a change acts
 * on the next request rather than after a cache period. Bumped after the change it announces: a
 * reader that sees the new value reads the new state.
 */
export async function bumpEpoch(runtime: Pick<Runtime, 'redis' | 'keys'>): Promise<void> {
  await runtime.redis.incr(runtime.keys.epoch());
}

/** The current epoch ('' when never bumped, or after Redis lost it: still a value to compare). */
export async function readEpoch(runtime: Pick<Runtime, 'redis' | 'keys'>): Promise<string> {
  return (await runtime.redis.get(runtime.keys.epoch())) ?? '';
}
