/**
 * Issue 16, "canary at the first token": what a canary proves (key, credit, model) is known when
 * the API accepts it, so its model's held requests go out at its `message_start`, not a whole
 * generation later, while its own result is still recorded whole and once. Through the real SDK
 * over HTTP to the emulator's SSE, with 30 s generations, as the acceptance names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { submitBatch } from '../../../src/queue/producer.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, request, resultsById } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('canary at the first token', () => {
  it('with 30 s generations, the first non-canary request is sent within 2 s of the canary', async () => {
    // 300 output tokens at 100 ms each: every answer streams for 30 s.
    rig = await WorkerRig.start({
      name: 'canary-first-token',
      emulator: { latency: { perOutputTokenMs: 100 } },
      // A whole answer takes 30 s: the client must wait for it.
      clientTimeoutMs: 90_000,
    });
    const requests = Array.from({ length: 6 }, (_, i) =>
      request(`g${i}`, `Generate at length ${i} @@output_tokens:300@@`, { max_tokens: 1_000 }),
    );
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests) });
    await rig.startWorker();
    const final = await waitForBatch(rig.runtime, batchId, {
      pollMs: 100,
      signal: AbortSignal.timeout(120_000),
    });

    expect(final.request_counts).toMatchObject({ processing: 0, succeeded: 6, errored: 0 });
    expect(final.canary).toEqual({ [requests[0]!.params.model]: 'released' });
    const sends = rig.emulator.control
      .log()
      .filter((e) => e.path === '/v1/messages')
      .sort((a, b) => a.at - b.at);
    // One call per request: the early release sent nothing twice.
    expect(sends).toHaveLength(6);
    const gapMs = sends[1]!.at - sends[0]!.at;
    expect(gapMs).toBeLessThan(2_000);
    // The canary's own result is whole: its full generation, shaped like every other line.
    const lines: string[] = [];
    for await (const line of rig.runtime.store.results(batchId)) lines.push(line);
    const byId = resultsById(lines);
    const canary = byId.get('g0') as { type: string; message: { usage: { output_tokens: number } } };
    expect(canary.type).toBe('succeeded');
    expect(canary.message.usage.output_tokens).toBe(300);
  }, 180_000);
});
