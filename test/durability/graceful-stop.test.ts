/**
 * Promise 5: SIGTERM stops a worker gracefully. It takes no new job, lets the requests in flight
 * finish within the grace period (CLAUDE_BATCH_GRACE_PERIOD_MS), hands back the ones that outlive
 * it (to the waiting list at once, not after a stall timeout), and exits 0. Another worker then
 * completes what was handed back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyFingerprint, startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { requestJobId } from '../../src/queue/jobs.js';
import { getBatchStatus } from '../../src/operations/batch-status.js';
import {
  batchIdOf,
  callsByRequest,
  durabilityEnv,
  newPrefix,
  request,
  Sandbox,
  tallyResults,
  waitFor,
} from './helpers.js';

const LATENCY_MS = 400;
const GRACE_MS = 2_000;

let sandbox: Sandbox;
let emulator: EmulatorHandle;

beforeAll(async () => {
  sandbox = await Sandbox.start('graceful');
  // Every call takes 400 ms: well within the 2 s grace period, so those in flight can finish.
  emulator = await startEmulator({ seed: 5, latency: { fixedMs: LATENCY_MS } });
});

afterAll(async () => {
  await sandbox?.dispose();
  await emulator?.close();
});

describe('SIGTERM', () => {
  it('stops taking jobs, finishes in-flight ones within the grace period, hands back the rest, exits 0', async () => {
    const requests = [
      request('g-0', 'The canary'),
      // Its first call is never answered: it outlives any grace period. Its second call succeeds.
      request('g-hang', 'Hangs once @@fault:hang:1@@'),
      ...Array.from({ length: 30 }, (_, i) => request(`g-${i + 1}`, `Graceful item ${i + 1}`)),
    ];
    const prefix = newPrefix('graceful');
    const env = durabilityEnv(sandbox.redis.url, prefix, emulator, {
      CLAUDE_BATCH_CONCURRENCY: '4',
      CLAUDE_BATCH_GRACE_PERIOD_MS: String(GRACE_MS),
    });
    const file = await sandbox.writeJsonl('graceful.jsonl', requests);
    const batchId = batchIdOf(await sandbox.cli(['submit', file], env));
    const runtime = await sandbox.runtime(prefix);
    const calls = () => callsByRequest(emulator, requests);

    const first = sandbox.spawn(['worker'], env);
    // The hung call is in flight, and the other three slots are busy with ordinary calls.
    await waitFor('g-hang in flight', () => calls().get('g-hang')!.calls === 1, 30_000);
    await waitFor(
      'three ordinary calls in flight',
      () =>
        emulator.control.log().filter((e) => e.status === 200 && Date.now() - e.at < LATENCY_MS - 100)
          .length >= 3,
      // Generous: on a loaded machine the worker process fills its slots slowly.
      30_000,
      10,
    );
    const signalledAt = Date.now();
    const inFlight = emulator.control
      .log()
      .filter((e) => e.status === 200 && signalledAt - e.at < LATENCY_MS)
      .map((e) => e.promptHash);
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    const stoppedAfter = Date.now() - signalledAt;

    expect(exit).toEqual({ code: 0, signal: null });
    // It waited for the grace period (the hung call outlived it), then stopped promptly.
    expect(stoppedAfter).toBeGreaterThanOrEqual(GRACE_MS - 100);
    expect(stoppedAfter).toBeLessThan(GRACE_MS + 3_000);
    const stopping = first.logLines().find((l) => l['msg'] === 'stopping: finishing in-flight requests');
    expect(stopping).toMatchObject({ signal: 'SIGTERM' });
    // The hung call and the three ordinary ones (a slot may be between two jobs at that instant).
    expect(stopping?.['in_flight']).toBeGreaterThanOrEqual(3);
    expect(first.stderr).toMatch(/"msg":"worker stopped"/);

    // No new job was taken once the worker heard the signal (allowing for a call already on its way).
    const heardAt = Date.parse(String(stopping?.['time']));
    const lateCalls = emulator.control.log().filter((e) => e.at > heardAt + 100);
    expect(lateCalls).toEqual([]);

    // The ordinary calls in flight finished, and the stopping worker recorded their results.
    const results = await runtime.redis.hgetall(runtime.keys.results(batchId));
    const inFlightIds = requests
      .filter((r) => inFlight.includes(replyFingerprint(r.params)))
      .map((r) => r.custom_id);
    expect(inFlightIds.length).toBeGreaterThanOrEqual(3);
    for (const id of inFlightIds) expect(results[id], id).toMatch(/"type":"succeeded"/);

    // The hung one was handed back to the waiting list at once, unsent a second time.
    expect(await runtime.requests.getJobState(requestJobId(batchId, 'g-hang', 0))).toBe('waiting');
    expect(results['g-hang']).toBeUndefined();
    // The worker did not drain the queue on its way out: work is left for the next one.
    const left = (await getBatchStatus(runtime, batchId))!.request_counts.processing;
    expect(left).toBeGreaterThan(1);

    // Another worker completes the rest, the handed-back request included.
    const second = await sandbox.cli(['worker', '--until-idle'], env);
    expect(second.code).toBe(0);
    const [status, out] = await Promise.all([
      sandbox.cli(['status', batchId, '--json'], env),
      sandbox.cli(['results', batchId], env),
    ]);
    expect(JSON.parse(status.stdout)).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: requests.length, errored: 0, canceled: 0 },
    });
    const tally = tallyResults(out.stdout);
    expect(tally.size).toBe(requests.length);
    for (const [id, t] of tally) expect(t.lines, id).toBe(1);
    // Each request was sent once, except the handed-back one: its hung call, then its answer.
    for (const [id, c] of calls()) expect(c.calls, id).toBe(id === 'g-hang' ? 2 : 1);
    console.log(
      `[durability] graceful-stop: ${inFlight.length} ordinary calls in flight at SIGTERM finished; ` +
        `g-hang handed back; exit 0 after ${stoppedAfter} ms (grace ${GRACE_MS} ms); ${left} requests left for the next worker`,
    );
  });
});
