/**
 * The worker warns at start when Redis is set up to lose the runner's state: an eviction policy
 * other than noeviction, or no persistence at all. A private Redis with `--maxmemory-policy
 * allkeys-lru` and neither AOF nor snapshots must draw both warnings, each naming the risk and the fix;
 * a Redis set up as docker-compose.yml sets it up draws none.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../src/devtools/private-redis.js';
import { CliProcess, durabilityEnv, newPrefix } from './helpers.js';

const servers: PrivateRedis[] = [];

afterAll(async () => {
  for (const s of servers) await s.stop({ signal: 'SIGKILL', removeDir: true });
});

async function workerWarnings(redis: PrivateRedis): Promise<string[]> {
  // Nothing queued: `--until-idle` starts, looks twice, and exits.
  const worker = new CliProcess(
    ['worker', '--until-idle'],
    durabilityEnv(redis.url, newPrefix('health'), null, { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' }),
  );
  expect(await worker.exited).toEqual({ code: 0, signal: null });
  return worker
    .logLines()
    .filter((l) => l['level'] === 'warn')
    .map((l) => String(l['msg']));
}

describe('Redis durability warnings at worker start', () => {
  it('allkeys-lru and no persistence: both warnings, naming the risk', async () => {
    // Later arguments win: these override the helper's noeviction (and it starts without AOF).
    const redis = await startPrivateRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    servers.push(redis);
    const warnings = await workerWarnings(redis);
    expect(warnings).toHaveLength(2);
    const eviction = warnings.find((w) => /maxmemory-policy/.test(w));
    const persistence = warnings.find((w) => /persistence is off/.test(w));
    expect(eviction).toMatch(/maxmemory-policy is allkeys-lru, not noeviction/);
    expect(eviction).toMatch(/evict queued requests, results or counts/);
    expect(eviction).toMatch(/Set maxmemory-policy noeviction/);
    expect(persistence).toMatch(/a Redis restart loses every queued request, result and count/);
    expect(persistence).toMatch(/appendonly yes/);
  });

  it('noeviction with AOF (as in docker-compose.yml): no warning', async () => {
    const redis = await startPrivateRedis({ appendonly: true });
    servers.push(redis);
    expect(await workerWarnings(redis)).toEqual([]);
  });
});
