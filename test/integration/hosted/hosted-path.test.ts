import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getBreakerState } from '../../../src/breakers/breaker-state.js';
import { replyFingerprint } from '../../../src/emulator/index.js';
import { Chunks } from '../../../src/hosted/chunks.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { getBatchStatus } from '../../../src/operations/batch-status.js';
import { cancelBatch } from '../../../src/operations/cancel-batch.js';
import { deleteBatch } from '../../../src/operations/delete-batch.js';
import { retryDeadLetters } from '../../../src/operations/dlq-retry.js';
import { resumeBatch } from '../../../src/operations/resume-batch.js';
import { settleChunk } from '../../../src/operations/settle-chunk.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request, resultsById, type TestRequest } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

/** A current model (older ones draw SDK deprecation warnings). */
const MODEL = 'claude-sonnet-4-6';

let rig: WorkerRig | undefined;

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

function requests(n: number, prefix = 'q'): TestRequest[] {
  return Array.from({ length: n }, (_, i) =>
    request(`${prefix}-${i}`, `Question ${prefix} ${i}?`, { model: MODEL }),
  );
}

async function lines(batchId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of rig!.runtime.store.results(batchId)) out.push(line);
  return out;
}

/**
 * The state a worker leaves when it dies between recording a chunk's intent and recording its
 * hosted id: the batch submitted `--via batches` without a canary, all of it packed into chunk 1,
 * the chunk `creating` (with `marker` as its marker request, when given).
 */
async function interruptedCreate(all: TestRequest[], marker?: string) {
  const submitted = await submitBatch(rig!.runtime, {
    input: jsonlSource(all),
    via: 'batches',
    canary: false,
  });
  const chunks = new Chunks(rig!.runtime);
  const chunk = await chunks.open(submitted.batchId);
  await chunks.packPage(submitted.batchId, chunk.n, { maxRequests: 100, maxBytes: 1e9 });
  const packed = (await chunks.get(submitted.batchId, chunk.n))!;
  await chunks.update(
    submitted.batchId,
    { ...packed, state: 'creating', intent_at: Date.now(), ...(marker ? { marker } : {}) },
    'packing',
  );
  return { submitted, chunks, chunk };
}

describe('--via batches', () => {
  it('sends the canary live and the rest in hosted batches split by count, each created once by one of two workers', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-split',
      emulator: { batchesStartDelayMs: 0, batchesProcessingMs: 1 },
      overrides: { hostedPollMs: '50', hostedPollMaxMs: '200', hostedMaxRequests: '101' },
    });
    const all = requests(301);
    const submitted = await submitBatch(rig.runtime, { input: jsonlSource(all), via: 'batches' });
    // Two worker processes: one of them works the batch's chunks (its lock), none twice.
    await rig.startWorker();
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 301, processing: 0, errored: 0 });
    const results = resultsById(await lines(submitted.batchId));
    expect(results.size).toBe(301);
    for (const q of all) expect(results.get(q.custom_id)?.type).toBe('succeeded');
    // The canary went live; the other 300 in hosted batches of at most 100.
    const stats = rig.emulator.control.stats();
    expect(stats.hostedBatches.created).toBe(3);
    const record = await rig.runtime.store.get(submitted.batchId);
    expect(record?.served).toEqual({ live: 1, hosted: 300 });
    expect(record?.usage_hosted.output_tokens).toBeGreaterThan(0);
    const chunks = await new Chunks(rig.runtime).all(submitted.batchId);
    expect(chunks.map((c) => [c.state, c.count])).toEqual([
      ['done', 100],
      ['done', 100],
      ['done', 100],
    ]);
  }, 90_000);
});

/** Hosted batches that start at once and take 1 ms a request; the runner polls every 50 ms. */
const FAST_HOSTED = { batchesStartDelayMs: 0, batchesProcessingMs: 1 };
const FAST_POLLS = { hostedPollMs: '50', hostedPollMaxMs: '200' };

describe('hosted batches: splitting, refusals and outcomes', () => {
  it('splits by size at the configured limit, and waits out a 429 on create', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-bytes',
      // Two hosted batches may wait at the API at once: the third create is refused until one ends.
      emulator: { ...FAST_HOSTED, batchesProcessingMs: 20, batchesQueueLimit: 150 },
      overrides: { ...FAST_POLLS, hostedMaxBytes: '15000' },
    });
    const all = requests(241, 'size');
    const submitted = await submitBatch(rig.runtime, { input: jsonlSource(all), via: 'batches' });
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(status.request_counts.succeeded).toBe(241);
    const chunks = await new Chunks(rig.runtime).all(submitted.batchId);
    // Every chunk within the byte limit, more than one of them, all 240 packed once.
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(c.bytes).toBeLessThanOrEqual(15_000);
    expect(chunks.reduce((n, c) => n + c.count, 0)).toBe(240);
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(chunks.length);
    expect(rig.logger.lines.some((l) => l['msg'] === 'hosted batch create refused; trying again later')).toBe(
      true,
    );
    expect(resultsById(await lines(submitted.batchId)).size).toBe(241);
  }, 90_000);

  it('ends requests the API did not process in time as expired, counted as such', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-expired',
      // Each request takes 50 ms and the batch expires after 500 ms: most expire.
      emulator: { batchesStartDelayMs: 0, batchesProcessingMs: 50, batchesExpiryMs: 500 },
      overrides: FAST_POLLS,
    });
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(41, 'exp')),
      via: 'batches',
    });
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    const c = status.request_counts;
    expect(c.expired).toBeGreaterThan(20);
    expect(c.succeeded + c.expired).toBe(41);
    const results = resultsById(await lines(submitted.batchId));
    expect([...results.values()].filter((r) => r.type === 'expired').length).toBe(c.expired);
  }, 60_000);

  it('sends expired requests again while the deadline is ahead', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-expired-again',
      emulator: { batchesStartDelayMs: 0, batchesProcessingMs: 50, batchesExpiryMs: 500 },
      overrides: FAST_POLLS,
    });
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(41, 'again')),
      via: 'batches',
      deadline: '10m',
    });
    await rig.startWorker();
    const chunks = new Chunks(rig.runtime);
    // The first hosted batch expires most of its requests; they go out again in the next ones.
    await vi.waitFor(async () => expect((await chunks.all(submitted.batchId)).length).toBeGreaterThan(1), {
      timeout: 20_000,
      interval: 50,
    });
    rig.emulator.control.setBatches({ expiryMs: 3_600_000 });
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 41, expired: 0 });
    expect(resultsById(await lines(submitted.batchId)).size).toBe(41);
  }, 90_000);

  it('cancel: the hosted batch is canceled and its unprocessed requests end canceled', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-cancel',
      // A hosted batch that starts in an hour: nothing is processed before the cancel.
      emulator: { batchesStartDelayMs: 3_600_000, batchesProcessingMs: 1 },
      overrides: FAST_POLLS,
    });
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(51, 'cx')),
      via: 'batches',
    });
    await rig.startWorker();
    const chunks = new Chunks(rig.runtime);
    await vi.waitFor(async () => expect((await chunks.all(submitted.batchId))[0]?.state).toBe('created'), {
      timeout: 20_000,
      interval: 50,
    });
    const canceled = await cancelBatch(rig.runtime, submitted.batchId);
    // The 50 in the hosted batch are in flight: they end with the hosted batch's results.
    expect(canceled.inFlight).toBe(50);
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 1, canceled: 50, processing: 0 });
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(1);
    expect((await chunks.all(submitted.batchId))[0]).toMatchObject({ state: 'done', cancel_sent: true });
  }, 60_000);

  it('delete: its hosted batches are canceled, then deleted at the API once ended', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-delete',
      emulator: { batchesStartDelayMs: 3_600_000, batchesProcessingMs: 1 },
      overrides: FAST_POLLS,
    });
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource(requests(31, 'del')),
      via: 'batches',
    });
    await rig.startWorker();
    const chunks = new Chunks(rig.runtime);
    await vi.waitFor(async () => expect((await chunks.all(submitted.batchId))[0]?.state).toBe('created'), {
      timeout: 20_000,
      interval: 50,
    });
    await deleteBatch(rig.runtime, submitted.batchId);
    await vi.waitFor(() => expect(rig!.emulator.control.stats().hostedBatches.deleted).toBe(1), {
      timeout: 20_000,
      interval: 50,
    });
    expect(await rig.runtime.redis.hlen(rig.runtime.keys.hostedTrash())).toBe(0);
    expect(await rig.runtime.redis.exists(rig.runtime.keys.chunks(submitted.batchId))).toBe(0);
  }, 60_000);
});

describe('hosted batches: breakers, deadlines and crashes', () => {
  it('credits exhausted in hosted lines trip the key breaker and stop new chunks; top-up and the fix finish it', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-credits',
      // 20 credits: the live canary and 19 hosted requests, then the balance is empty.
      emulator: { ...FAST_HOSTED, credits: { balance: 20 } },
      overrides: { ...FAST_POLLS, hostedMaxRequests: '40' },
    });
    const all = requests(81, 'cr');
    const submitted = await submitBatch(rig.runtime, { input: jsonlSource(all), via: 'batches' });
    await rig.startWorker();
    const keyBreaker = async () => (await getBreakerState(rig!.runtime)).key;
    await vi.waitFor(async () => expect((await keyBreaker())?.condition).toBe('billing'), {
      timeout: 30_000,
      interval: 100,
    });
    // The chunk that met the empty balance has come back; no chunk is created while paused.
    const chunks = new Chunks(rig.runtime);
    await vi.waitFor(
      async () => expect((await chunks.all(submitted.batchId)).every((c) => c.state === 'done')).toBe(true),
      { timeout: 20_000, interval: 100 },
    );
    const createdWhilePaused = rig.emulator.control.stats().hostedBatches.created;
    const paused = await getBatchStatus(rig.runtime, submitted.batchId);
    expect(paused?.processing_status).toBe('paused');
    expect(paused?.request_counts.errored).toBe(0);
    expect((await keyBreaker())?.fix).toContain('dlq retry --type billing_error');
    // A few rounds of the runner: still nothing created.
    await rig.workers[0]!.hosted!.tick();
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(createdWhilePaused);

    rig.emulator.control.topUp(1_000);
    const retried = await retryDeadLetters(rig.runtime, { type: 'billing_error' });
    expect(retried.resumed).toBe(true);
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 81, errored: 0 });
    expect(resultsById(await lines(submitted.batchId)).size).toBe(81);
    expect(rig.hooks.some((h) => h['event'] === 'key_breaker_tripped')).toBe(true);
  }, 90_000);

  it('--via auto: when the deadline nears, the hosted remainder is canceled and finished live, each request once', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-auto',
      // The hosted batch would start in an hour: only the live path can meet the deadline.
      emulator: { batchesStartDelayMs: 3_600_000, batchesProcessingMs: 1 },
      // Planned live rate 10/s and 1 s from cancel to end: 61 requests switch ~7 s before the deadline.
      overrides: { ...FAST_POLLS, autoLiveRpm: '600', hostedCancelMs: '1000' },
    });
    const all = requests(61, 'auto');
    const deadline = Date.now() + 12_000;
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource(all),
      via: 'auto',
      deadline: new Date(deadline),
      routePlan: { liveRatePerSec: 10, cancelToEndMs: 1_000 },
    });
    expect((await rig.runtime.store.get(submitted.batchId))?.route).toBe('hosted');
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(Date.now()).toBeLessThan(deadline);
    expect(status.request_counts).toMatchObject({ succeeded: 61, canceled: 0 });
    const record = await rig.runtime.store.get(submitted.batchId);
    expect(record).toMatchObject({ route: 'live', served: { live: 61, hosted: 0 } });
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(1);
    // No request ended twice, none answered twice.
    await rig.expectAllSucceededOnce(submitted.batchId, all);
  }, 60_000);

  it('adopts the one hosted batch that matches a create interrupted after its intent', async () => {
    rig = await WorkerRig.start({ name: 'hosted-adopt', emulator: FAST_HOSTED, overrides: FAST_POLLS });
    const all = requests(20, 'adopt');
    // A worker packed a chunk, recorded its intent, sent the create and died before recording the id.
    const marker = 'cb-chunk-0123456789abcdef';
    const { submitted, chunks, chunk } = await interruptedCreate(all, marker);
    expect((await chunks.get(submitted.batchId, chunk.n))?.count).toBe(20);
    const client = new Anthropic({ apiKey: rig.apiKey, baseURL: rig.emulator.url });
    const markerRequest = {
      custom_id: marker,
      params: { model: MODEL, max_tokens: 1, messages: [{ role: 'user', content: '.' }] },
    };
    // Another batch of the workspace, of another size, is not a candidate.
    await client.messages.batches.create({ requests: [...all.slice(0, 3), markerRequest] as never });
    const created = await client.messages.batches.create({ requests: [...all, markerRequest] as never });

    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(status.request_counts.succeeded).toBe(20);
    expect(await chunks.get(submitted.batchId, chunk.n)).toMatchObject({
      hosted_id: created.id,
      adopted: true,
    });
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(2);
  }, 60_000);

  it("never takes another client's hosted batch of the same file: its marker differs, the chunk is held", async () => {
    // Found by the durability suite: another runner of the workspace (the same eval file on another
    // model: the same custom_ids and count) created its hosted batch while this chunk's create was
    // interrupted before it was sent. It matches by count and time, but not by marker.
    rig = await WorkerRig.start({ name: 'hosted-foreign', emulator: FAST_HOSTED, overrides: FAST_POLLS });
    const mine = requests(20, 'mine');
    const { submitted, chunks, chunk } = await interruptedCreate(mine, 'cb-chunk-aaaaaaaaaaaaaaaa');
    const theirs = mine.map((q) => ({
      ...q,
      params: { ...q.params, messages: [{ role: 'user', content: `theirs ${q.custom_id}` }] },
    }));
    const client = new Anthropic({ apiKey: rig.apiKey, baseURL: rig.emulator.url });
    const foreign = await client.messages.batches.create({
      requests: [
        ...theirs,
        {
          custom_id: 'cb-chunk-bbbbbbbbbbbbbbbb',
          params: { model: MODEL, max_tokens: 1, messages: [{ role: 'user', content: '.' }] },
        },
      ] as never,
    });
    await rig.startWorker();
    await vi.waitFor(async () => expect((await chunks.get(submitted.batchId, chunk.n))?.state).toBe('held'), {
      timeout: 20_000,
      interval: 50,
    });
    const held = (await chunks.get(submitted.batchId, chunk.n))!;
    expect(held).toMatchObject({
      hosted_id: foreign.id,
      held: { reason: expect.stringContaining('marker') as string },
    });
    // Nothing of theirs was written as ours.
    expect(await lines(submitted.batchId)).toEqual([]);
    await settleChunk(rig.runtime, submitted.batchId, chunk.n, { notCreated: true });
    await waitForBatch(rig.runtime, submitted.batchId, { pollMs: 100, signal: AbortSignal.timeout(30_000) });
    // Every line answers its own prompt (the emulator's reply carries the prompt's fingerprint).
    for (const line of await lines(submitted.batchId)) {
      const parsed = JSON.parse(line) as { custom_id: string };
      const asked = mine.find((q) => q.custom_id === parsed.custom_id)!;
      expect(line).toContain(replyFingerprint(asked.params));
    }
    expect((await rig.runtime.store.get(submitted.batchId))?.counts.succeeded).toBe(20);
  }, 60_000);

  it('holds a chunk no hosted batch matches, and creates it once the operator says none was', async () => {
    rig = await WorkerRig.start({ name: 'hosted-held', emulator: FAST_HOSTED, overrides: FAST_POLLS });
    const all = requests(12, 'held');
    const { submitted, chunks, chunk } = await interruptedCreate(all);
    await rig.startWorker();
    await vi.waitFor(async () => expect((await chunks.get(submitted.batchId, chunk.n))?.state).toBe('held'), {
      timeout: 20_000,
      interval: 50,
    });
    const held = (await chunks.get(submitted.batchId, chunk.n))!;
    expect(held.held?.fix).toContain(`claude-batch hosted settle ${submitted.batchId} ${chunk.n}`);
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(0);
    await settleChunk(rig.runtime, submitted.batchId, chunk.n, { notCreated: true });
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(status.request_counts.succeeded).toBe(12);
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(1);
  }, 60_000);

  it('a model whose live canary failed is not sent hosted: its requests are stopped by its breaker', async () => {
    rig = await WorkerRig.start({ name: 'hosted-model', emulator: FAST_HOSTED, overrides: FAST_POLLS });
    const retired = requests(10, 'old').map((q) => ({ ...q, params: { ...q.params, model: 'claude-2.0' } }));
    const fine = requests(10, 'new');
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource([...retired, ...fine]),
      via: 'batches',
    });
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 10, errored: 10 });
    expect(status.errored_by_condition['model']).toBe(10);
    // Only the good model's 9 went hosted: one hosted batch, none of the retired model's requests in it.
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(1);
    expect((await rig.runtime.store.get(submitted.batchId))?.served.hosted).toBe(9);
  }, 60_000);

  it('dlq retry --via batches sends dead-lettered requests through the hosted API', async () => {
    rig = await WorkerRig.start({ name: 'hosted-dlq', emulator: FAST_HOSTED, overrides: FAST_POLLS });
    // A retired model: the canary fails, its model's breaker stops the rest.
    const all = requests(15, 'dlq').map((q) => ({ ...q, params: { ...q.params, model: 'claude-2.0' } }));
    const submitted = await submitBatch(rig.runtime, { input: jsonlSource(all) });
    await rig.startWorker();
    await waitForBatch(rig.runtime, submitted.batchId, { pollMs: 100, signal: AbortSignal.timeout(30_000) });
    const retried = await retryDeadLetters(rig.runtime, { model: MODEL, via: 'batches' });
    expect(retried.requeued).toBe(15);
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 15, errored: 0 });
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(1);
    expect((await rig.runtime.store.get(submitted.batchId))?.served.hosted).toBe(15);
  }, 60_000);
});

describe('hosted batches under a cost ceiling', () => {
  it('reserve each chunk at the hosted price, pause at the ceiling, and finish after resume --max-cost', async () => {
    rig = await WorkerRig.start({ name: 'hosted-ceiling', emulator: FAST_HOSTED, overrides: FAST_POLLS });
    const all = requests(201, 'cost');
    // Worst case at the hosted price: ~32 output tokens at $15/M, halved: ~$0.00024 a request, so
    // $0.02 fits about 80 of the 200 hosted ones at their worst.
    const submitted = await submitBatch(rig.runtime, {
      input: jsonlSource(all),
      via: 'batches',
      maxCost: 0.02,
    });
    await rig.startWorker();
    await vi.waitFor(
      async () =>
        expect((await rig!.runtime.store.get(submitted.batchId))?.pauses['cost_ceiling']).toBeDefined(),
      { timeout: 30_000, interval: 100 },
    );
    const paused = (await rig.runtime.store.get(submitted.batchId))!;
    expect(paused.cost!.spent + paused.cost!.reserved).toBeLessThanOrEqual(paused.cost!.ceiling!);
    expect(paused.counts.succeeded).toBeGreaterThan(50);
    expect(paused.counts.succeeded).toBeLessThan(201);
    // Chunks cut to what fits: none bigger than the ceiling allows at its worst.
    const chunks = await new Chunks(rig.runtime).all(submitted.batchId);
    expect(chunks.length).toBeGreaterThan(0);
    await resumeBatch(rig.runtime, submitted.batchId, { maxCost: 10 });
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(30_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 201, errored: 0 });
    expect(resultsById(await lines(submitted.batchId)).size).toBe(201);
  }, 60_000);
});

describe('a create the API refuses for good', () => {
  it('halves the chunk until the API takes it (a limit below ours), none lost, none twice', async () => {
    rig = await WorkerRig.start({
      name: 'hosted-refused',
      // The API takes at most 30 requests a batch; the runner was told 101.
      emulator: { ...FAST_HOSTED, batchesMaxRequests: 30 },
      overrides: { ...FAST_POLLS, hostedMaxRequests: '101' },
    });
    const all = requests(101, 'half');
    const submitted = await submitBatch(rig.runtime, { input: jsonlSource(all), via: 'batches' });
    await rig.startWorker();
    const status = await waitForBatch(rig.runtime, submitted.batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(60_000),
    });
    expect(status.request_counts).toMatchObject({ succeeded: 101, errored: 0 });
    const chunks = await new Chunks(rig.runtime).all(submitted.batchId);
    const created = chunks.filter((c) => c.hosted_id);
    // Every hosted batch within the API's limit, its marker included; each request in one of them.
    for (const c of created) expect(c.count + 1).toBeLessThanOrEqual(30);
    expect(created.reduce((n, c) => n + c.count, 0)).toBe(100);
    expect(rig.emulator.control.stats().hostedBatches.created).toBe(created.length);
    await rig.expectAllSucceededOnce(submitted.batchId, all);
  }, 60_000);
});
