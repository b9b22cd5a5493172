/**
 * Regressions of the hosted path (src/hosted/, issue 14) found while testing its durability, each
 * reproduced with real `claude-batch worker` processes on the emulator; each says what went wrong
 * before and what is expected.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { Chunks } from '../../src/hosted/chunks.js';
import { getBatchStatus } from '../../src/operations/batch-status.js';
import type { Runtime } from '../../src/runtime.js';
import {
  batchIdOf,
  durabilityEnv,
  newPrefix,
  request,
  Sandbox,
  waitFor,
  waitForEnded,
  type TestRequest,
} from './helpers.js';

const MODEL = 'claude-sonnet-4-6';
const KEY = 'sk-test-durability-0000';
/** Past the dead worker's hosted lock (the job lock duration) with room to act. */
const TAKEOVER_MS = 60_000;

let sandbox: Sandbox;
const emulators: EmulatorHandle[] = [];

beforeAll(async () => {
  sandbox = await Sandbox.start('hosted-bugs');
});

afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.close()));
});

afterAll(async () => {
  await sandbox?.dispose();
});

async function emulatorWith(options: EmulatorOptions): Promise<EmulatorHandle> {
  const handle = await startEmulator({ seed: 41, ...options });
  emulators.push(handle);
  return handle;
}

function requests(n: number, tag: string, model = MODEL): TestRequest[] {
  return Array.from({ length: n }, (_, i) => request(`b-${i}`, `${tag} item ${i}`, { model }));
}

interface Batch {
  batchId: string;
  env: NodeJS.ProcessEnv;
  runtime: Runtime;
  chunks: Chunks;
}

/** Submits `--via batches --no-canary` (every request hosted) under a fresh prefix. */
async function submit(
  name: string,
  items: TestRequest[],
  url: string,
  extra: Record<string, string> = {},
): Promise<Batch> {
  const prefix = newPrefix(name);
  const env = durabilityEnv(sandbox.redis.url, prefix, null, {
    ANTHROPIC_BASE_URL: url,
    CLAUDE_BATCH_HOSTED_POLL_MS: '100',
    CLAUDE_BATCH_HOSTED_POLL_MAX_MS: '500',
    ...extra,
  });
  const file = await sandbox.writeJsonl(`${name}.jsonl`, items);
  const batchId = batchIdOf(await sandbox.cli(['submit', file, '--via', 'batches', '--no-canary'], env));
  const runtime = await sandbox.runtime(prefix);
  return { batchId, env, runtime, chunks: new Chunks(runtime) };
}

describe('hosted path regressions', () => {
  it('SIGTERM while a results download is stalled: the worker exits within its grace period', async () => {
    // ClaudeWorker.close() awaits HostedRunner.stop(), which awaits the round under way with no
    // bound; a download waiting for its next lines (or a create uploading, up to the 10 min request
    // timeout) holds the stop, and the BullMQ worker is not even closed meanwhile. Expected: the
    // grace period bounds it (the download resumes elsewhere, idempotently, as after a SIGKILL).
    const GRACE_MS = 2_000;
    const emulator = await emulatorWith({
      batchesStartDelayMs: 0,
      batchesProcessingMs: 0,
      batchesResultsPauseAfterLines: 10,
      batchesResultsPauseMs: 120_000,
    });
    const batch = await submit('bug-sigterm', requests(50, 'Stalled'), emulator.url, {
      CLAUDE_BATCH_GRACE_PERIOD_MS: String(GRACE_MS),
    });
    const worker = sandbox.spawn(['worker'], batch.env);
    await waitFor('the results download under way', () =>
      emulator.control.log().some((e) => e.path.endsWith('/results') && e.status === 200),
    );
    const t0 = Date.now();
    worker.child.kill('SIGTERM');
    // Generous: the grace period plus the process's own shutdown.
    await waitFor('the worker to exit after SIGTERM', () => !worker.running, GRACE_MS + 10_000, 100);
    expect(Date.now() - t0).toBeLessThan(GRACE_MS + 10_000);
  }, 60_000);

  it('a crash between claiming the hosted id and recording the chunk created: the chunk adopts its own hosted batch', async () => {
    // recordCreated() writes the claim (hosted:ids id → batch:n) first, then the chunk's state. A
    // SIGKILL between the two leaves the chunk `creating` with its hosted batch claimed by itself;
    // adopt() skips every claimed id, so it finds no candidate and holds the chunk saying "it was
    // probably not created" (an operator who believes it and settles --not-created pays twice).
    // This test makes the state such a crash leaves (the window is one Redis round trip: too small
    // to hit with a signal): the worker is killed while the emulator holds the create's answer,
    // then the claim recordCreated would have written is written. Expected: the chunk is adopted.
    const emulator = await emulatorWith({
      batchesStartDelayMs: 0,
      batchesProcessingMs: 1,
      batchesCreateReplyDelayMs: 60_000,
    });
    const batch = await submit('bug-claim', requests(40, 'Claimed'), emulator.url);
    const worker = sandbox.spawn(['worker'], batch.env);
    await waitFor(
      'chunk 1 creating, its hosted batch created at the emulator',
      async () =>
        (await batch.chunks.get(batch.batchId, 1))?.state === 'creating' &&
        emulator.control.stats().hostedBatches.created === 1,
    );
    await worker.kill('SIGKILL');
    const client = new Anthropic({ apiKey: KEY, baseURL: emulator.url, maxRetries: 0 });
    const [hosted] = (await client.messages.batches.list()).data;
    await batch.runtime.redis.hset(batch.runtime.keys.hostedIds(), hosted!.id, `${batch.batchId}:1`);
    emulator.control.setBatches({ createReplyDelayMs: 0 });

    sandbox.spawn(['worker'], batch.env);
    const settled = await waitFor(
      'chunk 1 to leave state creating',
      async () => {
        const chunk = await batch.chunks.get(batch.batchId, 1);
        return chunk && chunk.state !== 'creating' ? chunk : null;
      },
      TAKEOVER_MS,
      200,
    );
    expect(settled.held?.reason).toBeUndefined();
    expect(settled.hosted_id).toBe(hosted!.id);
    await waitForEnded(batch.runtime, batch.batchId, 30_000);
    expect(emulator.control.stats().hostedBatches.created).toBe(1);
  }, 120_000);

  it('a download resumed after a kill records every line of the chunk as written, not only its own', async () => {
    // download() starts from `written = chunk.written ?? 0`, which a killed download never saved:
    // the resumed one records only the lines it wrote itself (here 100 of 600). Minor: nothing reads
    // `written` yet, but status and the dashboard are meant to show it per hosted batch.
    const emulator = await emulatorWith({
      batchesStartDelayMs: 0,
      batchesProcessingMs: 0,
      batchesResultsPauseAfterLines: 550,
      batchesResultsPauseMs: 600_000,
    });
    const batch = await submit('bug-written', requests(600, 'Written'), emulator.url);
    const w1 = sandbox.spawn(['worker'], batch.env);
    await waitFor('the first page of lines written', async () => {
      const status = await getBatchStatus(batch.runtime, batch.batchId);
      return (status?.request_counts.succeeded ?? 0) >= 500;
    });
    await w1.kill('SIGKILL');
    emulator.control.setBatches({ resultsPauseAfterLines: null });
    sandbox.spawn(['worker'], batch.env);
    await waitForEnded(batch.runtime, batch.batchId, TAKEOVER_MS);
    // The batch ends with its last line; the chunk is marked done just after.
    const chunk = await waitFor('chunk 1 done', async () => {
      const meta = await batch.chunks.get(batch.batchId, 1);
      return meta?.state === 'done' ? meta : null;
    });
    expect(chunk.count).toBe(600);
    expect(chunk.written).toBe(600);
  }, 120_000);
});
