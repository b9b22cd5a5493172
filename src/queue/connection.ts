import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';

/** A connection the runner and BullMQ share: one Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`. Ignored when `clusterNodes` is non-empty. */
  url: string;
  /** `host:port` of cluster nodes; non-empty selects cluster mode. */
  clusterNodes: readonly string[];
}

/**
 * Opens a connection that waits out Redis outages instead of failing commands: BullMQ workers
 * require `maxRetriesPerRequest: null`, and a runner that crashes on a Redis restart would need
 * a person at 2 a.m. Reconnects back off to at most 2 s.
 */
export function createRedis(options: RedisConnectionOptions, extra: RedisOptions = {}): RedisClient {
  const common: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    ...extra,
  };
  if (options.clusterNodes.length > 0) {
    const nodes: ClusterNode[] = options.clusterNodes.map((node) => {
      const [host, port] = splitHostPort(node);
      return { host, port };
    });
    return new Cluster(nodes, {
      redisOptions: common,
      clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    });
  }
  return new Redis(options.url, common);
}

/** The URL with any password replaced, for messages. */
export function describeRedis(options: RedisConnectionOptions): string {
  if (options.clusterNodes.length > 0) return `Redis Cluster ${options.clusterNodes.join(',')}`;
  try {
    const url = new URL(options.url);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'the configured REDIS_URL';
  }
}

/**
 * Resolves once Redis answers PING; rejects with a message saying where and how to start one if
 * it does not answer within `timeoutMs`. For commands that should not hang silently at start.
 */
export async function waitForRedis(
  client: RedisClient,
  options: RedisConnectionOptions,
  timeoutMs: number,
): Promise<void> {
  let lastError = '';
  const onError = (err: Error) => {
    lastError = (err as NodeJS.ErrnoException).code ?? err.message;
  };
  client.on('error', onError);
  try {
    const ping = client.ping();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new RedisUnavailableError(
            `Redis does not answer at ${describeRedis(options)}${lastError ? ` (${lastError})` : ''} after ${timeoutMs} ms. ` +
              'Start one (`redis-server`, or `docker compose up -d redis`) or set REDIS_URL.',
          ),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    client.off('error', onError);
  }
}

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

function splitHostPort(node: string): [string, number] {
  const at = node.lastIndexOf(':');
  const port = Number(node.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0) {
    throw new Error(`REDIS_CLUSTER_NODES: expected host:port, got ${JSON.stringify(node)}`);
  }
  return [node.slice(0, at), port];
}
