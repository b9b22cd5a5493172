import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

/**
 * The package's runtime exports, by name: removing or renaming one fails here (their types are
 * fixed by public-api.test-d.ts), and nothing is exported by accident.
 */
describe('the public API', () => {
  it('exports exactly these values', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'BatchConflictError',
        'BatchNotFoundError',
        'ConfigError',
        'DEFAULT_CONFIG',
        'EmulatorOptionsError',
        'InputValidationError',
        'MissingApiKeyError',
        'PriceTableError',
        'RedisUnavailableError',
        'Secret',
        'cancelBatch',
        'createClaudeClient',
        'createLogger',
        'deleteBatch',
        'exportResults',
        'getBatchStatus',
        'getBreakerState',
        'listBatchStatuses',
        'listDeadLetters',
        'loadConfig',
        'loadPriceTable',
        'openRuntime',
        'pauseQueue',
        'purgeDeadLetters',
        'resumeBatch',
        'resumeQueue',
        'retryDeadLetters',
        'runBatch',
        'startEmulator',
        'startWorker',
        'submitBatch',
        'waitForBatch',
        'waitUntilIdle',
        'watchBatch',
        'writeResults',
      ].sort(),
    );
  });

  it('names its errors, so a log line says which one it was', () => {
    for (const ErrorClass of [
      api.BatchConflictError,
      api.BatchNotFoundError,
      api.InputValidationError,
      api.MissingApiKeyError,
      api.RedisUnavailableError,
    ]) {
      expect(ErrorClass.prototype).toBeInstanceOf(Error);
    }
    expect(new api.BatchNotFoundError('b1', '{p}').name).toBe('BatchNotFoundError');
    expect(new api.ConfigError('rpm', 'RPM', 'bad').name).toBe('ConfigError');
  });
});
