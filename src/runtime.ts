import { Queue } from 'bullmq';
import type { ClaudeBatchConfig } from './config/load-config.js';
import { createLogger, type Logger } from './logger.js';
import { createRedis, waitForRedis, type RedisClient } from './redis/connection.js';
import {
  DEAD_LETTER_QUEUE,
  REQUESTS_QUEUE,
  type DeadLetterEntry,
  type RequestJobData,
} from './queue/jobs.js';
import { KeyLayout } from './redis/keys.js';
import { BatchStore } from './store/batch-store.js';

/**
 * The connections and handles every command shares: one Redis connection, both queues, the store.
 * Members marked internal are left out of the package's types: a script passes the runtime to the
 * library's functions and closes it, and never needs Redis keys or queues of its own.
 */
export interface Runtime {
  /** The configuration it was opened with. */
  readonly config: ClaudeBatchConfig;
  /** @internal */
  redis: RedisClient;
  /** @internal */
  keys: KeyLayout;
  /** @internal */
  store: BatchStore;
  /** @internal */
  requests: Queue<RequestJobData>;
  /** @internal */
  deadLetters: Queue<DeadLetterEntry>;
  /** Where the runner's own log lines go. */
  readonly logger: Logger;
  /**
   * Stops what was started on this runtime and lets the process exit: first the workers
   * `startWorker` started on it (each as its own `close()` does: in-flight requests finish within
   * the grace period, the rest go back to the queue), then the queues and the Redis connection.
   * Safe to call twice; call it in a `finally`.
   */
  close(): Promise<void>;
  /**
   * @internal
   * Runs `stop` when the runtime closes, before its connection goes (a worker started on it).
   */
  onClose(stop: () => Promise<void>): void;
}

export interface OpenRuntimeOptions {
  /** Default: JSON lines on stderr (readable text on a terminal) at the config's `logLevel`. */
  logger?: Logger | undefined;
  /** Fail with a RedisUnavailableError if Redis does not answer this fast (ms). Default 10,000. */
  connectTimeoutMs?: number | undefined;
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
  const stops = new Set<() => Promise<void>>();
  let closing: Promise<void> | undefined;
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
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...stops].map((stop) => stop()));
        await Promise.allSettled([requests?.close(), deadLetters?.close()]);
        redis.disconnect();
      })();
      return closing;
    },
    onClose(stop) {
      stops.add(stop);
    },
  };
}
