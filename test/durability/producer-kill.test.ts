/**
 * Promise 2: a submit killed midway and run again enqueues every request exactly once, end to end:
 * the batch is worked to completion with one results line per custom_id and one successful call
 * per prompt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { canaryField } from '../../src/queue/canary.js';
import { SHARE_REASON } from '../../src/queue/holds.js';
import { MODEL } from '../helpers/batch.js';
import {
  batchIdOf,
  callsByRequest,
  durabilityEnv,
  newPrefix,
  request,
  Sandbox,
  tallyResults,
  waitFor,
  waitForEnded,
} from './helpers.js';

let sandbox: Sandbox;
let emulator: EmulatorHandle;

beforeAll(async () => {
  sandbox = await Sandbox.start('producer');
  emulator = await startEmulator({ seed: 2, latency: { fixedMs: 5 } });
});

afterAll(async () => {
  await sandbox?.dispose();
  await emulator?.close();
});

describe('the producer killed mid-submit', () => {
  it('run again: the batch completes with no duplicate and nothing missing, each prompt sent once', async () => {
    const TOTAL = 1_000;
    const requests = Array.from({ length: TOTAL }, (_, i) => request(`p-${i}`, `Producer item ${i}`));
    const prefix = newPrefix('producer');
    // Chunks of 5: the submit commits 200 times, so a kill lands between two of them.
    const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
      CLAUDE_BATCH_CHUNK_SIZE: '5',
      CLAUDE_BATCH_CONCURRENCY: '8',
    });
    const file = await sandbox.writeJsonl('producer.jsonl', requests);
    const runtime = await sandbox.runtime(prefix);

    // Workers run throughout: they work the first chunks while the submit is still enqueuing.
    const workers = [sandbox.spawn(['worker'], env), sandbox.spawn(['worker'], env)];
    for (const w of workers) await w.waitForLog(/"msg":"worker started"/);

    const submit = sandbox.spawn(['submit', file], env);
    const batchId = await waitFor(
      'the batch id on stderr',
      () => /batch (batch_[0-9a-f]{24}): enqueuing/.exec(submit.stderr)?.[1],
      20_000,
      5,
    );
    // Committed requests, and requests written for the batch (held, or jobs BullMQ holds): more
    // written than committed means a chunk was added and not yet committed, the window a kill
    // should hit.
    const bull = (list: string) => `${runtime.keys.bullPrefix}:requests:${list}`;
    const { keys } = runtime;
    const progress = async () => {
      const replies = (await runtime.redis
        .multi()
        .hget(keys.batch(batchId), 'enqueued')
        .llen(bull('wait'))
        .llen(bull('active'))
        .zcard(bull('delayed'))
        .zcard(bull('completed'))
        .zcard(bull('prioritized'))
        .hlen(keys.held(batchId, SHARE_REASON))
        .hlen(keys.held(batchId, canaryField(MODEL)))
        .hlen(keys.dispatching(batchId))
        .exec())!.map(([, v]) => Number(v));
      const [committed = 0, ...lists] = replies;
      return { committed, jobs: lists.reduce((a, b) => a + b, 0) };
    };
    // Past the first 50 requests, kill at the first look that finds a chunk added but not committed
    // (or, failing that within 2 s, at once).
    await waitFor('some chunks enqueued', async () => (await progress()).committed >= 50, 20_000, 1);
    const aimUntil = Date.now() + 2_000;
    await waitFor(
      'a chunk added but not committed',
      async () => {
        const p = await progress();
        return p.jobs > p.committed || Date.now() > aimUntil;
      },
      5_000,
      0,
    );
    expect(await submit.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    const { committed: before, jobs } = await progress();
    const uncommitted = jobs - before;
    expect(before).toBeGreaterThanOrEqual(50);
    expect(before).toBeLessThan(TOTAL);
    expect(await runtime.store.get(batchId)).toMatchObject({ submit_state: 'submitting' });

    const again = await sandbox.cli(['submit', file], env);
    expect(again.code).toBe(0);
    expect(batchIdOf(again)).toBe(batchId);
    expect(again.stderr).toMatch(/resumed/);

    const ended = await waitForEnded(runtime, batchId, 90_000);
    for (const w of workers) expect(await w.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(ended.request_counts).toMatchObject({ processing: 0, succeeded: TOTAL, errored: 0, canceled: 0 });
    expect(ended.total).toBe(TOTAL);

    const results = await sandbox.cli(['results', batchId, '--order', 'input'], env);
    const tally = tallyResults(results.stdout);
    expect(tally.size).toBe(TOTAL);
    expect([...tally.keys()]).toEqual(requests.map((r) => r.custom_id));
    for (const [id, t] of tally) expect(t, id).toEqual({ lines: 1, type: 'succeeded', errorType: undefined });
    expect(new Set(await runtime.redis.lrange(runtime.keys.ids(batchId), 0, -1)).size).toBe(TOTAL);
    expect(await runtime.redis.llen(runtime.keys.ids(batchId))).toBe(TOTAL);

    // No worker died: every prompt was sent exactly once, and answered.
    const calls = callsByRequest(emulator, requests);
    const notOnce = [...calls].filter(([, c]) => c.calls !== 1 || c.ok !== 1);
    expect(notOnce).toEqual([]);
    console.log(
      `[durability] producer-kill: submit killed after ${before} of ${TOTAL} committed ` +
        `(${uncommitted} more jobs added but not committed); resumed; ` +
        `${TOTAL} prompts each sent once`,
    );
  });
});
