/**
 * Every setting of the runner in one table: its env variable, its flag, its type, its default and
 * what it means. `loadConfig` builds the typed config from it (defaults, then env, then flags) and
 * the README's configuration table is generated from the same rows (`scripts/print-config-table.ts`).
 *
 * The API key is deliberately not here: it is read from ANTHROPIC_API_KEY alone and never
 * accepted as a flag (see `load-config.ts`).
 */
/** `usd`: a positive, finite amount of US dollars (a decimal number). */
type SettingKind = 'int' | 'string' | 'boolean' | 'list' | 'usd';

export interface SettingSpec {
  kind: SettingKind;
  /** Environment variable, if the setting can come from the environment. */
  env?: string;
  /** Long flag, if a command accepts it. */
  flag?: string;
  /** Lower bound for ints. */
  min?: number;
  /** Unit of ints, for docs and errors. */
  unit?: string;
  doc: string;
}

export const SETTINGS = {
  redisUrl: {
    kind: 'string',
    env: 'REDIS_URL',
    doc: 'Redis to use; in cluster mode only its password and TLS (rediss:) are used.',
  },
  redisClusterNodes: {
    kind: 'list',
    env: 'REDIS_CLUSTER_NODES',
    doc: 'Comma-separated host:port of Redis Cluster nodes; selects cluster mode.',
  },
  prefix: {
    kind: 'string',
    env: 'CLAUDE_BATCH_PREFIX',
    flag: '--prefix',
    doc: 'Namespace of every key and queue; wrapped in a {hash tag} unless it has one.',
  },
  baseURL: { kind: 'string', env: 'ANTHROPIC_BASE_URL', doc: 'API base URL (the emulator, a proxy).' },
  requestTimeoutMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_REQUEST_TIMEOUT_MS',
    flag: '--request-timeout-ms',
    min: 1,
    unit: 'ms',
    doc: 'Timeout of one API call (for a streamed call: the longest wait for its next bytes); a timed-out call is retried as maybe billed.',
  },
  streamMinMaxTokens: {
    kind: 'int',
    env: 'CLAUDE_BATCH_STREAM_MIN_MAX_TOKENS',
    flag: '--stream-min-max-tokens',
    min: 1,
    unit: 'tokens',
    doc: 'Requests with at least this max_tokens are streamed, so a long generation is never cut by a total timeout and paid twice.',
  },
  concurrency: {
    kind: 'int',
    env: 'CLAUDE_BATCH_CONCURRENCY',
    flag: '--concurrency',
    min: 1,
    unit: 'requests',
    doc: 'The most requests a worker process holds at once: the ceiling of its in-flight cap, which it sizes itself (from 16, x1.25 a second while every slot is busy and the budget has room; down to what is sending while requests wait for the budget). Each in flight is a socket and its prompt and answer in memory: mind `ulimit -n`.',
  },
  rpm: {
    kind: 'int',
    env: 'CLAUDE_BATCH_RPM',
    flag: '--rpm',
    min: 0,
    unit: 'requests/min',
    doc: "The account's requests-per-minute budget for the default model class, shared by every worker (0: learned from the API's headers).",
  },
  itpm: {
    kind: 'int',
    env: 'CLAUDE_BATCH_ITPM',
    flag: '--itpm',
    min: 0,
    unit: 'tokens/min',
    doc: 'Input tokens per minute budget (input + cache creation tokens), shared (0: learned from the API).',
  },
  otpm: {
    kind: 'int',
    env: 'CLAUDE_BATCH_OTPM',
    flag: '--otpm',
    min: 0,
    unit: 'tokens/min',
    doc: 'Output tokens per minute budget, shared (0: learned from the API).',
  },
  budgetsFile: {
    kind: 'string',
    env: 'CLAUDE_BATCH_BUDGETS_FILE',
    flag: '--budgets',
    doc: 'JSON file of budgets per model class: [{"match": "claude-haiku-*", "rpm": 4000, ...}].',
  },
  maxAttempts: {
    kind: 'int',
    env: 'CLAUDE_BATCH_MAX_ATTEMPTS',
    flag: '--max-attempts',
    min: 1,
    unit: 'calls',
    doc: 'API calls per request before it dead-letters as retries_exhausted.',
  },
  maxRetryWaitMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_MAX_RETRY_WAIT_MS',
    flag: '--max-retry-wait-ms',
    min: 0,
    unit: 'ms',
    doc: 'Total time one request may spend waiting for retries before it dead-letters.',
  },
  backoffBaseMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_BACKOFF_BASE_MS',
    min: 1,
    unit: 'ms',
    doc: 'Scale of the first backoff delay (full jitter, doubling per retry).',
  },
  backoffMaxMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_BACKOFF_MAX_MS',
    min: 1,
    unit: 'ms',
    doc: 'Cap of one backoff delay (a longer retry-after still wins).',
  },
  lockDurationMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_LOCK_DURATION_MS',
    min: 1000,
    unit: 'ms',
    doc: "BullMQ job lock: a dead worker's jobs are taken back after this.",
  },
  stalledIntervalMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_STALLED_INTERVAL_MS',
    min: 500,
    unit: 'ms',
    doc: 'How often workers look for stalled jobs.',
  },
  maxStalledCount: {
    kind: 'int',
    env: 'CLAUDE_BATCH_MAX_STALLED_COUNT',
    min: 0,
    unit: 'stalls',
    doc: 'Stalls a job may have before BullMQ fails it (the runner then still gives it an outcome).',
  },
  reconcileIntervalMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_RECONCILE_INTERVAL_MS',
    min: 500,
    unit: 'ms',
    doc: 'How often one worker (under a Redis lock) looks for stalled batches to reconcile.',
  },
  reconcileStallMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_RECONCILE_STALL_MS',
    min: 0,
    unit: 'ms',
    doc: 'A batch whose counts have not changed for this long is checked: requests in no lawful place get an outcome.',
  },
  hostedPollMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_HOSTED_POLL_MS',
    min: 1,
    unit: 'ms',
    doc: 'First wait between two polls of a hosted Message Batches batch (`--via batches|auto`); grows x1.5 up to CLAUDE_BATCH_HOSTED_POLL_MAX_MS; a retry-after is honoured.',
  },
  hostedPollMaxMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_HOSTED_POLL_MAX_MS',
    min: 1,
    unit: 'ms',
    doc: 'Longest wait between two polls of a hosted batch.',
  },
  hostedMaxRequests: {
    kind: 'int',
    env: 'CLAUDE_BATCH_HOSTED_MAX_REQUESTS',
    min: 1,
    unit: 'requests',
    doc: "Most requests per hosted batch, its one marker request included (the API's limit is 100,000).",
  },
  hostedMaxBytes: {
    kind: 'int',
    env: 'CLAUDE_BATCH_HOSTED_MAX_BYTES',
    min: 1,
    unit: 'bytes',
    doc: "Most bytes per hosted batch's create body (the API's limit is 256 MB).",
  },
  hostedCancelMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_HOSTED_CANCEL_MS',
    min: 0,
    unit: 'ms',
    doc: '`--via auto`: how long a hosted batch is expected to take from cancel to ended (its running requests finish first); part of when auto gives up on the hosted path before the deadline.',
  },
  autoLiveRpm: {
    kind: 'int',
    env: 'CLAUDE_BATCH_AUTO_LIVE_RPM',
    min: 0,
    unit: 'requests/min',
    doc: '`--via auto`: the live rate planned for finishing before the deadline (0: 80 % of --rpm, or 1,000 when --rpm is unset).',
  },
  gracePeriodMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_GRACE_PERIOD_MS',
    flag: '--grace-period-ms',
    min: 0,
    unit: 'ms',
    doc: 'On SIGTERM, how long in-flight requests may finish before they are handed back.',
  },
  modelBreakerThreshold: {
    kind: 'int',
    env: 'CLAUDE_BATCH_MODEL_BREAKER_THRESHOLD',
    flag: '--model-breaker-threshold',
    min: 1,
    unit: 'failures',
    doc: 'Consecutive not_found/permission errors of a model that stop sending its requests.',
  },
  maxMaybeBilled: {
    kind: 'int',
    env: 'CLAUDE_BATCH_MAX_MAYBE_BILLED',
    flag: '--max-maybe-billed',
    min: 0,
    unit: 'retries',
    doc: 'Retries of a request after a timeout or a connection cut once it was sent (each may pay twice: the API has no idempotency key); past it the request dead-letters as maybe_billed.',
  },
  stormThreshold: {
    kind: 'int',
    env: 'CLAUDE_BATCH_STORM_THRESHOLD',
    flag: '--storm-threshold',
    min: 0,
    unit: 'failures',
    doc: 'Consecutive requests of one API key failing with the same terminal error (masked message) that pause everything as a failure storm (0: off).',
  },
  concurrencyProbeQuietMs: {
    kind: 'int',
    env: 'CLAUDE_BATCH_CONCURRENCY_PROBE_QUIET_MS',
    flag: '--concurrency-probe-quiet-ms',
    min: 1,
    unit: 'ms',
    doc: 'After the API refused concurrent connections, how long without such a 429 (with requests waiting for a slot) before the in-flight cap is raised by one; a 429 during the raise puts it back and doubles this (up to 16x).',
  },
  model: {
    kind: 'string',
    env: 'CLAUDE_BATCH_MODEL',
    flag: '--model',
    doc: 'Model for shorthand {"custom_id","prompt"} lines.',
  },
  maxTokens: {
    kind: 'int',
    env: 'CLAUDE_BATCH_MAX_TOKENS',
    flag: '--max-tokens',
    min: 1,
    unit: 'tokens',
    doc: 'max_tokens for shorthand lines.',
  },
  maxCost: {
    kind: 'usd',
    env: 'CLAUDE_BATCH_MAX_COST',
    flag: '--max-cost',
    unit: 'USD',
    doc: "Hard cost ceiling of a batch (submit, run): its calls' worst cases are reserved before sending and settled to real usage; at the ceiling the batch (not the queue) pauses with reason cost_ceiling until `resume BATCH --max-cost N`. Set when the batch is created.",
  },
  system: { kind: 'string', flag: '--system', doc: 'System prompt for shorthand lines.' },
  maxErrors: {
    kind: 'int',
    flag: '--max-errors',
    min: 0,
    unit: 'lines',
    doc: 'Invalid lines reported by submit (0: all).',
  },
  chunkSize: {
    kind: 'int',
    env: 'CLAUDE_BATCH_CHUNK_SIZE',
    min: 1,
    unit: 'requests',
    doc: 'Requests enqueued per Redis round-trip by submit.',
  },
  logLevel: {
    kind: 'string',
    env: 'CLAUDE_BATCH_LOG_LEVEL',
    flag: '--log-level',
    doc: 'debug, info, warn or error.',
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;
