/**
 * Promise 7: the API key goes to the API and nowhere else. A full run with a recognisable canary
 * key through worker processes (a dead-lettered request, retried ones, a key-wide breaker tripped
 * and `dlq retry`), then every place the key could leak is searched for it, as text, hex and
 * base64: every key name and every value of the whole Redis (type-aware: strings, hashes, lists,
 * sets, sorted sets, streams; the rate limiter's keys included), the AOF on disk, the worker's
 * stdout and stderr, the results, the dead-letter entries and every CLI output.
 * (Dashboard responses are covered by the dashboard's own tests.)
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { getBreakerState } from '../../src/breakers/breaker-state.js';
import { Secret } from '../../src/secret.js';
import {
  batchIdOf,
  durabilityEnv,
  newPrefix,
  request,
  Sandbox,
  tallyResults,
  waitFor,
  waitForEnded,
} from './helpers.js';

const CANARY_KEY = `sk-ant-canary-${randomBytes(16).toString('hex')}`;
const NEEDLES = [
  Buffer.from(CANARY_KEY),
  Buffer.from(Buffer.from(CANARY_KEY).toString('hex')),
  Buffer.from(Buffer.from(CANARY_KEY).toString('hex').toUpperCase()),
  Buffer.from(Buffer.from(CANARY_KEY).toString('base64')),
  // The random part alone, in case the key were ever shortened or split at its prefix.
  Buffer.from(CANARY_KEY.slice('sk-ant-canary-'.length)),
];

let sandbox: Sandbox;
let emulator: EmulatorHandle;

beforeAll(async () => {
  // AOF on: the file on disk keeps every write ever made, deleted values included.
  sandbox = await Sandbox.start('secrets', { appendonly: true });
  // Only the canary key is accepted, so the workers provably sent it.
  emulator = await startEmulator({ seed: 7, apiKeys: [CANARY_KEY], latency: { fixedMs: 20 } });
});

afterAll(async () => {
  await sandbox?.dispose();
  await emulator?.close();
});

function leaks(where: string, data: Buffer | string): string[] {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return NEEDLES.filter((n) => buf.includes(n)).map(
    (n) => `${where}: contains ${n.toString().slice(0, 24)}...`,
  );
}

/** Every key of the Redis and its value, type by type, as raw bytes. */
async function dumpRedis(url: string): Promise<Array<{ key: Buffer; type: string; parts: Buffer[] }>> {
  const redis = new Redis(url);
  try {
    const out: Array<{ key: Buffer; type: string; parts: Buffer[] }> = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scanBuffer(cursor, 'COUNT', 1000);
      cursor = String(next);
      for (const key of keys) {
        const type = await redis.type(key);
        let parts: Buffer[] = [];
        if (type === 'string') parts = [(await redis.getBuffer(key)) ?? Buffer.alloc(0)];
        else if (type === 'hash') parts = await redis.hgetallBuffer(key).then(flattenHash);
        else if (type === 'list') parts = await redis.lrangeBuffer(key, 0, -1);
        else if (type === 'set') parts = await redis.smembersBuffer(key);
        else if (type === 'zset') parts = await redis.zrangeBuffer(key, 0, -1, 'WITHSCORES');
        else if (type === 'stream') {
          const entries = await redis.xrangeBuffer(key, '-', '+');
          parts = entries.flatMap(([id, fields]) => [id, ...fields]);
        } else throw new Error(`unexpected key type ${type} of ${key.toString()}`);
        out.push({ key, type, parts });
      }
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

function flattenHash(hash: Record<string, Buffer>): Buffer[] {
  return Object.entries(hash).flatMap(([field, value]) => [Buffer.from(field), value]);
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('secret hygiene', () => {
  it('after a full run with a canary key, the key is nowhere: Redis keys and values, AOF, logs, results, DLQ, CLI output', async () => {
    const requests = [
      request('s-0', 'The canary request'),
      ...Array.from({ length: 8 }, (_, i) => request(`s-ok-${i}`, `Secret hygiene item ${i}`)),
      request('s-invalid', 'Dead-lettered for good @@fault:invalid_request_error@@'),
      request('s-retry', 'Retried once @@fault:overloaded_error:1@@'),
      request('s-rate', 'Rate limited once @@fault:rate_limit_error:1:1@@'),
      // Trips the key-wide breaker (pausing the queue); `dlq retry` sends it again.
      request('s-auth', 'Refused once @@fault:authentication_error:1@@'),
    ];
    const prefix = newPrefix('secrets');
    const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
      ANTHROPIC_API_KEY: CANARY_KEY,
      CLAUDE_BATCH_CONCURRENCY: '3',
      // A shared budget, so the rate limiter writes its keys too.
      CLAUDE_BATCH_RPM: '6000',
      CLAUDE_BATCH_ITPM: '1000000',
      CLAUDE_BATCH_LOG_LEVEL: 'debug',
    });
    const file = await sandbox.writeJsonl('secrets.jsonl', requests);
    const outputs: Array<[string, string]> = [];
    const cli = async (args: string[]) => {
      const res = await sandbox.cli(args, env);
      outputs.push([`${args.join(' ')} stdout`, res.stdout], [`${args.join(' ')} stderr`, res.stderr]);
      return res;
    };
    const batchId = batchIdOf(await cli(['submit', file]));
    const runtime = await sandbox.runtime(prefix);

    const worker = sandbox.spawn(['worker'], env);
    // The key-wide breaker: s-auth dead-lettered, the queue paused. (The batch itself may have
    // ended meanwhile, if s-auth was the last request to finish.)
    await waitFor(
      'the key-wide breaker to pause the queue',
      async () =>
        (await getBreakerState(runtime)).key?.reason === 'key_breaker' && (await runtime.requests.isPaused()),
      30_000,
      100,
    );
    const dlqBefore = await cli(['dlq', 'list', '--json']);
    expect(JSON.parse(dlqBefore.stdout)).toContainEqual(
      expect.objectContaining({ custom_id: 's-auth', error_type: 'authentication_error' }),
    );
    await cli(['status', batchId]);
    const retried = await cli(['dlq', 'retry', '--type', 'authentication_error']);
    expect(retried.stdout.trim()).toBe('1');
    await waitForEnded(runtime, batchId, 60_000);
    expect(await worker.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    outputs.push(['worker stdout', worker.stdout], ['worker stderr', worker.stderr]);

    const status = await cli(['status', batchId, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: requests.length - 1, errored: 1 },
      errored_by_type: { invalid_request_error: 1 },
    });
    const results = await cli(['results', batchId]);
    const tally = tallyResults(results.stdout);
    expect(tally.size).toBe(requests.length);
    expect(tally.get('s-invalid')).toMatchObject({ type: 'errored' });
    expect(tally.get('s-auth')).toMatchObject({ type: 'succeeded' });
    const dlq = await cli(['dlq', 'list', '--json']);
    expect(JSON.parse(dlq.stdout)).toEqual([expect.objectContaining({ custom_id: 's-invalid' })]);
    await cli(['dlq', 'list']);
    await cli(['status', '--json']);
    // The worker really went through the breaker, the retries and the dead letter.
    expect(worker.stderr).toMatch(/key_breaker_tripped/);
    expect(worker.stderr).toMatch(/request dead-lettered/);
    expect(emulator.control.stats().byErrorType).toMatchObject({
      overloaded_error: 1,
      rate_limit_error: 1,
      authentication_error: 1,
      invalid_request_error: 1,
    });

    const found: string[] = [];
    for (const [where, text] of outputs) found.push(...leaks(where, text));

    const dump = await dumpRedis(sandbox.redis.url);
    const fingerprint = new Secret(CANARY_KEY).fingerprint();
    // The scan saw the runner's keys, BullMQ's (streams included) and the rate limiter's.
    expect(dump.some((d) => d.key.toString().startsWith(`${prefix}:cb:batch:`))).toBe(true);
    expect(dump.some((d) => d.type === 'stream')).toBe(true);
    expect(dump.some((d) => d.key.toString().includes(fingerprint))).toBe(true);
    for (const { key, type, parts } of dump) {
      found.push(...leaks(`key name ${key.toString()}`, key));
      for (const part of parts) found.push(...leaks(`${type} ${key.toString()}`, part));
    }
    // The AOF keeps every write, including values deleted since.
    const aofFiles = await filesUnder(sandbox.redis.dir);
    expect(aofFiles.length).toBeGreaterThan(0);
    for (const f of aofFiles) found.push(...leaks(`file ${f}`, await readFile(f)));

    expect(found).toEqual([]);
    console.log(
      `[durability] secret-hygiene: ${dump.length} Redis keys (${[...new Set(dump.map((d) => d.type))].join(', ')}), ` +
        `${aofFiles.length} AOF files, ${outputs.length} outputs searched; canary key found nowhere`,
    );
  });

  it('the search itself finds the key planted in a key name or in any type of value, as text, hex or base64', async () => {
    const redis = new Redis(sandbox.redis.url);
    const hex = Buffer.from(CANARY_KEY).toString('hex');
    const b64 = Buffer.from(CANARY_KEY).toString('base64');
    const planted = [
      '{planted}:string',
      '{planted}:hash',
      '{planted}:list',
      '{planted}:set',
      '{planted}:zset',
    ];
    try {
      await redis.set(planted[0]!, `x${CANARY_KEY}x`);
      await redis.hset(planted[1]!, 'field', hex);
      await redis.rpush(planted[2]!, 'a', b64);
      await redis.sadd(planted[3]!, hex.toUpperCase());
      await redis.zadd(planted[4]!, 1, CANARY_KEY.slice('sk-ant-canary-'.length));
      await redis.xadd('{planted}:stream', '*', 'k', CANARY_KEY);
      await redis.set(`{planted}:name:${CANARY_KEY}`, 'v');
      const dump = await dumpRedis(sandbox.redis.url);
      const hits = new Set<string>();
      for (const { key, type, parts } of dump) {
        if (leaks('', key).length > 0) hits.add('key name');
        for (const part of parts) if (leaks('', part).length > 0) hits.add(type);
      }
      expect([...hits].sort()).toEqual(['hash', 'key name', 'list', 'set', 'stream', 'string', 'zset']);
    } finally {
      const keys = await redis.keys('{planted}:*');
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
