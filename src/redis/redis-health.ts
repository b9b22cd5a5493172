import { primaries, type RedisClient } from './connection.js';

/**
 * Settings of the Redis server that put the runner's promises at risk, as sentences for the
 * worker's start-up log. On a Cluster every primary is asked (CONFIG answers for one node only),
 * and a warning names the nodes it applies to unless it applies to all. A managed Redis may
 * refuse CONFIG: then nothing can be said.
 */
export async function redisDurabilityWarnings(redis: RedisClient): Promise<string[]> {
  const nodes = primaries(redis);
  const byWarning = new Map<string, string[]>();
  for (const node of nodes) {
    for (const warning of await nodeWarnings(node)) {
      const list = byWarning.get(warning) ?? [];
      list.push(`${node.options.host ?? '?'}:${node.options.port ?? '?'}`);
      byWarning.set(warning, list);
    }
  }
  return [...byWarning].map(([warning, where]) =>
    where.length === nodes.length || nodes.length === 1 ? warning : `${warning} (on ${where.join(', ')})`,
  );
}

async function nodeWarnings(redis: RedisClient): Promise<string[]> {
  const warnings: string[] = [];
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const [, appendonly] = (await redis.config('GET', 'appendonly')) as string[];
    const [, save] = (await redis.config('GET', 'save')) as string[];
    if (policy !== undefined && policy !== 'noeviction') {
      warnings.push(
        `Redis maxmemory-policy is ${policy}, not noeviction: under memory pressure Redis may evict queued requests, results or counts, and they would be lost silently. Set maxmemory-policy noeviction.`,
      );
    }
    if (appendonly !== 'yes' && (save === undefined || save.trim() === '')) {
      warnings.push(
        'Redis persistence is off (appendonly no, no save points): a Redis restart loses every queued request, result and count. Set appendonly yes and appendfsync everysec.',
      );
    } else if (appendonly !== 'yes') {
      warnings.push(
        'Redis runs without AOF (snapshots only): a Redis crash loses the work since the last snapshot. Set appendonly yes and appendfsync everysec.',
      );
    }
  } catch {
    // CONFIG is disabled on some managed services; their persistence is theirs to state.
  }
  return warnings;
}
