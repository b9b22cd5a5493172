import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { budgetKey } from '../../../src/limits/index.js';
import { createRedis } from '../../../src/redis/connection.js';
import { hashTag, KeyLayout, normalizePrefix } from '../../../src/redis/keys.js';

describe('hash tags (Redis Cluster slots)', () => {
  it("follows Redis's rule: the first '{' and the first '}' after it, non-empty", () => {
    expect(hashTag('{claude-batch}:cb:batch:x')).toBe('claude-batch');
    expect(hashTag('a{b}c{d}')).toBe('b');
    expect(hashTag('{}{b}')).toBeNull();
    expect(hashTag('x}{y}')).toBe('y');
    expect(hashTag('{a{b}')).toBe('a{b');
    expect(hashTag('plain')).toBeNull();
  });

  it('keeps a prefix with a tag, wraps one without, refuses braces that make no tag', () => {
    expect(normalizePrefix('claude-batch')).toBe('{claude-batch}');
    expect(normalizePrefix('{x}y')).toBe('{x}y');
    expect(() => normalizePrefix('{}{x}')).toThrow(/hash tag/);
    expect(() => normalizePrefix('a}b')).toThrow(/hash tag/);
  });

  it("puts every runner key and BullMQ's in the prefix's slot; a budget in its own", () => {
    const keys = new KeyLayout('team-a');
    const all = [
      keys.schema(),
      keys.batches(),
      keys.batch('b'),
      keys.results('b'),
      keys.ids('b'),
      keys.generations('b'),
      keys.keyBreaker(),
      keys.modelBreakers(),
      keys.modelFailures(),
      keys.stats(),
      `${keys.bullPrefix}:requests:delayed`,
    ];
    expect(new Set(all.map(hashTag))).toEqual(new Set(['team-a']));
    expect(hashTag(budgetKey('0123456789abcdef', 'claude-*'))).toBe('cb-budget-0123456789abcdef-claude-%2A');
  });
});

describe('createRedis', () => {
  it('selects cluster mode by clusterNodes, taking only credentials and TLS from the URL', () => {
    const cluster = createRedis(
      { url: 'rediss://user:p%40ss@ignored.example:6380/3', clusterNodes: ['127.0.0.1:1'] },
      { lazyConnect: true },
    );
    try {
      expect(cluster).toBeInstanceOf(Cluster);
      const options = (cluster as Cluster).options.redisOptions ?? {};
      expect(options).toMatchObject({ username: 'user', password: 'p@ss', maxRetriesPerRequest: null });
      expect(options.tls).toBeDefined();
      expect(options).not.toHaveProperty('host');
    } finally {
      cluster.disconnect();
    }
    const single = createRedis({ url: 'redis://127.0.0.1:1', clusterNodes: [] }, { lazyConnect: true });
    expect(single).toBeInstanceOf(Redis);
    single.disconnect();
  });
});
