/**
 * Promise 1: a worker killed with SIGKILL at any moment loses nothing and duplicates nothing.
 * Real worker processes (`claude-batch worker`) are killed while requests are in flight and
 * started again; the emulator runs in this process and logs every call it receives.
 */
// eslint-disable-next-line no-restricted-imports -- the random kill moment below
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { getBatchStatus } from '../../src/operations/batch-status.js';
import {
  batchIdOf,
  callsByRequest,
  durabilityEnv,
  newPrefix,
  repeatedCalls,
  request,
  Sandbox,
  seededRandom,
  tallyResults,
  waitFor,
  waitForEnded,
  type CliProcess,
} from './helpers.js';

/** Replays a run's kill moments: DURABILITY_SEED=<n> npx vitest run ... */
const SEED = Number(process.env['DURABILITY_SEED'] ?? 6_2026);

let sandbox: Sandbox;
let emulator: EmulatorHandle;

beforeAll(async () => {
  sandbox = await Sandbox.start('kill');
  // 150-300 ms per call: a worker with 3 slots has requests in flight nearly all the time.
  emulator = await startEmulator({ seed: SEED, latency: { fixedMs: 150, jitterMs: 150 } });
});

afterAll(async () => {
  await sandbox?.dispose();
  await emulator?.close();
});

describe('worker processes killed with SIGKILL', () => {
  it('at seeded random moments, several times in one batch: one results line per request, exact counts, repeated calls bounded', async () => {
    const random = seededRandom(SEED);
    const CONCURRENCY = 3;
    const KILLS = 5;
    const TOTAL = 200;
    const INVALID = new Set(['r-17', 'r-58', 'r-99', 'r-123', 'r-150', 'r-181']);
    const requests = Array.from({ length: TOTAL }, (_, i) => {
      const id = `r-${i}`;
      return request(id, `Durability item ${i}${INVALID.has(id) ? ' @@fault:invalid_request_error@@' : ''}`);
    });
    const prefix = newPrefix('kill');
    // A stall count above the kills: this test is about redelivery, the next one about giving up.
    const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
      CLAUDE_BATCH_CONCURRENCY: String(CONCURRENCY),
      CLAUDE_BATCH_MAX_STALLED_COUNT: '20',
    });
    const file = await sandbox.writeJsonl('kill.jsonl', requests);
    const batchId = batchIdOf(await sandbox.cli(['submit', file], env));
    const runtime = await sandbox.runtime(prefix);

    const startWorker = () => sandbox.spawn(['worker'], env);
    const workers: CliProcess[] = [startWorker(), startWorker()];
    const kills: Array<{ at: number; pid: number; processing: number; inFlightCalls: number }> = [];
    for (let k = 0; k < KILLS; k++) {
      // A victim that has started taking jobs, killed 400-1400 ms into its work.
      const slot = Math.floor(random() * workers.length);
      const victim = workers[slot]!;
      await victim.waitForLog(/"msg":"worker started"/);
      // The kill moment is random by design (seeded, replayable), after the positive event above.
      // eslint-disable-next-line no-restricted-syntax
      await sleep(400 + Math.floor(random() * 1_000));
      const status = await getBatchStatus(runtime, batchId);
      const processing = status?.request_counts.processing ?? 0;
      const now = Date.now();
      // Calls admitted by the emulator whose reply is not due yet (latency <= 300 ms): in flight.
      const inFlightCalls = emulator.control.log().filter((e) => e.status === 200 && now - e.at < 300).length;
      await victim.kill('SIGKILL');
      kills.push({ at: now, pid: victim.pid, processing, inFlightCalls });
      workers[slot] = startWorker();
    }

    const ended = await waitForEnded(runtime, batchId, 90_000);
    for (const w of workers) expect(await w.kill('SIGTERM')).toEqual({ code: 0, signal: null });

    // Every kill landed mid-run, with requests left to do.
    for (const kill of kills) expect(kill.processing).toBeGreaterThan(0);
    expect(ended.request_counts).toEqual({
      processing: 0,
      succeeded: TOTAL - INVALID.size,
      errored: INVALID.size,
      canceled: 0,
      expired: 0,
    });

    const [status, results, dlq] = await Promise.all([
      sandbox.cli(['status', batchId, '--json'], env),
      sandbox.cli(['results', batchId], env),
      sandbox.cli(['dlq', 'list', '--batch', batchId, '--json'], env),
    ]);
    expect(JSON.parse(status.stdout)).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: TOTAL - INVALID.size, errored: INVALID.size, canceled: 0 },
      errored_by_type: { invalid_request_error: INVALID.size },
    });
    const tally = tallyResults(results.stdout);
    expect(tally.size).toBe(TOTAL);
    for (const r of requests) {
      const t = tally.get(r.custom_id);
      expect(t?.lines, r.custom_id).toBe(1);
      expect(t?.type, r.custom_id).toBe(INVALID.has(r.custom_id) ? 'errored' : 'succeeded');
    }
    const entries = JSON.parse(dlq.stdout) as Array<{
      custom_id: string;
      reason: string;
      error_type: string;
    }>;
    expect(entries.map((e) => e.custom_id).sort()).toEqual([...INVALID].sort());
    for (const e of entries)
      expect(e).toMatchObject({ reason: 'terminal', error_type: 'invalid_request_error' });

    // Repeated calls: at-least-once delivery repeats only what was in flight at a kill.
    const calls = callsByRequest(emulator, requests);
    for (const [id, c] of calls) {
      expect(c.calls, id).toBeGreaterThanOrEqual(1);
      if (!INVALID.has(id)) expect(c.ok, id).toBeGreaterThanOrEqual(1);
    }
    const repeated = repeatedCalls(calls, () => 1);
    const repeatedSuccesses = [...calls.values()].reduce((n, c) => n + Math.max(0, c.ok - 1), 0);
    const afterSuccess = [...calls.values()].reduce((n, c) => n + c.afterSuccess, 0);
    console.log(
      `[durability] worker-kill seed=${SEED}: ${KILLS} kills (concurrency ${CONCURRENCY}), ` +
        `${repeated} repeated calls (${repeatedSuccesses} prompts answered 200 more than once, ` +
        `${afterSuccess} calls after a first success); calls in flight at each kill (both workers, emulator view): ` +
        `${kills.map((k) => k.inFlightCalls).join(', ')}`,
    );
    expect(repeated).toBeLessThanOrEqual(CONCURRENCY * KILLS);
  });

  it('a request whose worker dies more than maxStalledCount times is failed by BullMQ and still dead-letters as stalled/worker_lost, once', async () => {
    // `@@fault:hang@@`: the emulator never answers, so the request is in flight whenever its worker dies.
    const requests = [
      request('first', 'The canary goes first'),
      request('hang-me', 'Never answered @@fault:hang@@'),
      request('after-1', 'Sent after the hang'),
      request('after-2', 'Sent after the hang, too'),
    ];
    const prefix = newPrefix('stall');
    // One slot: while the hung request is in flight, nothing else is, so no other job stalls.
    const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
      CLAUDE_BATCH_CONCURRENCY: '1',
      CLAUDE_BATCH_MAX_STALLED_COUNT: '1',
    });
    const file = await sandbox.writeJsonl('stall.jsonl', requests);
    const batchId = batchIdOf(await sandbox.cli(['submit', file], env));
    const runtime = await sandbox.runtime(prefix);
    const hangCalls = () => callsByRequest(emulator, requests).get('hang-me')!.calls;

    // maxStalledCount 1: the first stall puts the job back, the second fails it.
    let worker = sandbox.spawn(['worker'], env);
    for (let stall = 1; stall <= 2; stall++) {
      await waitFor(`hang-me in flight (call ${stall})`, () => hangCalls() === stall, 30_000);
      await worker.kill('SIGKILL');
      worker = sandbox.spawn(['worker'], env);
    }
    const ended = await waitForEnded(runtime, batchId, 60_000);
    expect(await worker.kill('SIGTERM')).toEqual({ code: 0, signal: null });

    expect(ended.request_counts).toMatchObject({ processing: 0, succeeded: 3, errored: 1 });
    expect(ended.errored_by_type).toEqual({ worker_lost: 1 });
    // BullMQ failed it without running our processor: never sent a third time.
    expect(hangCalls()).toBe(2);

    const [results, dlq] = await Promise.all([
      sandbox.cli(['results', batchId], env),
      sandbox.cli(['dlq', 'list', '--batch', batchId, '--json'], env),
    ]);
    const tally = tallyResults(results.stdout);
    expect(tally.size).toBe(4);
    expect(tally.get('hang-me')).toEqual({ lines: 1, type: 'errored', errorType: 'worker_lost' });
    for (const id of ['first', 'after-1', 'after-2'])
      expect(tally.get(id)).toMatchObject({ lines: 1, type: 'succeeded' });
    expect(JSON.parse(dlq.stdout)).toEqual([
      expect.objectContaining({
        custom_id: 'hang-me',
        reason: 'stalled',
        error_type: 'worker_lost',
        status: null,
      }),
    ]);
    // Nothing left behind in BullMQ's failed set for it (the sweeper removed it once handled).
    expect(await runtime.requests.getFailedCount()).toBe(0);
  });
});
