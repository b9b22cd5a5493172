import { randomBytes } from 'node:crypto';
import { loadConfig, type ClaudeBatchConfig, type ConfigOverrides } from '../../src/config/load-config.js';
import {
  createRedis,
  deleteKeys,
  waitForRedis,
  type RedisClient,
  type RedisConnectionOptions,
} from '../../src/redis/connection.js';
import { budgetKeyPattern } from '../../src/limits/budget-keys.js';
import {
  accountBreakerKey,
  accountConcurrencyClassesKey,
  accountPrefixesKey,
  KeyLayout,
} from '../../src/redis/keys.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { createLogger, silentLogger, type Logger } from '../../src/logger.js';

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

function hashTagOf(prefix: string): string {
  return prefix.replace(/[^A-Za-z0-9-]/g, '');
}

/** A prefix no other test uses, hash-tagged like the runner's. */
export function uniquePrefix(name: string): string {
  return `{cbt-${name}-${randomBytes(4).toString('hex')}}`;
}

export function testConfig(
  prefix: string,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = {},
): ClaudeBatchConfig {
  return loadConfig({
    // A key of its own per prefix: a key-wide trip pauses every prefix of the key, so tests that
    // shared one key would pause each other.
    env: { REDIS_URL, ANTHROPIC_API_KEY: `sk-test-key-for-emulator-${hashTagOf(prefix)}`, ...env },
    overrides: {
      prefix,
      backoffBaseMs: '50',
      backoffMaxMs: '200',
      stalledIntervalMs: '1000',
      lockDurationMs: '2000',
      concurrency: '8',
      ...overrides,
    },
  });
}

export async function testRuntime(
  name: string,
  overrides: ConfigOverrides = {},
  logger: Logger = process.env['TEST_LOG'] ? createLogger({ level: 'debug' }) : silentLogger,
  env: NodeJS.ProcessEnv = {},
): Promise<Runtime> {
  return openRuntime(testConfig(uniquePrefix(name), overrides, env), { logger });
}

/** A logger that keeps every line (JSON objects) for assertions. */
export function captureLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = {
    isTTY: false,
    write(chunk: string) {
      lines.push(JSON.parse(chunk) as Record<string, unknown>);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return Object.assign(createLogger({ level: 'debug', stream, json: true }), { lines });
}

/**
 * Deletes every key under the prefix (BullMQ's and the runner's): on the test Redis, or on the
 * given connection (a Redis Cluster: every primary is scanned).
 */
export async function deletePrefix(
  prefix: string,
  connection: RedisConnectionOptions = { url: REDIS_URL, clusterNodes: [] },
): Promise<void> {
  const redis: RedisClient = createRedis(connection);
  try {
    await waitForRedis(redis, connection, 10_000);
    await forgetAccounts(redis, prefix);
    await deleteKeys(redis, `${prefix}:*`);
  } finally {
    redis.disconnect();
  }
}

/**
 * Takes the prefix out of the key-level records of the API keys its workers used, and deletes
 * those records when no other prefix uses the key any more.
 */
export async function forgetAccounts(redis: RedisClient, prefix: string): Promise<void> {
  const bullPrefix = new KeyLayout(prefix).bullPrefix;
  for (const accountId of await redis.smembers(new KeyLayout(prefix).accounts())) {
    await redis.srem(accountPrefixesKey(accountId), bullPrefix);
    if ((await redis.scard(accountPrefixesKey(accountId))) === 0) {
      await redis.del(accountBreakerKey(accountId), accountConcurrencyClassesKey(accountId));
      await deleteKeys(redis, budgetKeyPattern(accountId));
    }
  }
}

/** Closes the runtime and removes its keys. */
export async function disposeRuntime(runtime: Runtime): Promise<void> {
  const prefix = runtime.keys.bullPrefix;
  await runtime.close();
  await deletePrefix(prefix);
}
