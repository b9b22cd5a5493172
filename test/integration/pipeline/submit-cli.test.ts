import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cliEnv, runCli, spawnCli } from '../../helpers/cli.js';
import { deletePrefix, REDIS_URL, uniquePrefix } from '../../helpers/runtime.js';

const MODEL = 'claude-haiku-4-5';
let dir: string;
let redis: Redis;
const prefixes: string[] = [];

function line(id: string, text = `Say hi to ${id}`): string {
  return JSON.stringify({
    custom_id: id,
    params: { model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: text }] },
  });
}

function prefix(name: string): string {
  const p = uniquePrefix(name);
  prefixes.push(p);
  return p;
}

async function keysUnder(p: string): Promise<string[]> {
  return redis.keys(`${p}:*`);
}

/**
 * Requests enqueued: jobs waiting (a model's canary), plus requests held (behind the canary, or for
 * their batch's share: entries of the batch's hold hashes, one per job id).
 */
async function queued(p: string): Promise<number> {
  let held = 0;
  for (const key of await redis.keys(`${p}:cb:batch:*:held:*`)) held += await redis.hlen(key);
  return (await redis.llen(`${p}:requests:wait`)) + (await redis.zcard(`${p}:requests:delayed`)) + held;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-submit-'));
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  for (const p of prefixes) await deletePrefix(p);
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
});

describe('claude-batch submit', () => {
  it('prints the batch id alone on the last stdout line and records the batch', async () => {
    const file = join(dir, 'ok.jsonl');
    await writeFile(file, ['', line('a'), line('b'), `${line('c')}\r`, ''].join('\n'));
    const p = prefix('submit-ok');
    const res = await runCli(['submit', file], cliEnv({ CLAUDE_BATCH_PREFIX: p }));
    expect(res.code).toBe(0);
    const id = res.stdout.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^batch_[0-9a-f]{24}$/);
    expect(res.stderr).toContain(id);
    expect(await redis.hget(`${p}:cb:batch:${id}`, 'total')).toBe('3');
    expect(await redis.lrange(`${p}:cb:batch:${id}:ids`, 0, -1)).toEqual(['a', 'b', 'c']);
  });

  it('submitting the same file twice enqueues nothing new', async () => {
    const file = join(dir, 'twice.jsonl');
    await writeFile(file, Array.from({ length: 50 }, (_, i) => line(`r${i}`)).join('\n'));
    const p = prefix('submit-twice');
    const env = cliEnv({ CLAUDE_BATCH_PREFIX: p });
    const first = await runCli(['submit', file], env);
    const second = await runCli(['submit', file], env);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const id = first.stdout.trim();
    expect(second.stdout.trim()).toBe(id);
    expect(second.stderr).toMatch(/resumed, 0 of 50 requests enqueued now/);
    expect(await queued(p)).toBe(50);
    // The canary: one request of the model goes first, the rest are held.
    expect(await redis.llen(`${p}:requests:wait`)).toBe(1);
    expect(await redis.llen(`${p}:cb:batch:${id}:ids`)).toBe(50);
  });

  it('the same --batch-id with different content is an error', async () => {
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    await writeFile(a, line('x'));
    await writeFile(b, line('y'));
    const p = prefix('submit-conflict');
    const env = cliEnv({ CLAUDE_BATCH_PREFIX: p });
    expect((await runCli(['submit', a, '--batch-id', 'mine'], env)).code).toBe(0);
    const res = await runCli(['submit', b, '--batch-id', 'mine'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/batch mine already exists with different content/);
  });

  it('malformed files exit 2 with FILE:LINE: field: reason and write no key', async () => {
    const file = join(dir, 'bad.jsonl');
    const bad = [
      line('fine'),
      '{"custom_id": "broken", ',
      JSON.stringify({ params: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] } }),
      line('fine'),
      JSON.stringify({
        custom_id: 'has space',
        params: { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
      }),
      JSON.stringify({ custom_id: 'noparams' }),
      JSON.stringify({
        custom_id: 'types',
        params: { model: MODEL, max_tokens: 'ten', messages: [{ role: 'user', content: 'x' }] },
      }),
    ];
    const bytes = Buffer.concat([
      Buffer.from(bad.join('\n') + '\n'),
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]),
    ]);
    await writeFile(file, bytes);
    const p = prefix('submit-bad');
    const res = await runCli(['submit', file, '--max-errors', '0'], cliEnv({ CLAUDE_BATCH_PREFIX: p }));
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    const errors = res.stderr.trim().split('\n');
    const at = (n: number) => errors.filter((e) => e.startsWith(`${file}:${n}: `));
    expect(at(2)[0]).toMatch(/: json: /);
    expect(at(3)[0]).toMatch(/: custom_id: /);
    expect(at(4)[0]).toMatch(/: custom_id: .*duplicate.*line 1/i);
    expect(at(5)[0]).toMatch(/: custom_id: /);
    expect(at(6)[0]).toMatch(/: params: /);
    expect(at(7)[0]).toMatch(/: params\.max_tokens: /);
    expect(at(8)[0]).toMatch(/: encoding: /);
    expect(at(1)).toEqual([]);
    expect(errors.at(-1)).toMatch(/7 invalid lines/);
    expect(await keysUnder(p)).toEqual([]);
  });

  it('reads standard input with -', async () => {
    const p = prefix('submit-stdin');
    const res = await runCli(
      ['submit', '-'],
      cliEnv({ CLAUDE_BATCH_PREFIX: p }),
      [line('s1'), line('s2')].join('\n'),
    );
    expect(res.code).toBe(0);
    const id = res.stdout.trim();
    expect(await redis.hget(`${p}:cb:batch:${id}`, 'total')).toBe('2');
  });

  it('a submit killed midway and run again completes the batch without duplicates', async () => {
    const total = 30_000;
    const file = join(dir, 'big.jsonl');
    await writeFile(file, Array.from({ length: total }, (_, i) => line(`k${i}`)).join('\n'));
    const p = prefix('submit-kill');
    const env = cliEnv({ CLAUDE_BATCH_PREFIX: p, CLAUDE_BATCH_CHUNK_SIZE: '200' });
    const child = spawnCli(['submit', file], env);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    // Kill it once some, but not all, chunks are in.
    let id: string | undefined;
    await vi.waitFor(
      async () => {
        id ??= /batch (batch_[0-9a-f]{24}): enqueuing/.exec(stderr)?.[1];
        expect(id, stderr).toBeDefined();
        expect(Number(await redis.hget(`${p}:cb:batch:${id}`, 'enqueued'))).toBeGreaterThan(0);
      },
      { timeout: 45_000, interval: 25 }, // a loaded machine may take a while to start the CLI
    );
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    expect(id).toBeDefined();
    const before = Number(await redis.hget(`${p}:cb:batch:${id}`, 'enqueued'));
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(total);

    const again = await runCli(['submit', file], env);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(id);
    expect(await redis.hget(`${p}:cb:batch:${id}`, 'submit_state')).toBe('submitted');
    expect(await queued(p)).toBe(total);
    const ids = await redis.lrange(`${p}:cb:batch:${id}:ids`, 0, -1);
    expect(ids.length).toBe(total);
    expect(new Set(ids).size).toBe(total);
  });
});
