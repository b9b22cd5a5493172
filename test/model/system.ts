/**
 * The one place the model check reaches into the runner. Every operation it drives and every state
 * it reads goes through these names, so when a module moves (other work reshapes src/queue and
 * src/store) only this file needs re-pointing.
 */
export { loadConfig, type ClaudeBatchConfig, type ConfigOverrides } from '../../src/config/load-config.js';
export { openRuntime, type Runtime } from '../../src/runtime.js';
export { createLogger, silentLogger, type Logger } from '../../src/logger.js';
export { deleteKeys, createRedis } from '../../src/redis/connection.js';
export { submitBatch } from '../../src/queue/producer.js';
export { cancelBatch } from '../../src/operations/cancel-batch.js';
export { deleteBatch } from '../../src/operations/delete-batch.js';
export { retryDeadLetters } from '../../src/operations/dlq-retry.js';
export { deadLetterEntries } from '../../src/queue/dead-letters.js';
export { requestJobId, type DeadLetterEntry } from '../../src/queue/jobs.js';
export { Holds } from '../../src/queue/holds.js';
export { Chunks } from '../../src/hosted/chunks.js';
export { pauseQueue, resumeQueue } from '../../src/breakers/breakers.js';
export { getBatchStatus, type BatchStatus } from '../../src/operations/batch-status.js';
export { startWorker } from '../../src/worker/start-worker.js';
export type { ClaudeWorker } from '../../src/worker/claude-worker.js';
export { Secret } from '../../src/secret.js';
export { inputSource, type InputSource } from '../../src/batch/input-source.js';
export type { MessageParams } from '../../src/batch/types.js';
export {
  replyFingerprint,
  startEmulator,
  type EmulatorHandle,
  type RequestLogEntry,
} from '../../src/emulator/index.js';
export { startPrivateRedis, type PrivateRedis } from '../../src/devtools/private-redis.js';
export { getBreakerState } from '../../src/breakers/breaker-state.js';
export { LOST_ERROR_TYPE } from '../../src/worker/reconciler.js';
