import { Redis, type RedisOptions } from 'ioredis';
import { budgetKeyPattern } from '../../../src/limits/index.js';

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** An account id no other test uses (budget keys are per account). */
export function uniqueAccount(tag: string): string {
  return `t${tag}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** A connection like the worker's: commands wait out an outage. */
export function connect(url: string = REDIS_URL, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(50 * attempt, 500),
    ...extra,
  });
}

/** Redis's clock, in ms. */
export async function redisTime(client: Redis): Promise<number> {
  const [s, us] = await client.time();
  return Number(s) * 1000 + Number(us) / 1000;
}

/** Deletes every budget key of the account. */
export async function deleteBudgetKeys(client: Redis, accountId: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', budgetKeyPattern(accountId), 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.del(...keys);
  } while (cursor !== '0');
  return deleted;
}
