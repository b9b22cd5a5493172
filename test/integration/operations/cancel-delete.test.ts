import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { replyFingerprint, startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { cancelBatch } from '../../../src/operations/cancel-batch.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { SHARE_REASON } from '../../../src/queue/holds.js';
import { deleteBatch } from '../../../src/operations/delete-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { jsonlSource, request, resultsById, type TestRequest } from '../../helpers/batch.js';
import { cliEnv, runCli } from '../../helpers/cli.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';
import { dispatchAll } from '../../helpers/dispatch.js';

let emulator: EmulatorHandle;
let runtime: Runtime;
let worker: ClaudeWorker | undefined;

beforeEach(async () => {
  emulator = await startEmulator({ seed: 7, latency: { fixedMs: 300 } });
  runtime = await testRuntime('cancel-delete', { concurrency: '4' });
});

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await disposeRuntime(runtime);
  await emulator.close();
});

async function work(): Promise<void> {
  const apiKey = new Secret('sk-test-cancel-delete-key');
  worker = await startWorker(runtime, {
    apiKey,
    client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 10_000 }),
  });
}

const sentMessages = () => emulator.control.log().filter((e) => e.path === '/v1/messages');

async function lines(batchId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of runtime.store.results(batchId)) out.push(line);
  return out;
}

/** Waits (with a deadline, not forever: a hang is the bug) until the batch has ended. */
async function ended(batchId: string, timeout = 30_000): Promise<void> {
  await expect
    .poll(async () => (await getBatchStatus(runtime, batchId))?.processing_status, { timeout, interval: 100 })
    .toBe('ended');
}

function cli(args: string[]): ReturnType<typeof runCli> {
  return runCli(args, cliEnv({ CLAUDE_BATCH_PREFIX: runtime.keys.bullPrefix }));
}

function batchOf(n: number, tag: string): TestRequest[] {
  return Array.from({ length: n }, (_, i) => request(`${tag}${i}`, `Question ${tag} ${i}?`));
}

describe('cancel of an id that is not a batch (issue 13, finding 4)', () => {
  it('creates nothing, exits 2, and a batch submitted later under that id runs', async () => {
    const keysBefore = await runtime.redis.keys(`${runtime.keys.bullPrefix}:*`);
    expect(await cancelBatch(runtime, 'later')).toEqual({ existed: false, canceled: 0, inFlight: 0 });
    const run = await cli(['cancel', 'later']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no batch later');
    expect((await runtime.redis.keys(`${runtime.keys.bullPrefix}:cb:batch:*`)).sort()).toEqual([]);
    expect(keysBefore.filter((k) => k.includes(':batch:'))).toEqual([]);

    const requests = batchOf(6, 'l');
    await submitBatch(runtime, { input: jsonlSource(requests), batchId: 'later', canary: false });
    await work();
    await ended('later');
    const status = await getBatchStatus(runtime, 'later');
    expect(status?.request_counts).toMatchObject({ succeeded: 6, canceled: 0, processing: 0 });
    expect(status?.canceled_at).toBeNull();
  });

  it('delete, then cancel of the deleted id (exit 2), then the same file again: the new batch runs', async () => {
    const requests = batchOf(5, 'r');
    const source = () => jsonlSource(requests);
    const { batchId } = await submitBatch(runtime, { input: source() });
    expect((await deleteBatch(runtime, batchId)).existed).toBe(true);
    const run = await cli(['cancel', batchId]);
    expect(run.code).toBe(2);
    expect(await runtime.redis.exists(runtime.keys.batch(batchId))).toBe(0);

    const again = await submitBatch(runtime, { input: source() });
    expect(again).toMatchObject({ batchId, outcome: 'created', enqueued: 5 });
    await work();
    await ended(batchId);
    const results = resultsById(await lines(batchId));
    expect([...results.values()].map((r) => r.type)).toEqual(Array(5).fill('succeeded'));
  });
});

describe('delete while requests are in flight, then the same file again (issue 13, finding 5)', () => {
  it.each([
    ['finish before the resubmit (their completed jobs hold the same ids)', true],
    ['finish after the resubmit (their results would land in the new batch)', false],
  ])('in-flight requests that %s: the new batch ends, every request sent once', async (_, settle) => {
    const requests = batchOf(12, 'f');
    const source = () => jsonlSource(requests);
    const { batchId } = await submitBatch(runtime, { input: source(), canary: false });
    await work();
    await expect
      .poll(() => sentMessages().length, { timeout: 20_000, interval: 20 })
      .toBeGreaterThanOrEqual(4);
    const deleted = await deleteBatch(runtime, batchId);
    expect(deleted.existed).toBe(true);
    const deletedAt = Date.now();
    if (settle) await expect.poll(() => worker!.activeCount, { timeout: 20_000, interval: 20 }).toBe(0);

    const again = await submitBatch(runtime, { input: source(), canary: false });
    expect(again).toMatchObject({ batchId, outcome: 'created', enqueued: 12 });
    await ended(batchId);
    const status = await getBatchStatus(runtime, batchId);
    expect(status?.request_counts).toMatchObject({ succeeded: 12, errored: 0, canceled: 0, processing: 0 });
    const results = resultsById(await lines(batchId));
    expect(results.size).toBe(12);
    for (const r of requests) expect(results.get(r.custom_id)?.type, r.custom_id).toBe('succeeded');
    // The deleted incarnation sent only what was in flight then (all 4 slots were mid-call); the
    // new one sent every request once.
    const sentSince = sentMessages().filter((e) => e.at >= deletedAt);
    for (const r of requests) {
      const hash = replyFingerprint(r.params);
      expect(
        sentSince.filter((e) => e.promptHash === hash),
        r.custom_id,
      ).toHaveLength(1);
    }
    expect(await listDeadLetters(runtime, { batch: batchId })).toEqual([]);
  });
});

describe('delete and cancel: the batch alone, and cheaply', () => {
  it("delete drops the batch's dead-letter entries in one pass and keeps every other batch's", async () => {
    emulator.control.setLatency({ fixedMs: 20 });
    emulator.control.setFaults({ probabilities: { invalid_request_error: 1 } });
    const a = await submitBatch(runtime, { input: jsonlSource(batchOf(5, 'a')), canary: false });
    const b = await submitBatch(runtime, { input: jsonlSource(batchOf(4, 'b')), canary: false });
    await work();
    await ended(a.batchId);
    await ended(b.batchId);
    expect(await listDeadLetters(runtime)).toHaveLength(9);

    expect(await deleteBatch(runtime, a.batchId)).toEqual({
      existed: true,
      removedRequests: 0,
      removedDeadLetters: 5,
    });
    const left = await listDeadLetters(runtime);
    expect(left.map((d) => d.batch_id)).toEqual(Array(4).fill(b.batchId));
    expect(await runtime.redis.llen(`${runtime.keys.bullPrefix}:dead-letter:wait`)).toBe(4);
    expect(await runtime.redis.keys(`${runtime.keys.bullPrefix}:dead-letter:${a.batchId}.*`)).toEqual([]);
  });

  it('a canceled batch held beside a live one: its jobs go at the cancel, none is sent', async () => {
    const live = await submitBatch(runtime, { input: jsonlSource(batchOf(12, 'live')), canary: false });
    const dead = await submitBatch(runtime, { input: jsonlSource(batchOf(500, 'dead')), canary: false });
    // Both held for their share until a worker's dispatcher gives them turns: not jobs yet.
    const share = (id: string) => runtime.keys.held(id, SHARE_REASON);
    expect(await runtime.requests.getJobCounts('wait', 'delayed')).toEqual({ wait: 0, delayed: 0 });
    expect([
      await runtime.redis.hlen(share(live.batchId)),
      await runtime.redis.hlen(share(dead.batchId)),
    ]).toEqual([12, 500]);
    expect(await cancelBatch(runtime, dead.batchId)).toMatchObject({ canceled: 500, inFlight: 0 });
    const wait = `${runtime.keys.bullPrefix}:requests:wait`;
    // The canceled batch holds nothing any more, and is no longer one the dispatcher serves.
    expect(await runtime.redis.exists(share(dead.batchId))).toBe(0);
    expect(await runtime.redis.smembers(runtime.keys.shareBatches())).toEqual([live.batchId]);
    expect(await runtime.redis.hlen(share(live.batchId))).toBe(12);

    await work();
    await ended(live.batchId);
    await expect.poll(() => runtime.redis.llen(wait), { timeout: 20_000, interval: 50 }).toBe(0);
    expect(sentMessages()).toHaveLength(12);
    const status = await getBatchStatus(runtime, dead.batchId);
    expect(status?.request_counts).toMatchObject({ canceled: 500, processing: 0 });
    expect(await runtime.redis.keys(`${runtime.keys.bullPrefix}:requests:${dead.batchId}.*`)).toEqual([]);
  });

  it('a canceled batch already in the queue behind a live one is dropped when the worker reaches it, not job by job', async () => {
    const live = await submitBatch(runtime, { input: jsonlSource(batchOf(12, 'live')), canary: false });
    const dead = await submitBatch(runtime, { input: jsonlSource(batchOf(500, 'dead')), canary: false });
    // Dispatched before the cancel: the live batch first, at the tail (taken first).
    await dispatchAll(runtime, live.batchId);
    await dispatchAll(runtime, dead.batchId);
    expect(await cancelBatch(runtime, dead.batchId)).toMatchObject({ canceled: 500, inFlight: 0 });
    const wait = `${runtime.keys.bullPrefix}:requests:wait`;
    // Nothing could be dropped yet: the live batch's jobs are at the tail.
    expect(await runtime.redis.llen(wait)).toBe(512);

    await work();
    await ended(live.batchId);
    await expect.poll(() => runtime.redis.llen(wait), { timeout: 20_000, interval: 50 }).toBe(0);
    expect(sentMessages()).toHaveLength(12);
    const status = await getBatchStatus(runtime, dead.batchId);
    expect(status?.request_counts).toMatchObject({ canceled: 500, processing: 0 });
    // Jobs a worker took and completed keep their key (BullMQ keeps the last 1,000 completed);
    // jobs the sweep popped have none: all but the first few went that way.
    const keys = await runtime.redis.keys(`${runtime.keys.bullPrefix}:requests:${dead.batchId}.*`);
    expect(keys.length).toBeLessThanOrEqual(20);
  });

  it('a batch submitted again after a delete (incarnation 1): its job ids carry the incarnation, and cancel drops them', async () => {
    const requests = batchOf(30, 'i');
    const { batchId } = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    await deleteBatch(runtime, batchId);
    const wait = `${runtime.keys.bullPrefix}:requests:wait`;
    expect(await runtime.redis.llen(wait)).toBe(0);
    const again = await submitBatch(runtime, { input: jsonlSource(requests), canary: false });
    expect(again.enqueued).toBe(30);
    // Held for the batch's share under the new incarnation's job ids.
    const share = runtime.keys.held(batchId, SHARE_REASON);
    expect(await runtime.redis.hexists(share, `${batchId}.i0.0.1`)).toBe(1);
    expect(await cancelBatch(runtime, batchId)).toEqual({ existed: true, canceled: 30, inFlight: 0 });
    expect(await runtime.redis.llen(wait)).toBe(0);
    expect(await runtime.redis.exists(share)).toBe(0);
    expect(await runtime.redis.keys(`${runtime.keys.bullPrefix}:requests:${batchId}.*`)).toEqual([]);
    expect((await getBatchStatus(runtime, batchId))?.request_counts).toMatchObject({ canceled: 30 });
  });
});
