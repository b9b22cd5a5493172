import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from '../../../src/devtools/private-cluster.js';
import { replyFingerprint, startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { budgetKeyPattern } from '../../../src/limits/index.js';
import {
  createRedis,
  deleteKeys,
  waitForRedis,
  type RedisConnectionOptions,
} from '../../../src/redis/connection.js';
import { hashTag } from '../../../src/redis/keys.js';
import { Secret } from '../../../src/secret.js';
import { request, resultsById, type TestRequest } from '../../helpers/batch.js';
import { cliEnv, runCli, type CliResult } from '../../helpers/cli.js';
import { deletePrefix, uniquePrefix } from '../../helpers/runtime.js';

/**
 * The runner on a 3-primary Redis Cluster, as on many hosts: submit from one process, two worker
 * processes sharing the queue and the rate budget, status/results/dlq from others. The outcome must
 * be the one a single Redis gives: every request one results line and one call, exact counts, one
 * dead-letter entry, no 429 although the batch needs more than a minute's budget.
 */

const RPM = 240; // 4 requests/s once the bucket is spent
const N = 280; // 240 at once, then 40 at 4/s: about 10 s of throttled sending
const API_KEY = 'sk-test-cluster-key-0001';
const BAD = 'c-bad';

let cluster: PrivateCluster;
let emulator: EmulatorHandle;
const proxies: CountingProxy[] = [];
let dir: string;
const prefix = uniquePrefix('cluster');
let connection: RedisConnectionOptions;

beforeAll(async () => {
  [cluster, emulator, dir] = await Promise.all([
    startPrivateCluster(),
    startEmulator({ seed: 8, limits: { rpm: RPM } }),
    mkdtemp(join(tmpdir(), 'cb-cluster-')),
  ]);
  connection = { url: 'redis://127.0.0.1:6379', clusterNodes: [...cluster.nodes] };
  proxies.push(await countingProxy(emulator.url), await countingProxy(emulator.url));
});

afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
  await emulator?.close();
  // The cluster goes with its keys; still clean up in case another Redis was used by mistake.
  if (cluster) await deletePrefix(prefix, connection).catch(() => {});
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The CLI's environment: cluster mode, with a REDIS_URL nothing listens on (it must not be used). */
function env(baseURL: string): NodeJS.ProcessEnv {
  return cliEnv({
    REDIS_URL: 'redis://127.0.0.1:1',
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    CLAUDE_BATCH_PREFIX: prefix,
    ANTHROPIC_API_KEY: API_KEY,
    ANTHROPIC_BASE_URL: baseURL,
    CLAUDE_BATCH_BACKOFF_BASE_MS: '50',
    CLAUDE_BATCH_BACKOFF_MAX_MS: '200',
  });
}

function ok(res: CliResult, what: string): string {
  if (res.code !== 0) throw new Error(`${what} exited ${res.code}: ${res.stderr}`);
  return res.stdout;
}

describe('claude-batch on a Redis Cluster, two worker processes', () => {
  it('gives the single-Redis outcome, holds the shared budget, and leaves no key behind', async () => {
    const requests: TestRequest[] = Array.from({ length: N }, (_, i) =>
      i === 17
        ? request(BAD, 'Item 17 @@fault:invalid_request_error@@')
        : request(`c-${i}`, `Cluster item ${i}`),
    );
    const file = join(dir, 'prompts.jsonl');
    await writeFile(file, requests.map((r) => JSON.stringify(r)).join('\n') + '\n');

    const submitted = ok(await runCli(['submit', file], env(emulator.url)), 'submit');
    const batchId = submitted.trim().split('\n').at(-1)!;
    expect(batchId).toMatch(/^batch_/);

    // Two worker processes, each through its own counting proxy to the one emulator, one API key,
    // the emulator's RPM as --rpm: the budget in Redis must keep both under it together.
    const workerArgs = ['worker', '--until-idle', '--concurrency', '8', '--rpm', String(RPM)];
    const workers = await Promise.all(proxies.map((p) => runCli(workerArgs, env(p.url))));
    workers.forEach((w, i) => ok(w, `worker ${i + 1}`));
    for (const w of workers) expect(w.stderr).not.toMatch(/"level":"error"/);

    const [statusOut, resultsOut, dlqOut] = await Promise.all([
      runCli(['status', batchId, '--json'], env(emulator.url)),
      runCli(['results', batchId], env(emulator.url)),
      runCli(['dlq', 'list', '--json'], env(emulator.url)),
    ]);

    // Counts exact.
    expect(JSON.parse(ok(statusOut, 'status'))).toMatchObject({
      id: batchId,
      processing_status: 'ended',
      total: N,
      request_counts: { processing: 0, succeeded: N - 1, errored: 1, canceled: 0, expired: 0 },
      errored_by_type: { invalid_request_error: 1 },
    });

    // Every request exactly one results line, each success the reply to its own prompt.
    const results = resultsById(ok(resultsOut, 'results').trim().split('\n'));
    expect(results.size).toBe(N);
    for (const r of requests) {
      const result = results.get(r.custom_id);
      if (r.custom_id === BAD) {
        expect(result).toMatchObject({
          type: 'errored',
          error: { error: { type: 'invalid_request_error' } },
        });
      } else {
        expect(result?.type).toBe('succeeded');
        expect(JSON.stringify(result)).toContain(replyFingerprint(r.params));
      }
    }

    // One dead-letter entry.
    expect(JSON.parse(ok(dlqOut, 'dlq list'))).toEqual([
      expect.objectContaining({
        batch_id: batchId,
        custom_id: BAD,
        status: 400,
        error_type: 'invalid_request_error',
        reason: 'terminal',
        attempts: 1,
      }),
    ]);

    // Sent once each: one log entry per prompt (200, or the one 400), and not a single 429.
    const log = emulator.control.log().filter((e) => e.path === '/v1/messages');
    const stats = emulator.control.stats();
    expect(stats.byStatus['429'] ?? 0).toBe(0);
    expect(log).toHaveLength(N);
    const byHash = new Map<string, number[]>();
    for (const e of log)
      byHash.set(e.promptHash ?? '', [...(byHash.get(e.promptHash ?? '') ?? []), e.status]);
    for (const r of requests) {
      expect(byHash.get(replyFingerprint(r.params))).toEqual([r.custom_id === BAD ? 400 : 200]);
    }
    // Both processes sent a share.
    const shares = proxies.map((p) => p.count());
    expect(shares.every((n) => n > 0)).toBe(true);
    expect(shares[0]! + shares[1]!).toBe(N);

    // Every key of the run carries the prefix's hash tag, the budget's own, or the key-level one
    // (the prefixes that use the key, for the key-wide breaker).
    const accountId = new Secret(API_KEY).fingerprint();
    const keys = await allKeys(cluster);
    expect(keys.some((k) => k.startsWith(`${prefix}:cb:batch:${batchId}`))).toBe(true);
    const tags = new Set(keys.map((k) => hashTag(k)));
    expect([...tags].sort()).toEqual(
      [hashTag(prefix), `cb-budget-${accountId}-default`, `cb-key-${accountId}`].sort(),
    );

    // Clean up what the run made: the batch by the CLI, then the prefix's and the budget's keys.
    ok(await runCli(['delete', batchId], env(emulator.url)), 'delete');
    const admin = createRedis(connection);
    try {
      await waitForRedis(admin, connection, 10_000);
      await deleteKeys(admin, `${prefix}:*`);
      // The bucket, and the input and output limits learned from the API's headers (only RPM is given).
      expect(await deleteKeys(admin, budgetKeyPattern(accountId))).toBe(2);
      expect(await deleteKeys(admin, `{cb-key-${accountId}}:*`)).toBe(1);
    } finally {
      admin.disconnect();
    }
    expect(await allKeys(cluster)).toEqual([]);
  });
});

/** Every key on every node of the cluster (each node answers for its own slots only). */
async function allKeys(c: PrivateCluster): Promise<string[]> {
  const out: string[] = [];
  for (const port of c.ports) {
    const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
    try {
      await node.connect();
      out.push(...(await node.keys('*')));
    } finally {
      node.disconnect();
    }
  }
  return out.sort();
}

interface CountingProxy {
  url: string;
  /** POST /v1/messages requests forwarded. */
  count(): number;
  close(): Promise<void>;
}

/** An HTTP pass-through to the emulator that counts the Messages calls of the one worker using it. */
async function countingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  let calls = 0;
  const server: Server = createServer((req, res) => {
    if (req.method === 'POST' && req.url?.split('?')[0] === '/v1/messages') calls += 1;
    const upstream = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
