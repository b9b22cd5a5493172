/**
 * Long generations are streamed with an idle timeout, never cut by a total one and paid twice
 * (anthropic-api.md: no idempotency key; the SDK refuses long non-streaming calls). Through the real
 * SDK over HTTP to the emulator's SSE: a streamed result is shaped exactly like a non-streamed one,
 * a generation lasting several times the timeout is one call and one result, and a failure after
 * the stream began is counted maybe billed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, type EmulatorHandle } from '../../../src/emulator/index.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { jsonlSource, MODEL, request, resultsById } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

const KEY = new Secret('sk-test-stream-0001');
let emulator: EmulatorHandle | undefined;
let rig: WorkerRig | undefined;
afterEach(async () => {
  await emulator?.close();
  await rig?.close();
  emulator = undefined;
  rig = undefined;
});

const params = (text: string, maxTokens = 1_000) => ({
  model: MODEL,
  max_tokens: maxTokens,
  messages: [{ role: 'user' as const, content: text }],
});

describe('streamed calls', () => {
  it('a streamed result is the non-streamed one, key for key (id aside), with no SDK-only keys', async () => {
    emulator = await startEmulator({ seed: 7 });
    const streamed = createClaudeClient({
      apiKey: KEY,
      baseURL: emulator.url,
      timeoutMs: 5_000,
      streamMinMaxTokens: 1,
    });
    const plain = createClaudeClient({
      apiKey: KEY,
      baseURL: emulator.url,
      timeoutMs: 5_000,
      streamMinMaxTokens: 1e9,
    });
    const p = params('Tell me something long @@output_tokens:40@@');
    const [a, b] = await Promise.all([streamed.call(p), plain.call(p)]);
    if (!a.ok || !b.ok) throw new Error('expected two successes');
    const sa = JSON.parse(a.messageJson) as Record<string, unknown>;
    const sb = JSON.parse(b.messageJson) as Record<string, unknown>;
    expect(Object.keys(sa)).toEqual(Object.keys(sb));
    expect({ ...sa, id: '' }).toEqual({ ...sb, id: '' });
    expect(a.messageJson).not.toContain('parsed_output');
    expect(a.requestId).toMatch(/^req_/);
    expect(emulator.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(2);
  });

  it('a generation lasting three times the timeout, streaming steadily, is one call and one result', async () => {
    // 300 output tokens at 20 ms each: 6 s of deltas, every 80 ms, against a 2 s (idle) timeout.
    rig = await WorkerRig.start({
      name: 'stream-long',
      emulator: { latency: { perOutputTokenMs: 20 } },
      overrides: { requestTimeoutMs: '2000', streamMinMaxTokens: '512' },
    });
    const requests = [request('long', 'Write at length @@output_tokens:300@@', { max_tokens: 1_000 })];
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests), canary: false });
    const started = Date.now();
    await rig.startWorker();
    const final = await waitForBatch(rig.runtime, batchId, { pollMs: 100 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(5_500);
    expect(final.request_counts).toMatchObject({ succeeded: 1, errored: 0 });
    expect(final.maybe_billed).toBe(0);
    expect(rig.emulator.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(1);
    const lines: string[] = [];
    for await (const line of rig.runtime.store.results(batchId)) lines.push(line);
    const result = resultsById(lines).get('long') as {
      type: string;
      message: { usage: { output_tokens: number } };
    };
    expect(result.type).toBe('succeeded');
    expect(result.message.usage.output_tokens).toBe(300);
  }, 60_000);

  it('an error event mid-stream is retried as maybe billed; a stream cut before its first event is not', async () => {
    rig = await WorkerRig.start({ name: 'stream-fault', overrides: { streamMinMaxTokens: '512' } });
    const requests = [
      request('mid', 'Cut me @@stream_fault:overloaded_error:3:1@@ @@output_tokens:60@@', {
        max_tokens: 1_000,
      }),
      request('early', 'Refuse me @@fault:overloaded_error:1@@', { max_tokens: 1_000 }),
    ];
    const { batchId } = await submitBatch(rig.runtime, { input: jsonlSource(requests), canary: false });
    await rig.startWorker();
    const final = await waitForBatch(rig.runtime, batchId, { pollMs: 100 });
    expect(final.request_counts).toMatchObject({ succeeded: 2, errored: 0 });
    // Only the stream that had begun may have been billed.
    expect(final.maybe_billed).toBe(1);
    expect(rig.emulator.control.log().filter((e) => e.path === '/v1/messages')).toHaveLength(4);
  }, 60_000);
});
