import { DEFAULT_CHUNK_SIZE } from '../batch/read-requests.js';
import { Secret } from '../secret.js';
import { normalizePrefix } from '../redis/keys.js';
import { SETTINGS, type SettingName, type SettingSpec } from './settings.js';

/** The runner's whole configuration, built once at start. */
export interface ClaudeBatchConfig {
  /** Default `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Default none (single-node mode). */
  redisClusterNodes: string[];
  /** Hash-tagged key prefix. Default `{claude-batch}`. */
  prefix: string;
  /** From ANTHROPIC_API_KEY only. Undefined when unset. */
  apiKey: Secret | undefined;
  /** Default: the SDK's (the real API). */
  baseURL: string | undefined;
  /** Default 600,000 ms (the SDK's own default). */
  requestTimeoutMs: number;
  /** Default 16 requests in flight per process. */
  concurrency: number;
  /** Default 0 (no shared request budget). */
  rpm: number;
  /** Default 0. */
  itpm: number;
  /** Default 0. */
  otpm: number;
  /** Default none. */
  budgetsFile: string | undefined;
  /** Default 10 calls. */
  maxAttempts: number;
  /** Default 3,600,000 ms (one hour). */
  maxRetryWaitMs: number;
  /** Default 1,000 ms. */
  backoffBaseMs: number;
  /** Default 60,000 ms. */
  backoffMaxMs: number;
  /** Default 30,000 ms (BullMQ's). */
  lockDurationMs: number;
  /** Default 30,000 ms (BullMQ's). */
  stalledIntervalMs: number;
  /** Default 2 (BullMQ's is 1). */
  maxStalledCount: number;
  /** Default 60,000 ms. */
  reconcileIntervalMs: number;
  /** Default 300,000 ms (five minutes without progress). */
  reconcileStallMs: number;
  /** Default 10,000 ms. */
  hostedPollMs: number;
  /** Default 60,000 ms. */
  hostedPollMaxMs: number;
  /** Default 100,000 requests (the API's limit). */
  hostedMaxRequests: number;
  /** Default 256,000,000 bytes (the API's limit). */
  hostedMaxBytes: number;
  /** Default 600,000 ms. */
  hostedCancelMs: number;
  /** Default 0 (80 % of rpm, or 1,000). */
  autoLiveRpm: number;
  /** Default 30,000 ms. */
  gracePeriodMs: number;
  /** Default 3 failures. */
  modelBreakerThreshold: number;
  /** Default 2 retries. */
  maxMaybeBilled: number;
  /** Default {@link DEFAULT_STREAM_MIN_MAX_TOKENS} (8,192) tokens. */
  streamMinMaxTokens: number;
  /** Default 20 failures; 0 turns the failure-storm breaker off. */
  stormThreshold: number;
  /** Default 30,000 ms. See src/limits/in-flight-controller.ts. */
  concurrencyProbeQuietMs: number;
  /** ALERT_WEBHOOK_URL, from the environment only (it may carry a token). */
  alertWebhookUrl: Secret | undefined;
  /** Default none: shorthand lines then need --model. */
  model: string | undefined;
  /** Default none: shorthand lines then need --max-tokens. */
  maxTokens: number | undefined;
  /** Default none. */
  system: string | undefined;
  /** Default none: batches are submitted without a cost ceiling (USD). */
  maxCost: number | undefined;
  /** Default 20 lines. */
  maxErrors: number;
  /** Default {@link DEFAULT_CHUNK_SIZE} (250) requests. */
  chunkSize: number;
  /** Default `info`. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

/**
 * From this max_tokens on, a request is streamed. At a slow 20 tokens/s, 8,192 tokens take about
 * 7 minutes: past that a total timeout of 10 minutes (the SDK's default) starts to cut real
 * generations, and the SDK itself refuses non-streaming calls it expects to exceed it.
 */
export const DEFAULT_STREAM_MIN_MAX_TOKENS = 8_192;

export const DEFAULT_CONFIG: Omit<ClaudeBatchConfig, 'apiKey' | 'alertWebhookUrl'> = {
  redisUrl: 'redis://127.0.0.1:6379',
  redisClusterNodes: [],
  prefix: '{claude-batch}',
  baseURL: undefined,
  requestTimeoutMs: 600_000,
  concurrency: 512,
  rpm: 0,
  itpm: 0,
  otpm: 0,
  budgetsFile: undefined,
  maxAttempts: 10,
  maxRetryWaitMs: 3_600_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 2,
  reconcileIntervalMs: 60_000,
  reconcileStallMs: 300_000,
  hostedPollMs: 10_000,
  hostedPollMaxMs: 60_000,
  hostedMaxRequests: 100_000,
  hostedMaxBytes: 256_000_000,
  hostedCancelMs: 600_000,
  autoLiveRpm: 0,
  gracePeriodMs: 30_000,
  modelBreakerThreshold: 3,
  maxMaybeBilled: 2,
  streamMinMaxTokens: DEFAULT_STREAM_MIN_MAX_TOKENS,
  // Stops a storm within tens of requests, while a batch of bad lines naming different fields
  // (different signatures) never reaches it.
  stormThreshold: 20,
  concurrencyProbeQuietMs: 30_000,
  model: undefined,
  maxTokens: undefined,
  system: undefined,
  maxCost: undefined,
  maxErrors: 20,
  chunkSize: DEFAULT_CHUNK_SIZE,
  logLevel: 'info',
};

/** A setting with a bad value: names the setting, where it came from, the value and what was expected. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type ConfigOverrides = { [K in SettingName]?: unknown };

export interface LoadConfigOptions {
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Values from flags (commander's parsed options) or a library caller; they win over env. */
  overrides?: ConfigOverrides | undefined;
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Builds the config from defaults, then env, then overrides, and validates every setting. */
export function loadConfig(options: LoadConfigOptions = {}): ClaudeBatchConfig {
  const env = options.env ?? process.env;
  const overrides = options.overrides ?? {};
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };

  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, SettingSpec][]) {
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') {
      config[name] = parseSetting(name, spec, fromEnv, `${spec.env}`);
    }
    const fromFlag = overrides[name];
    if (fromFlag !== undefined) {
      config[name] = parseSetting(name, spec, fromFlag, spec.flag ?? name);
    }
  }

  config['prefix'] = checkPrefix(String(config['prefix']));
  if (!LOG_LEVELS.includes(config['logLevel'] as (typeof LOG_LEVELS)[number])) {
    throw new ConfigError(
      'logLevel',
      'logLevel',
      `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(config['logLevel'])}`,
    );
  }
  // Both are string settings: parseSetting made them strings.
  if (config['baseURL'] !== undefined) checkUrl('baseURL', config['baseURL'] as string, 'ANTHROPIC_BASE_URL');
  checkUrl('redisUrl', config['redisUrl'] as string, 'REDIS_URL');

  const key = env['ANTHROPIC_API_KEY'];
  const webhook = env['ALERT_WEBHOOK_URL'];
  if (webhook) checkUrl('alertWebhookUrl', webhook, 'ALERT_WEBHOOK_URL');
  return {
    ...(config as Omit<ClaudeBatchConfig, 'apiKey' | 'alertWebhookUrl'>),
    apiKey: key !== undefined && key.trim() !== '' ? new Secret(key.trim()) : undefined,
    alertWebhookUrl: webhook ? new Secret(webhook) : undefined,
  };
}

function parseSetting(name: string, spec: SettingSpec, raw: unknown, source: string): unknown {
  const shown = JSON.stringify(typeof raw === 'string' && raw.length > 60 ? `${raw.slice(0, 57)}...` : raw);
  switch (spec.kind) {
    case 'int': {
      const value =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && /^-?\d+$/.test(raw.trim())
            ? Number(raw)
            : NaN;
      if (!Number.isSafeInteger(value)) {
        throw new ConfigError(
          name,
          source,
          `expected a whole number${spec.unit ? ` (${spec.unit})` : ''}, got ${shown}`,
        );
      }
      if (spec.min !== undefined && value < spec.min) {
        throw new ConfigError(
          name,
          source,
          `must be at least ${spec.min}${spec.unit ? ` ${spec.unit}` : ''}, got ${value}`,
        );
      }
      return value;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new ConfigError(name, source, `expected true or false, got ${shown}`);
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
      return items.map((item) => item.trim()).filter((item) => item.length > 0);
    }
    case 'usd': {
      const value =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && raw.trim() !== ''
            ? Number(raw.trim())
            : NaN;
      if (!Number.isFinite(value) || value <= 0) {
        throw new ConfigError(
          name,
          source,
          `expected a positive number of US dollars (e.g. 25 or 0.5), got ${shown} (${typeof raw})`,
        );
      }
      return value;
    }
    case 'string': {
      if (typeof raw !== 'string') throw new ConfigError(name, source, `expected a string, got ${shown}`);
      return raw;
    }
  }
}

function checkPrefix(prefix: string): string {
  try {
    return normalizePrefix(prefix);
  } catch (err) {
    throw new ConfigError('prefix', 'CLAUDE_BATCH_PREFIX', (err as Error).message);
  }
}

function checkUrl(name: string, value: string, source: string): void {
  try {
    new URL(value);
  } catch {
    // The value may carry a password (redis://:pw@host): never echo it.
    throw new ConfigError(name, source, 'is not a valid URL');
  }
}
