/**
 * A Messages API emulator for tests, demos and benchmarks: the API's endpoints (hosted Message
 * Batches included), errors, rate-limit buckets, prompt caching, credits and spend caps, plus
 * injectable faults, all offline.
 *
 * ```ts
 * const emulator = await startEmulator({ limits: { rpm: 50 } });
 * const client = new Anthropic({ apiKey: 'test', baseURL: emulator.url, maxRetries: 0 });
 * ...
 * await emulator.close();
 * ```
 *
 * Where each behaviour is specified: options.ts (options and defaults), markers.ts (per-prompt
 * markers), fault-plan.ts (faults), token-count.ts (token counting), replies.ts (reply text and
 * length), prompt-cache.ts and cache-minimums.ts (caching), rate-limiter.ts (limits and headers),
 * api-routes.ts (order of checks), message-outcome.ts (the decisions shared by live and hosted
 * requests), batch-routes.ts and hosted-batches.ts (hosted Message Batches), control-routes.ts
 * (control endpoints), request-log.ts (log entries and stats).
 */
import { createControl, type EmulatorControl } from './control.js';
import { resolveEmulatorOptions, type EmulatorOptions } from './options.js';
import { listen } from './server.js';
import { EmulatorState } from './state.js';

export interface EmulatorHandle {
  /** e.g. `http://127.0.0.1:PORT`, no trailing slash; pass it as the SDK's `baseURL`. */
  url: string;
  control: EmulatorControl;
  /** Stops listening and drops every connection, hung ones included. Safe to call twice. */
  close(): Promise<void>;
}

/** Validates the options (rejecting with EmulatorOptionsError) and starts listening. */
export async function startEmulator(options?: EmulatorOptions): Promise<EmulatorHandle> {
  const resolved = resolveEmulatorOptions(options);
  const state = new EmulatorState(resolved);
  const control = createControl(state);
  const server = await listen(state, control, resolved.host, resolved.port);
  return { url: server.url, control, close: server.close };
}

export type { EmulatorStats } from './control.js';
export type { EmulatorOptions } from './options.js';
export { DEFAULT_MODELS, resolveEmulatorOptions } from './options.js';
export { EmulatorOptionsError } from './option-error.js';
export type { FaultPlan } from './fault-plan.js';
export { FAULT_TYPES } from './fault-plan.js';
export type { BillingErrorStatus } from './api-error.js';
export type { RequestLogEntry } from './request-log.js';
export { REPLY_PREFIX, replyFingerprint } from './replies.js';
