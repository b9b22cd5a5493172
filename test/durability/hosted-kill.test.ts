/**
 * Issue 14, acceptance: a `claude-batch worker` process SIGKILLed on the hosted path (`--via
 * batches`) during a hosted batch's creation, during its polling and during its results download;
 * a new worker finishes the batch. No hosted batch is created twice (the emulator counts
 * creations), no custom_id is in two hosted batches, every custom_id has exactly one results line,
 * the counts add up and nothing is dead-lettered.
 *
 * Each kill is made deterministic by the emulator's crash windows (docs/emulator.md): a create
 * whose answer is held back after the batch exists, a results download that pauses midway. The
 * killed worker still holds the batch's hosted lock (the job lock duration, src/hosted/hosted-runner.ts), so the
 * new worker takes over once it expires: each case takes about that long.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { Chunks, type ChunkMeta } from '../../src/hosted/chunks.js';
import { getBatchStatus } from '../../src/operations/batch-status.js';
import type { Runtime } from '../../src/runtime.js';
import {
  batchIdOf,
  durabilityEnv,
  newPrefix,
  request,
  Sandbox,
  tallyResults,
  waitFor,
  waitForEnded,
  type CliProcess,
  type TestRequest,
} from './helpers.js';

const MODEL = 'claude-sonnet-4-6';
const KEY = 'sk-test-durability-0000';
/** One canary goes live; the other 1,999 in hosted batches of at most 600: 600, 600, 600, 199. */
const TOTAL = 2_000;
const MAX_REQUESTS = 600;
const CHUNKS = Math.ceil((TOTAL - 1) / MAX_REQUESTS);
/** The new worker waits out the dead one's hosted lock (the job lock duration), then finishes. */
const FINISH_MS = 150_000;

let sandbox: Sandbox;
let emulator: EmulatorHandle | undefined;

beforeAll(async () => {
  sandbox = await Sandbox.start('hosted-kill');
});

afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

afterAll(async () => {
  await sandbox?.dispose();
});

interface Run {
  batchId: string;
  env: NodeJS.ProcessEnv;
  runtime: Runtime;
  chunks: Chunks;
  requests: TestRequest[];
  emulator: EmulatorHandle;
}

/** A fresh emulator (its creation counter is this case's), a 2,000-request batch `--via batches`, one worker. */
async function start(
  name: string,
  options: EmulatorOptions,
  extraEnv: Record<string, string> = {},
): Promise<Run & { worker: CliProcess }> {
  emulator = await startEmulator({ seed: 14, ...options });
  const requests = Array.from({ length: TOTAL }, (_, i) =>
    request(`h-${i}`, `Hosted durability item ${i}`, { model: MODEL }),
  );
  const prefix = newPrefix(name);
  const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
    CLAUDE_BATCH_HOSTED_MAX_REQUESTS: String(MAX_REQUESTS),
    CLAUDE_BATCH_HOSTED_POLL_MS: '100',
    CLAUDE_BATCH_HOSTED_POLL_MAX_MS: '500',
    ...extraEnv,
  });
  const file = await sandbox.writeJsonl(`${name}.jsonl`, requests);
  const batchId = batchIdOf(await sandbox.cli(['submit', file, '--via', 'batches'], env));
  const runtime = await sandbox.runtime(prefix);
  const worker = sandbox.spawn(['worker'], env);
  return { batchId, env, runtime, chunks: new Chunks(runtime), requests, emulator, worker };
}

/** SIGKILLs the worker, then starts another and waits for it to end the batch. */
async function killAndFinish(run: Run, victim: CliProcess, prepare: () => void = () => {}): Promise<void> {
  expect(await victim.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
  prepare();
  const next = sandbox.spawn(['worker'], run.env);
  await waitForEnded(run.runtime, run.batchId, FINISH_MS);
  expect(await next.kill('SIGTERM')).toEqual({ code: 0, signal: null });
}

/** Every hosted batch at the emulator, through the SDK: its id and the custom_ids of its results. */
async function hostedAtEmulator(handle: EmulatorHandle): Promise<Map<string, string[]>> {
  const client = new Anthropic({ apiKey: KEY, baseURL: handle.url, maxRetries: 0 });
  const out = new Map<string, string[]>();
  for await (const batch of client.messages.batches.list({ limit: 100 })) {
    const ids: string[] = [];
    if (batch.processing_status === 'ended') {
      for await (const line of await client.messages.batches.results(batch.id)) ids.push(line.custom_id);
    }
    out.set(batch.id, ids);
  }
  return out;
}

/** What every case asserts once the new worker has ended the batch. */
async function expectExactlyOnce(run: Run): Promise<ChunkMeta[]> {
  // The batch ends with its last line; its chunk is marked done just after.
  const chunks = await waitFor(`all ${CHUNKS} chunks done`, async () => {
    const all = await run.chunks.all(run.batchId);
    return all.length === CHUNKS && all.every((c) => c.state === 'done') ? all : null;
  });
  expect(chunks.reduce((n, c) => n + c.count, 0)).toBe(TOTAL - 1);

  // No hosted batch created twice: one creation per chunk, each chunk its own hosted batch.
  const stats = run.emulator.control.stats();
  expect(stats.hostedBatches.created).toBe(CHUNKS);
  const hostedIds = chunks.map((c) => c.hosted_id);
  expect(new Set(hostedIds).size).toBe(CHUNKS);
  // ...and no custom_id in two of them (the emulator's own view, through the SDK).
  const atEmulator = await hostedAtEmulator(run.emulator);
  expect([...atEmulator.keys()].sort()).toEqual([...hostedIds].sort());
  // Each hosted batch also carries its chunk's marker request (src/hosted/hosted-runner.ts).
  const markers = new Set(chunks.map((c) => c.marker));
  const all = [...atEmulator.values()].flat();
  expect(all.filter((id) => markers.has(id))).toHaveLength(CHUNKS);
  const hostedCustomIds = all.filter((id) => !markers.has(id));
  expect(hostedCustomIds).toHaveLength(TOTAL - 1);
  expect(new Set(hostedCustomIds).size).toBe(TOTAL - 1);
  // The canary alone went live, once.
  const live = run.emulator.control.log().filter((e) => e.path === '/v1/messages');
  expect(live).toHaveLength(1);

  // Every custom_id has exactly one results line; the counts add up; no dead letter.
  const [status, results, dlq] = await Promise.all([
    sandbox.cli(['status', run.batchId, '--json'], run.env),
    sandbox.cli(['results', run.batchId], run.env),
    sandbox.cli(['dlq', 'list', '--batch', run.batchId, '--json'], run.env),
  ]);
  const tally = tallyResults(results.stdout);
  expect(tally.size).toBe(TOTAL);
  for (const r of run.requests)
    expect(tally.get(r.custom_id), r.custom_id).toMatchObject({ lines: 1, type: 'succeeded' });
  expect(JSON.parse(status.stdout)).toMatchObject({
    processing_status: 'ended',
    request_counts: { processing: 0, succeeded: TOTAL, errored: 0, canceled: 0, expired: 0 },
  });
  expect(JSON.parse(dlq.stdout)).toEqual([]);
  const record = await run.runtime.store.get(run.batchId);
  expect(record?.served).toEqual({ live: 1, hosted: TOTAL - 1 });
  return chunks;
}

describe('a worker SIGKILLed on the hosted path; a new worker finishes the batch', () => {
  it('during creation (the emulator created the hosted batch, its answer not sent yet): adopted, not created again', async () => {
    // The answer to each create is held 2 s after the batch exists: the window of a crash.
    const run = await start('hosted-kill-create', {
      batchesStartDelayMs: 200,
      batchesProcessingMs: 1,
      batchesCreateReplyDelayMs: 2_000,
    });
    // Chunk 2's intent is recorded and the emulator has its batch (chunk 1 is claimed already, with
    // the same request count: adoption must tell them apart).
    await waitFor(
      'chunk 2 in state creating, its hosted batch created at the emulator',
      async () =>
        (await run.chunks.get(run.batchId, 2))?.state === 'creating' &&
        run.emulator.control.stats().hostedBatches.created === 2,
      60_000,
      20,
    );
    const before = await run.chunks.all(run.batchId);
    expect(before.map((c) => c.state)).toEqual(['created', 'creating']);
    await killAndFinish(run, run.worker, () => run.emulator.control.setBatches({ createReplyDelayMs: 0 }));

    const chunks = await expectExactlyOnce(run);
    expect(chunks.map((c) => c.adopted === true)).toEqual([false, true, false, false]);
  }, 240_000);

  it('no kill: every create times out after the emulator created its batch; each is adopted at once, none created twice', async () => {
    // The same window without a crash: the create call gives up (1.5 s) before the answer (3 s).
    const run = await start(
      'hosted-timeout-create',
      { batchesStartDelayMs: 200, batchesProcessingMs: 1, batchesCreateReplyDelayMs: 3_000 },
      { CLAUDE_BATCH_REQUEST_TIMEOUT_MS: '1500' },
    );
    await waitForEnded(run.runtime, run.batchId, FINISH_MS);
    expect(await run.worker.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    const chunks = await expectExactlyOnce(run);
    expect(chunks.every((c) => c.adopted === true)).toBe(true);
  }, 240_000);

  it('during polling (hosted batches created and in progress): polled on by the new worker, none created again', async () => {
    // 600 requests at 75 ms each: a chunk runs ~45 s, past the new worker's takeover (a lock's life).
    const run = await start('hosted-kill-poll', { batchesStartDelayMs: 500, batchesProcessingMs: 75 });
    await waitFor(
      `all ${CHUNKS} chunks created, in progress at the emulator, and polled`,
      async () => {
        const chunks = await run.chunks.all(run.batchId);
        const polled = run.emulator.control
          .log()
          .some((e) => e.method === 'GET' && e.path.startsWith('/v1/messages/batches/msgbatch'));
        return (
          chunks.length === CHUNKS &&
          chunks.every((c) => c.state === 'created') &&
          run.emulator.control.stats().hostedBatches.inProgress === CHUNKS &&
          polled
        );
      },
      60_000,
    );
    await killAndFinish(run, run.worker);
    const status = await getBatchStatus(run.runtime, run.batchId);
    expect(status?.request_counts.succeeded).toBe(TOTAL);
    const chunks = await expectExactlyOnce(run);
    expect(chunks.every((c) => !c.adopted)).toBe(true);
  }, 240_000);

  it('during the results download (some lines written, the stream paused): resumed without losing or duplicating a line', async () => {
    // Each download pauses after 550 lines: the runner writes its first page of 500, then waits.
    const run = await start('hosted-kill-download', {
      batchesStartDelayMs: 200,
      batchesProcessingMs: 1,
      batchesResultsPauseAfterLines: 550,
      batchesResultsPauseMs: 600_000,
    });
    const during = await waitFor(
      'a chunk ended with some of its lines written',
      async () => {
        const status = await getBatchStatus(run.runtime, run.batchId);
        const ended = (await run.chunks.all(run.batchId)).filter((c) => c.state === 'ended');
        const succeeded = status?.request_counts.succeeded ?? 0;
        return ended.length > 0 && succeeded > 1 ? { succeeded, ended } : null;
      },
      60_000,
      20,
    );
    // The canary and one page of one chunk: some lines written, not all.
    expect(during.succeeded).toBeGreaterThan(1);
    expect(during.succeeded).toBeLessThan(1 + MAX_REQUESTS);
    await killAndFinish(run, run.worker, () =>
      run.emulator.control.setBatches({ resultsPauseAfterLines: null }),
    );
    await expectExactlyOnce(run);
  }, 240_000);
});
