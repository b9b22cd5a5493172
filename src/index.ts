/**
 * The public library API, `import { ... } from 'claude-batch'`: everything the CLI does, for
 * scripts. The package exports this module only (see `exports` in package.json), so what is not
 * here is internal and may change in any release. test/package/public-api.test.ts fixes its shape.
 * See README.md, "From your own project".
 *
 * The usual script: `loadConfig()` → `openRuntime(config)` → `submitBatch` → `startWorker` →
 * `watchBatch` (or `waitForBatch`) → `exportResults`, with `runtime.close()` in a `finally`.
 */
import type { Runtime } from './runtime.js';
import type { StartWorkerOptions } from './worker/start-worker.js';
import { startWorker as startClaudeWorker } from './worker/start-worker.js';

// Configuration.
export {
  loadConfig,
  ConfigError,
  DEFAULT_CONFIG,
  type ClaudeBatchConfig,
  type ConfigOverrides,
  type LoadConfigOptions,
} from './config/load-config.js';
export { createLogger, type Logger, type LoggerOptions, type LogLevel, type LogFields } from './logger.js';
export { Secret } from './secret.js';

// Connection.
export { openRuntime, type Runtime, type OpenRuntimeOptions } from './runtime.js';

// Submitting.
export { submitBatch, type SubmitOptions, type SubmitResult } from './queue/producer.js';
export type { AutoCacheDecision, ModelCachePlan, CacheTtl, AutoCacheOutcome } from './batch/auto-cache.js';
export type { MinCacheableRule } from './batch/min-cacheable-tokens.js';
export type { RequestDefaults } from './batch/validate-request.js';
export type { InputError } from './batch/input-error.js';
export type { SubmitCost } from './pricing/batch-cost.js';
export type { Via, RoutePlan } from './hosted/route.js';
export { loadPriceTable, PriceTableError, type PriceTable, type ModelPrice } from './pricing/price-table.js';

// Working.
export type { StartWorkerOptions } from './worker/start-worker.js';
export { waitUntilIdle, type IdleReason } from './worker/until-idle.js';
export {
  createClaudeClient,
  type ClaudeClient,
  type ClaudeClientOptions,
  type CallResult,
  type MessageUsage,
} from './claude/claude-client.js';
export type { RateBudget } from './limits/rate-budget.js';

// Waiting and progress.
export {
  getBatchStatus,
  listBatchStatuses,
  type BatchStatus,
  type BatchPause,
  type ProcessingStatus,
} from './operations/batch-status.js';
export type { UsageTotals } from './store/batch-record.js';
export { waitForBatch, type WaitOptions as WaitForBatchOptions } from './operations/wait-for-batch.js';
export { watchBatch, type BatchEvent, type WatchBatchOptions } from './watch-batch.js';
export {
  getBreakerState,
  type BreakerState,
  type KeyBreakerState,
  type ModelBreakerState,
} from './breakers/breaker-state.js';
/** What the runner makes of a failure beyond one request (billing, auth, spend_cap, storm, ...). */
export type { Condition } from './errors/error-table.js';

// Results, all in one call, and operations.
export { exportResults, writeResults, type ExportResultsOptions } from './operations/export-results.js';
export { runBatch, type RunBatchOptions, type RunBatchResult } from './run-batch.js';
export { deleteBatch, type DeleteBatchResult } from './operations/delete-batch.js';
export { cancelBatch, type CancelResult as CancelBatchResult } from './operations/cancel-batch.js';
export { listDeadLetters, type DeadLetterFilter, type DeadLetterRow } from './queue/dead-letters.js';
export {
  retryDeadLetters,
  purgeDeadLetters,
  type DeadLetterRetryOptions,
  type DeadLetterRetryResult,
} from './operations/dlq-retry.js';
export { pauseQueue, resumeQueue } from './breakers/breakers.js';
export { resumeBatch, type ResumeBatchOptions, type ResumeBatchResult } from './operations/resume-batch.js';

// Errors a caller may want to tell apart (`instanceof`).
export { InputValidationError, BatchConflictError, MissingApiKeyError } from './errors/runner-errors.js';
export { BatchNotFoundError } from './errors/batch-not-found-error.js';
export { RedisUnavailableError } from './redis/connection.js';

// The emulator, to try a script offline.
export {
  startEmulator,
  EmulatorOptionsError,
  type EmulatorHandle,
  type EmulatorOptions,
} from './emulator/index.js';

/** A worker running in this process, from {@link startWorker}. */
export interface BatchWorker {
  /** Requests this process is sending now. */
  readonly activeCount: number;
  /**
   * Stops taking requests; those in flight may finish for the config's `gracePeriodMs` (default
   * 30,000 ms), the rest go back to the queue for another worker. Safe to call twice; closing the
   * runtime closes it too.
   */
  close(): Promise<void>;
}

/**
 * Starts a worker in this process: it sends the queue's requests (of every batch under the
 * runtime's prefix) within the shared rate budget until it is closed, alongside any other worker
 * processes. Rejects with MissingApiKeyError when there is neither ANTHROPIC_API_KEY nor a
 * `client`. Stop it with `close()`, or close the runtime, which closes it too.
 */
export const startWorker: (runtime: Runtime, options?: StartWorkerOptions) => Promise<BatchWorker> =
  startClaudeWorker;
