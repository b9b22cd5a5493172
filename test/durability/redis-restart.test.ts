/**
 * Promises 3 and 4 (second half): Redis stopped mid-run and started again on the same port and data
 * directory, with AOF (`appendonly yes`, `appendfsync everysec`). The worker processes are never
 * restarted by hand: they wait the outage out, reconnect and finish the batch.
 *
 * What survives depends on how Redis stops:
 * - SIGTERM (or `redis-cli shutdown`): Redis writes and fsyncs the AOF before it exits, so nothing
 *   is lost; every request ends with exactly one results line.
 * - SIGKILL of redis-server: the AOF holds every write Redis had handed to the kernel; with
 *   `appendfsync everysec` a crash of the whole machine (not only the process) may lose up to the
 *   last ~1 s of writes. The AOF is then a prefix of history, so the state after the restart is an
 *   earlier, consistent one (each finalize is one Lua script: a results line and its counts go
 *   together). Requests whose results were lost are still in BullMQ as waiting or active (the
 *   lost window lost their completion too): they are sent again. So what must hold either way:
 *   every request ends with exactly one results line and the counts are exact; what a lost window
 *   costs is repeated API calls (at-least-once), never a missing or duplicated result.
 */
// eslint-disable-next-line no-restricted-imports -- the outage's length below
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
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
  tallyResults,
  waitFor,
  waitForEnded,
} from './helpers.js';

let sandbox: Sandbox;
let emulator: EmulatorHandle;

beforeAll(async () => {
  sandbox = await Sandbox.start('restart', { appendonly: true });
  emulator = await startEmulator({ seed: 3, latency: { fixedMs: 100, jitterMs: 100 } });
});

afterAll(async () => {
  await sandbox?.dispose();
  await emulator?.close();
});

const CONCURRENCY = 4;
const WORKERS = 2;

/**
 * Submits a batch, starts two workers, stops Redis with `signal` once ~a third is done, keeps it
 * down `downMs`, starts it again on the same port and dir, and waits for the batch to end.
 */
async function runThroughRestart(name: string, signal: 'SIGTERM' | 'SIGKILL', downMs: number) {
  const TOTAL = 150;
  const INVALID = new Set([`${name}-7`, `${name}-77`]);
  const requests = Array.from({ length: TOTAL }, (_, i) => {
    const id = `${name}-${i}`;
    return request(
      id,
      `Restart ${name} item ${i}${INVALID.has(id) ? ' @@fault:invalid_request_error@@' : ''}`,
    );
  });
  const prefix = newPrefix(name);
  const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
    CLAUDE_BATCH_CONCURRENCY: String(CONCURRENCY),
  });
  const file = await sandbox.writeJsonl(`${name}.jsonl`, requests);
  const batchId = batchIdOf(await sandbox.cli(['submit', file], env));
  const runtime = await sandbox.runtime(prefix);
  const workers = Array.from({ length: WORKERS }, () => sandbox.spawn(['worker'], env));

  await waitFor(
    'a third of the batch done',
    async () => ((await getBatchStatus(runtime, batchId))?.request_counts.succeeded ?? 0) >= TOTAL / 3,
    30_000,
    20,
  );
  // everysec: let the AOF catch up with the submit, so only the run's own last second is at stake.
  const { port, dir } = sandbox.redis;
  const doneBefore = (await getBatchStatus(runtime, batchId))!.request_counts;
  await sandbox.redis.stop({ signal });
  const stoppedAt = Date.now();
  // The outage's length is what this test varies: time itself must pass here.
  // eslint-disable-next-line no-restricted-syntax
  await sleep(downMs);
  sandbox.redis = await startPrivateRedis({ appendonly: true, port, dir });
  const restartedAt = Date.now();

  const ended = await waitForEnded(runtime, batchId, 60_000);
  const finishedAt = Date.now();
  // The same processes finished the batch: none exited, and each stops cleanly now.
  for (const w of workers) expect(w.running).toBe(true);
  for (const w of workers) expect(await w.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  if (process.env['DEBUG_DURABILITY']) for (const w of workers) console.log(w.stderr);
  if (downMs >= 1_000) {
    // A long outage is said once, and its end too (a quick restart may reconnect without an error).
    for (const w of workers) {
      expect(w.stderr.match(/Redis connection lost; retrying/g)?.length).toBe(1);
      expect(w.stderr).toMatch(/Redis connection restored/);
      // Not once per reconnect attempt: BullMQ's socket errors stay at debug level.
      expect(w.stderr).not.toMatch(/"level":"warn","msg":"worker error","error":"connect ECONNREFUSED/);
    }
  }

  const [status, results, dlq] = await Promise.all([
    sandbox.cli(['status', batchId, '--json'], env),
    sandbox.cli(['results', batchId], env),
    sandbox.cli(['dlq', 'list', '--batch', batchId, '--json'], env),
  ]);
  expect(ended.request_counts).toMatchObject({
    processing: 0,
    succeeded: TOTAL - INVALID.size,
    errored: INVALID.size,
    canceled: 0,
  });
  expect(JSON.parse(status.stdout)).toMatchObject({
    processing_status: 'ended',
    request_counts: { processing: 0, succeeded: TOTAL - INVALID.size, errored: INVALID.size },
    errored_by_type: { invalid_request_error: INVALID.size },
  });
  const tally = tallyResults(results.stdout);
  expect(tally.size).toBe(TOTAL);
  for (const r of requests) {
    expect(tally.get(r.custom_id), r.custom_id).toMatchObject({
      lines: 1,
      type: INVALID.has(r.custom_id) ? 'errored' : 'succeeded',
    });
  }
  const entries = JSON.parse(dlq.stdout) as Array<{ custom_id: string }>;
  expect(entries.map((e) => e.custom_id).sort()).toEqual([...INVALID].sort());

  const calls = callsByRequest(emulator, requests);
  for (const [id, c] of calls) if (!INVALID.has(id)) expect(c.ok, id).toBeGreaterThanOrEqual(1);
  const repeated = repeatedCalls(calls, () => 1);
  console.log(
    `[durability] redis-restart ${signal}, down ${downMs} ms: ${doneBefore.succeeded} of ${TOTAL} done at the stop; ` +
      `back ${restartedAt - stoppedAt} ms later; batch ended ${finishedAt - restartedAt} ms after the restart; ` +
      `${repeated} repeated calls`,
  );
  return { repeated };
}

describe('Redis restarted mid-run (AOF everysec)', () => {
  it('SIGTERM: Redis flushes the AOF, nothing is lost; the workers reconnect and finish on their own', async () => {
    const { repeated } = await runThroughRestart('term', 'SIGTERM', 300);
    // Only calls in flight across the outage may be sent again (their lock may lapse meanwhile).
    expect(repeated).toBeLessThanOrEqual(CONCURRENCY * WORKERS);
  });

  it('SIGKILL: the workers reconnect and finish; every request still ends with exactly one results line', async () => {
    // A lost window (<= 1 s with everysec, on a machine crash) costs repeated calls, not results:
    // the assertions in runThroughRestart are the ones that must hold after any crash.
    await runThroughRestart('kill', 'SIGKILL', 0);
  });

  it('Redis down for ~3 s mid-run: the run resumes and completes without a restart of the workers', async () => {
    const { repeated } = await runThroughRestart('outage', 'SIGTERM', 3_000);
    // Locks (2 s) lapse during a 3 s outage: in-flight jobs may be taken back and sent once more.
    expect(repeated).toBeLessThanOrEqual(CONCURRENCY * WORKERS);
  });
});
