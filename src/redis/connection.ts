import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';

/** A connection the runner and BullMQ share: one Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /**
   * `redis://[[user]:password@]host:port[/db]`. When `clusterNodes` is non-empty only its
   * credentials (and `rediss:` for TLS) are used, for every node of the cluster.
   */
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
      // BullMQ reads maxRetriesPerRequest (must be null) from here on a Cluster.
      redisOptions: { ...clusterCredentials(options.url), ...common },
      clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    });
  }
  return new Redis(options.url, common);
}

/** The URL with any password replaced, for messages. */
function describeRedis(options: RedisConnectionOptions): string {
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
              (options.clusterNodes.length > 0
                ? 'Check REDIS_CLUSTER_NODES (host:port of nodes of one cluster; a password goes in REDIS_URL) and that the cluster says cluster_state:ok.'
                : 'Start one (`redis-server`, or `docker compose up -d redis`) or set REDIS_URL.'),
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

/**
 * The connections to run a per-node command on: every primary of a Cluster (SCAN, KEYS, CONFIG,
 * DBSIZE and INFO answer for one node only), or the single connection itself. On a Cluster, call
 * it once the client is ready (after {@link waitForRedis}): before, the node list may be empty.
 */
export function primaries(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/**
 * Deletes every key matching a SCAN pattern, on every primary of a Cluster; returns how many. One
 * UNLINK per key, pipelined on the node that holds it: a multi-key DEL across hash slots is
 * refused (CROSSSLOT) on a Cluster even when one node holds all of them.
 */
export async function deleteKeys(client: RedisClient, pattern: string): Promise<number> {
  let deleted = 0;
  for (const node of primaries(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = node.pipeline();
      for (const key of keys) pipeline.unlink(key);
      for (const [err, n] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        deleted += Number(n);
      }
    } while (cursor !== '0');
  }
  return deleted;
}

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/**
 * What a cluster's nodes take from REDIS_URL: its user and password (a cluster needs them on every
 * node, and REDIS_CLUSTER_NODES lists bare host:port) and TLS for `rediss:`. Host, port and db are
 * not used (a cluster has db 0 only).
 */
function clusterCredentials(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return {};
  }
  const out: RedisOptions = {};
  if (parsed.username) out.username = decodeURIComponent(parsed.username);
  if (parsed.password) out.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') out.tls = {};
  return out;
}

function splitHostPort(node: string): [string, number] {
  const at = node.lastIndexOf(':');
  const port = Number(node.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0) {
    throw new Error(`REDIS_CLUSTER_NODES: expected host:port, got ${JSON.stringify(node)}`);
  }
  return [node.slice(0, at), port];
}
