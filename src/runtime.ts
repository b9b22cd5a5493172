import { Queue } from 'bullmq';
import type { ClaudeBatchConfig } from './config/load-config.js';
import { createLogger, type Logger } from './logger.js';
import { createRedis, waitForRedis, type RedisClient } from './queue/connection.js';
import {
  DEAD_LETTER_QUEUE,
  REQUESTS_QUEUE,
  type DeadLetterEntry,
  type RequestJobData,
} from './queue/jobs.js';
import { KeyLayout } from './queue/keys.js';
import { BatchStore } from './store/batch-store.js';

/** The connections and handles every command shares: one Redis connection, both queues, the store. */
export interface Runtime {
  config: ClaudeBatchConfig;
  redis: RedisClient;
  keys: KeyLayout;
  store: BatchStore;
  requests: Queue<RequestJobData>;
  deadLetters: Queue<DeadLetterEntry>;
  logger: Logger;
  close(): Promise<void>;
}

export interface OpenRuntimeOptions {
  logger?: Logger;
  /** Fail with a clear message if Redis does not answer this fast. Default 10,000 ms. */
  connectTimeoutMs?: number;
}

export async function openRuntime(
  config: ClaudeBatchConfig,
  options: OpenRuntimeOptions = {},
): Promise<Runtime> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const connection = { url: config.redisUrl, clusterNodes: config.redisClusterNodes };
  const redis = createRedis(connection);
  // ioredis reports every failed reconnect as an 'error' event; without a listener Node would
  // print each one. Log the first of a run of failures, then stay quiet until it recovers.
  let down = false;
  let connected = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    const error = (err as NodeJS.ErrnoException).code ?? err.message;
    // Before the first connection nothing was lost: say so, or the message misleads at 2 a.m.
    if (connected) logger.warn('Redis connection lost; retrying', { error });
    else logger.warn('Redis does not answer yet; retrying', { error });
  });
  redis.on('ready', () => {
    if (down && connected) logger.info('Redis connection restored');
    down = false;
    connected = true;
  });
  try {
    await waitForRedis(redis, connection, options.connectTimeoutMs ?? 10_000);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const keys = new KeyLayout(config.prefix);
  const queueOptions = { connection: redis, prefix: keys.bullPrefix };
  // Queues are opened on first use: BullMQ writes its meta key when a Queue starts, and a submit
  // rejected for invalid input must leave no key behind.
  let requests: Queue<RequestJobData> | undefined;
  let deadLetters: Queue<DeadLetterEntry> | undefined;
  const open = <T>(name: string): Queue<T> => {
    const queue = new Queue<T>(name, queueOptions);
    queue.on('error', () => {});
    return queue;
  };
  return {
    config,
    redis,
    keys,
    store: new BatchStore(redis, keys),
    get requests() {
      return (requests ??= open<RequestJobData>(REQUESTS_QUEUE));
    },
    get deadLetters() {
      return (deadLetters ??= open<DeadLetterEntry>(DEAD_LETTER_QUEUE));
    },
    logger,
    async close() {
      await Promise.allSettled([requests?.close(), deadLetters?.close()]);
      redis.disconnect();
    },
  };
}
