/**
 * The public library API: everything the CLI does, for scripts. See README.md.
 */
export {
  loadConfig,
  ConfigError,
  DEFAULT_CONFIG,
  type ClaudeBatchConfig,
  type ConfigOverrides,
} from './config/load-config.js';
export { openRuntime, type Runtime, type OpenRuntimeOptions } from './runtime.js';
export {
  submitBatch,
  InputValidationError,
  type SubmitOptions,
  type SubmitResult,
} from './queue/producer.js';
export { startWorker, type StartWorkerOptions } from './worker/start-worker.js';
export { ClaudeWorker, type ClaudeWorkerOptions } from './worker/claude-worker.js';
export { waitUntilIdle } from './worker/until-idle.js';
export {
  getBatchStatus,
  listBatchStatuses,
  type BatchStatus,
  type ProcessingStatus,
} from './store/batch-status.js';
export { waitForBatch } from './store/wait-for-batch.js';
export { exportResults, writeResults } from './store/export-results.js';
export { runBatch, type RunBatchOptions, type RunBatchResult } from './run-batch.js';
export { deleteBatch } from './queue/delete-batch.js';
export { cancelBatch } from './queue/cancel-batch.js';
export { listDeadLetters, type DeadLetterRow } from './queue/dead-letters.js';
export { retryDeadLetters, purgeDeadLetters } from './queue/dlq-retry.js';
export { pauseQueue, resumeQueue } from './breakers/breakers.js';
export { getBreakerState } from './breakers/breaker-state.js';
export { createClaudeClient, type ClaudeClient } from './claude/claude-client.js';
export { Secret } from './secret.js';
export { startEmulator, type EmulatorHandle, type EmulatorOptions } from './emulator/index.js';
