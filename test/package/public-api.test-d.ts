/**
 * The shape of the package's public API (src/index.ts), fixed: a renamed, removed or retyped
 * export, option or result field fails this file, so a breaking change is a decision, not an
 * accident. Adding to the API means adding it here too. Checked by vitest's typecheck mode (see
 * vitest.config.ts) and by `tsc --noEmit`.
 * What the package's types leave out (the runtime's internals, stripped at build) is checked
 * against the installed types by test/package/consumer/submit.ts.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type {
  AutoCacheDecision,
  MinCacheableRule,
  Condition,
  BatchEvent,
  BatchStatus,
  BatchPause,
  ResumeBatchOptions,
  ResumeBatchResult,
  BatchWorker,
  CancelBatchResult,
  ClaudeBatchConfig,
  BreakerState,
  ClaudeClient,
  ClaudeClientOptions,
  DeadLetterFilter,
  DeadLetterRetryOptions,
  DeadLetterRetryResult,
  DeadLetterRow,
  DeleteBatchResult,
  EmulatorHandle,
  EmulatorOptions,
  ExportResultsOptions,
  IdleReason,
  InputError,
  KeyBreakerState,
  LoadConfigOptions,
  Logger,
  LoggerOptions,
  OpenRuntimeOptions,
  ProcessingStatus,
  RateBudget,
  RequestDefaults,
  RunBatchOptions,
  RunBatchResult,
  Runtime,
  Secret,
  StartWorkerOptions,
  SubmitOptions,
  SubmitCost,
  PriceTable,
  SubmitResult,
  WaitForBatchOptions,
  WatchBatchOptions,
} from '../../src/index.js';
import {
  BatchConflictError,
  BatchNotFoundError,
  cancelBatch,
  ConfigError,
  createClaudeClient,
  createLogger,
  DEFAULT_CONFIG,
  getBreakerState,
  waitUntilIdle,
  deleteBatch,
  EmulatorOptionsError,
  exportResults,
  getBatchStatus,
  InputValidationError,
  listBatchStatuses,
  listDeadLetters,
  loadConfig,
  MissingApiKeyError,
  openRuntime,
  pauseQueue,
  purgeDeadLetters,
  RedisUnavailableError,
  resumeQueue,
  resumeBatch,
  loadPriceTable,
  retryDeadLetters,
  runBatch,
  startEmulator,
  startWorker,
  submitBatch,
  waitForBatch,
  watchBatch,
  writeResults,
  type Via,
  type RoutePlan,
} from '../../src/index.js';

describe('the public API', () => {
  it('opens and closes a runtime', () => {
    expectTypeOf(loadConfig).toEqualTypeOf<(options?: LoadConfigOptions) => ClaudeBatchConfig>();
    expectTypeOf<keyof LoadConfigOptions>().toEqualTypeOf<'env' | 'overrides'>();
    expectTypeOf(openRuntime).toEqualTypeOf<
      (config: ClaudeBatchConfig, options?: OpenRuntimeOptions) => Promise<Runtime>
    >();
    expectTypeOf<OpenRuntimeOptions>().toEqualTypeOf<{
      logger?: Logger | undefined;
      connectTimeoutMs?: number | undefined;
    }>();
    expectTypeOf<Runtime>().toHaveProperty('config').toEqualTypeOf<ClaudeBatchConfig>();
    expectTypeOf<Runtime>().toHaveProperty('logger').toEqualTypeOf<Logger>();
    expectTypeOf<Runtime['close']>().toEqualTypeOf<() => Promise<void>>();
    expectTypeOf<keyof ClaudeBatchConfig>().toEqualTypeOf<
      | 'redisUrl'
      | 'redisClusterNodes'
      | 'prefix'
      | 'apiKey'
      | 'baseURL'
      | 'requestTimeoutMs'
      | 'concurrency'
      | 'rpm'
      | 'itpm'
      | 'otpm'
      | 'budgetsFile'
      | 'maxAttempts'
      | 'maxRetryWaitMs'
      | 'backoffBaseMs'
      | 'backoffMaxMs'
      | 'lockDurationMs'
      | 'stalledIntervalMs'
      | 'maxStalledCount'
      | 'gracePeriodMs'
      | 'hostedPollMs'
      | 'hostedPollMaxMs'
      | 'hostedMaxRequests'
      | 'hostedMaxBytes'
      | 'hostedCancelMs'
      | 'autoLiveRpm'
      | 'modelBreakerThreshold'
      | 'stormThreshold'
      | 'concurrencyProbeQuietMs'
      | 'maxMaybeBilled'
      | 'streamMinMaxTokens'
      | 'reconcileIntervalMs'
      | 'reconcileStallMs'
      | 'alertWebhookUrl'
      | 'model'
      | 'maxTokens'
      | 'system'
      | 'maxCost'
      | 'maxErrors'
      | 'chunkSize'
      | 'logLevel'
    >();
    expectTypeOf<ClaudeBatchConfig['apiKey']>().toEqualTypeOf<Secret | undefined>();
    expectTypeOf(DEFAULT_CONFIG).toEqualTypeOf<Omit<ClaudeBatchConfig, 'apiKey' | 'alertWebhookUrl'>>();
    expectTypeOf(createLogger).parameters.toEqualTypeOf<[LoggerOptions?, Record<string, unknown>?]>();
    expectTypeOf(createLogger).returns.toEqualTypeOf<Logger>();
    expectTypeOf<Secret['reveal']>().toEqualTypeOf<() => string>();
  });

  it('submits', () => {
    expectTypeOf(submitBatch).toEqualTypeOf<
      (runtime: Runtime, options: SubmitOptions) => Promise<SubmitResult>
    >();
    expectTypeOf<Omit<SubmitOptions, 'input'>>().toEqualTypeOf<{
      batchId?: string | undefined;
      defaults?: RequestDefaults | undefined;
      maxErrors?: number | undefined;
      chunkSize?: number | undefined;
      dryRun?: boolean | undefined;
      canary?: boolean | undefined;
      priority?: number | undefined;
      autoCache?: boolean | undefined;
      cacheMinTokens?: readonly MinCacheableRule[] | undefined;
      maxCost?: number | undefined;
      via?: Via | undefined;
      deadline?: string | number | Date | undefined;
      routePlan?: RoutePlan | undefined;
      prices?: PriceTable | undefined;
      onBatchId?: ((batchId: string) => void) | undefined;
      onProgress?: ((enqueued: number, total: number) => void) | undefined;
    }>();
    expectTypeOf<string>().toExtend<SubmitOptions['input']>();
    expectTypeOf<RequestDefaults>().toEqualTypeOf<{
      model?: string | undefined;
      maxTokens?: number | undefined;
      system?: string | undefined;
    }>();
    expectTypeOf<Omit<SubmitResult, 'models'>>().toEqualTypeOf<{
      batchId: string;
      outcome: 'created' | 'resumed' | 'dry-run';
      total: number;
      enqueued: number;
      autoCache: AutoCacheDecision | null;
      cost: SubmitCost;
    }>();
    expectTypeOf<MinCacheableRule>().toEqualTypeOf<{ match: string; minTokens: number }>();
    expectTypeOf<InputValidationError>().toExtend<Error>();
    expectTypeOf<InputValidationError['errors']>().toEqualTypeOf<readonly InputError[]>();
    expectTypeOf<Pick<InputError, 'file' | 'line' | 'field' | 'reason'>>().toEqualTypeOf<{
      readonly file: string;
      readonly line: number;
      readonly field: string;
      readonly reason: string;
    }>();
  });

  it('works', () => {
    expectTypeOf(startWorker).toEqualTypeOf<
      (runtime: Runtime, options?: StartWorkerOptions) => Promise<BatchWorker>
    >();
    expectTypeOf<StartWorkerOptions>().toEqualTypeOf<{
      client?: ClaudeClient | undefined;
      budget?: RateBudget | undefined;
      apiKey?: Secret | undefined;
    }>();
    expectTypeOf<BatchWorker>().toEqualTypeOf<{ readonly activeCount: number; close(): Promise<void> }>();
    expectTypeOf(waitUntilIdle).toEqualTypeOf<
      (runtime: Runtime, pollMs?: number, signal?: AbortSignal) => Promise<IdleReason>
    >();
    expectTypeOf(createClaudeClient).toEqualTypeOf<(options: ClaudeClientOptions) => ClaudeClient>();
    expectTypeOf<keyof ClaudeClient>().toEqualTypeOf<'call'>();
    expectTypeOf<IdleReason>().toEqualTypeOf<{ kind: 'drained' } | { kind: 'paused'; pending: number }>();
  });

  it('waits, with progress and pause events', () => {
    expectTypeOf(waitForBatch).toEqualTypeOf<
      (runtime: Runtime, batchId: string, options?: WaitForBatchOptions) => Promise<BatchStatus>
    >();
    expectTypeOf<WaitForBatchOptions>().toEqualTypeOf<{
      pollMs?: number | undefined;
      onStatus?: ((status: BatchStatus) => void) | undefined;
      signal?: AbortSignal | undefined;
    }>();
    expectTypeOf(watchBatch).toEqualTypeOf<
      (
        runtime: Runtime,
        batchId: string,
        options?: WatchBatchOptions,
      ) => AsyncGenerator<BatchEvent, void, undefined>
    >();
    expectTypeOf<WatchBatchOptions>().toEqualTypeOf<{
      intervalMs?: number | undefined;
      signal?: AbortSignal | undefined;
    }>();
    expectTypeOf<BatchEvent>().toEqualTypeOf<
      | { type: 'progress'; status: BatchStatus }
      | { type: 'paused'; status: BatchStatus; reason: BatchPause }
      | { type: 'resumed'; status: BatchStatus }
      | { type: 'ended'; status: BatchStatus }
    >();
    expectTypeOf(getBatchStatus).toEqualTypeOf<
      (runtime: Runtime, batchId: string) => Promise<BatchStatus | null>
    >();
    expectTypeOf(listBatchStatuses).toEqualTypeOf<(runtime: Runtime) => Promise<BatchStatus[]>>();
    expectTypeOf<ProcessingStatus>().toEqualTypeOf<'in_progress' | 'paused' | 'canceling' | 'ended'>();
    expectTypeOf<keyof BatchStatus>().toEqualTypeOf<
      | 'id'
      | 'priority'
      | 'fair_share'
      | 'cache'
      | 'processing_status'
      | 'request_counts'
      | 'errored_by_type'
      | 'usage'
      | 'truncated'
      | 'refused'
      | 'total'
      | 'submit_state'
      | 'source'
      | 'created_at'
      | 'ended_at'
      | 'models'
      | 'paused'
      | 'cost'
      | 'canary'
      | 'canceled_at'
      | 'errored_by_condition'
      | 'maybe_billed'
      | 'reconciler'
      | 'concurrency_caps'
      | 'workers'
      | 'via'
      | 'route'
      | 'deadline'
      | 'switched_at'
      | 'served'
      | 'usage_hosted'
      | 'hosted'
      | 'estimated_cost'
    >();
    expectTypeOf<BatchStatus['request_counts']>().toEqualTypeOf<{
      processing: number;
      succeeded: number;
      errored: number;
      canceled: number;
      expired: number;
    }>();
    expectTypeOf(getBreakerState).toEqualTypeOf<(runtime: Runtime) => Promise<BreakerState>>();
    expectTypeOf<BatchStatus['paused']>().toEqualTypeOf<BatchPause[]>();
    expectTypeOf<BatchPause>().toEqualTypeOf<
      | ({ scope: 'queue' } & KeyBreakerState)
      | {
          scope: 'batch';
          reason: 'cost_ceiling';
          message: string;
          since: string;
          fix: string;
          spent_usd: number;
          ceiling_usd: number;
        }
      | {
          scope: 'batch';
          reason: 'hosted_chunk_held';
          message: string;
          since: string;
          fix: string;
          chunk: number;
          candidates: string[];
        }
    >();
    expectTypeOf<BatchStatus['via']>().toEqualTypeOf<'live' | 'batches' | 'auto'>();
    expectTypeOf<BatchStatus['route']>().toEqualTypeOf<'live' | 'hosted'>();
    expectTypeOf<BatchStatus['served']>().toEqualTypeOf<{ live: number; hosted: number }>();
    expectTypeOf<BatchStatus['estimated_cost']>().toEqualTypeOf<{
      usd: number | null;
      hosted_usd: number | null;
      exact: boolean;
      unpriced: string[];
    }>();
    expectTypeOf<BatchStatus['cost']>().toEqualTypeOf<{
      ceiling_usd: number | null;
      spent_usd: number;
      reserved_usd: number;
    } | null>();
    expectTypeOf(resumeBatch).toEqualTypeOf<
      (runtime: Runtime, batchId: string, options?: ResumeBatchOptions) => Promise<ResumeBatchResult>
    >();
    expectTypeOf<ResumeBatchOptions>().toEqualTypeOf<{ maxCost?: number | undefined }>();
    expectTypeOf<ResumeBatchResult>().toEqualTypeOf<{
      lifted: string[];
      rewarmed: string[];
      ceilingUsd: number | null;
      spentUsd: number;
    }>();
    expectTypeOf<SubmitCost>().toEqualTypeOf<{
      maxCostUsd: number | null;
      pricesSource: string;
      worstCaseUsd: Record<string, { total: number; largest: number }>;
    }>();
    expectTypeOf(loadPriceTable).toEqualTypeOf<(file: string) => Promise<PriceTable>>();
    expectTypeOf<KeyBreakerState>().toEqualTypeOf<{
      reason: 'key_breaker' | 'manual';
      type: string;
      error_code: string | null;
      condition: Condition | null;
      message: string;
      request_id: string | null;
      since: string;
      fix: string;
    }>();
  });

  it('writes results, and runs a batch in one call', () => {
    expectTypeOf(exportResults).toEqualTypeOf<
      (runtime: Runtime, batchId: string, file: string, options?: ExportResultsOptions) => Promise<number>
    >();
    expectTypeOf(writeResults).toEqualTypeOf<
      (
        runtime: Runtime,
        batchId: string,
        out: NodeJS.WritableStream,
        options?: ExportResultsOptions,
      ) => Promise<number>
    >();
    expectTypeOf<ExportResultsOptions>().toEqualTypeOf<{ order?: 'any' | 'input' | undefined }>();
    expectTypeOf(runBatch).toEqualTypeOf<
      (runtime: Runtime, options: RunBatchOptions) => Promise<RunBatchResult>
    >();
    expectTypeOf<RunBatchOptions>().toEqualTypeOf<{
      input: string;
      out: string;
      batchId?: string | undefined;
      defaults?: RequestDefaults | undefined;
      maxErrors?: number | undefined;
      canary?: boolean | undefined;
      priority?: number | undefined;
      autoCache?: boolean | undefined;
      maxCost?: number | undefined;
      via?: Via | undefined;
      deadline?: string | number | Date | undefined;
      prices?: PriceTable | undefined;
      order?: 'any' | 'input' | undefined;
      client?: ClaudeClient | undefined;
      budget?: RateBudget | undefined;
      apiKey?: Secret | undefined;
      onBatchId?: ((batchId: string) => void) | undefined;
      onStatus?: ((status: BatchStatus) => void) | undefined;
      signal?: AbortSignal | undefined;
    }>();
    // Options take an explicit undefined (a flag not given), as the SDK's and BullMQ's do, so a
    // caller with exactOptionalPropertyTypes can pass its own optional values through. (toEqualTypeOf
    // above does not tell `x?: T` from `x?: T | undefined`; these do.)
    expectTypeOf<{
      input: string;
      out: string;
      batchId: undefined;
      defaults: { model: undefined; maxTokens: undefined; system: undefined };
      order: undefined;
      onStatus: undefined;
      signal: undefined;
    }>().toExtend<RunBatchOptions>();
    expectTypeOf<{ input: string; chunkSize: undefined; dryRun: undefined }>().toExtend<SubmitOptions>();
    expectTypeOf<{
      client: undefined;
      budget: undefined;
      apiKey: undefined;
    }>().toExtend<StartWorkerOptions>();
    expectTypeOf<{ pollMs: undefined }>().toExtend<WaitForBatchOptions>();
    expectTypeOf<{ intervalMs: undefined; signal: undefined }>().toExtend<WatchBatchOptions>();
    expectTypeOf<{ logger: undefined; connectTimeoutMs: undefined }>().toExtend<OpenRuntimeOptions>();
    expectTypeOf<{ env: undefined; overrides: undefined }>().toExtend<LoadConfigOptions>();
    expectTypeOf<{ level: undefined; stream: undefined; json: undefined }>().toExtend<LoggerOptions>();
    expectTypeOf<{
      batch: undefined;
      type: undefined;
      customId: undefined;
      model: undefined;
    }>().toExtend<DeadLetterRetryOptions>();
    expectTypeOf<RunBatchResult>().toEqualTypeOf<{
      submit: SubmitResult;
      status: BatchStatus;
      resultsWritten: number;
    }>();
  });

  it('operates batches and the dead-letter queue', () => {
    expectTypeOf(cancelBatch).toEqualTypeOf<
      (runtime: Runtime, batchId: string) => Promise<CancelBatchResult>
    >();
    expectTypeOf<keyof CancelBatchResult>().toEqualTypeOf<'existed' | 'canceled' | 'inFlight'>();
    expectTypeOf(deleteBatch).toEqualTypeOf<
      (runtime: Runtime, batchId: string) => Promise<DeleteBatchResult>
    >();
    expectTypeOf<keyof DeleteBatchResult>().toEqualTypeOf<
      'existed' | 'removedRequests' | 'removedDeadLetters'
    >();
    expectTypeOf(pauseQueue).toEqualTypeOf<(runtime: Runtime) => Promise<void>>();
    expectTypeOf(resumeQueue).toEqualTypeOf<(runtime: Runtime) => Promise<boolean>>();
    expectTypeOf(listDeadLetters).parameters.toEqualTypeOf<[Runtime, DeadLetterFilter?]>();
    expectTypeOf(listDeadLetters).returns.resolves.toEqualTypeOf<DeadLetterRow[]>();
    expectTypeOf<DeadLetterFilter>().toEqualTypeOf<{
      batch?: string | undefined;
      type?: string | undefined;
    }>();
    expectTypeOf(retryDeadLetters).toEqualTypeOf<
      (runtime: Runtime, options?: DeadLetterRetryOptions) => Promise<DeadLetterRetryResult>
    >();
    expectTypeOf<keyof DeadLetterRetryOptions>().toEqualTypeOf<
      'batch' | 'type' | 'customId' | 'model' | 'via'
    >();
    expectTypeOf(purgeDeadLetters).toEqualTypeOf<
      (runtime: Runtime, filter?: DeadLetterFilter) => Promise<number>
    >();
  });

  it('has errors a caller can tell apart', () => {
    expectTypeOf(ConfigError).instance.toExtend<Error>();
    expectTypeOf(InputValidationError).instance.toExtend<Error>();
    expectTypeOf(BatchConflictError).instance.toExtend<Error>();
    expectTypeOf(BatchNotFoundError).instance.toExtend<Error>();
    expectTypeOf(MissingApiKeyError).instance.toExtend<Error>();
    expectTypeOf(RedisUnavailableError).instance.toExtend<Error>();
    expectTypeOf(EmulatorOptionsError).instance.toExtend<Error>();
    expectTypeOf<BatchNotFoundError['batchId']>().toEqualTypeOf<string>();
  });

  it('starts the emulator', () => {
    expectTypeOf(startEmulator).toEqualTypeOf<(options?: EmulatorOptions) => Promise<EmulatorHandle>>();
    expectTypeOf<keyof EmulatorHandle>().toEqualTypeOf<'url' | 'control' | 'close'>();
  });
});
