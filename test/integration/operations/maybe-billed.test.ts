/**
 * A connection cut after the request was sent: the API may have processed and billed it, and
 * nothing deduplicates a repeated request (anthropic-api.md). Such retries are counted per request,
 * per batch and in /metrics, and capped: past --max-maybe-billed the request dead-letters as
 * `maybe_billed` instead of paying again and again. Through the real SDK to the emulator's resets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request } from '../../helpers/batch.js';
import { runCli } from '../../helpers/cli.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('maybe-billed retries', () => {
  it('are counted and capped: a request reset every time dead-letters as maybe_billed after the cap', async () => {
    const r = (rig = await WorkerRig.start({ name: 'maybe-billed', overrides: { maxMaybeBilled: '2' } }));
    const requests = [
      request('ok', 'Fine?'),
      request('once', 'Cut once @@fault:connection_reset:1@@'),
      request('always', 'Cut always @@fault:connection_reset@@'),
    ];
    const { batchId } = await submitBatch(r.runtime, { input: jsonlSource(requests), canary: false });
    await r.startWorker();
    const final = await waitForBatch(r.runtime, batchId, { pollMs: 100 });

    expect(final.request_counts).toMatchObject({ succeeded: 2, errored: 1 });
    // One retry of `once`, two of `always` before the cap stopped it.
    expect(final.maybe_billed).toBe(3);
    const calls = r.emulator.control.log().filter((e) => e.path === '/v1/messages');
    expect(calls.filter((e) => e.errorType === 'connection_reset')).toHaveLength(1 + 3);
    expect(calls).toHaveLength(3 + 1 + 2);

    const [dead] = await listDeadLetters(r.runtime, { batch: batchId });
    expect(dead).toMatchObject({
      custom_id: 'always',
      reason: 'maybe_billed',
      status: null,
      error_type: 'connection_error',
      attempts: 3,
      maybe_billed: 2,
      message: expect.stringMatching(/^not sent again: sent 3 times with no complete answer/),
    });
    expect((await r.runtime.store.stats())['maybe_billed']).toBe(3);

    const status = await runCli(['status', batchId], r.cliEnv());
    expect(status.stdout).toMatch(/maybe paid\s+3 retries after a timeout or cut connection/);
    const json = JSON.parse((await runCli(['status', batchId, '--json'], r.cliEnv())).stdout) as {
      maybe_billed: number;
    };
    expect(json.maybe_billed).toBe(3);
  }, 60_000);
});
