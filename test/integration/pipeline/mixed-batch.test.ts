import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClaudeClient } from '../../../src/claude/claude-client.js';
import { startEmulator, replyFingerprint, type EmulatorHandle } from '../../../src/emulator/index.js';
import { listDeadLetters } from '../../../src/queue/dead-letters.js';
import { submitBatch } from '../../../src/queue/producer.js';
import type { Runtime } from '../../../src/runtime.js';
import { Secret } from '../../../src/secret.js';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import type { ClaudeWorker } from '../../../src/worker/claude-worker.js';
import { startWorker } from '../../../src/worker/start-worker.js';
import { jsonlSource, request, resultsById, type TestRequest } from '../../helpers/batch.js';
import { disposeRuntime, testRuntime } from '../../helpers/runtime.js';

let emulator: EmulatorHandle;
let runtime: Runtime;
let worker: ClaudeWorker | undefined;

beforeEach(async () => {
  emulator = await startEmulator({ seed: 7 });
  runtime = await testRuntime('mixed', { requestTimeoutMs: '1500' });
});

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await disposeRuntime(runtime);
  await emulator.close();
});

async function work(): Promise<void> {
  const apiKey = new Secret('sk-test-mixed-batch-key');
  worker = await startWorker(runtime, {
    client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: runtime.config.requestTimeoutMs }),
  });
}

async function allResults(batchId: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of runtime.store.results(batchId)) lines.push(line);
  return lines;
}

describe('a batch mixing plain prompts, retryable faults and request-specific terminal errors', () => {
  it('ends with one results line per request, retryables succeeded, terminals dead-lettered once', async () => {
    const plain = Array.from({ length: 20 }, (_, i) => request(`plain-${i}`, `Tell me about number ${i}.`));
    const retryable: Array<[TestRequest, number]> = [
      [request('r429', 'Busy @@fault:rate_limit_error:2@@'), 2],
      [request('r529', 'Overloaded @@fault:overloaded_error:2@@'), 2],
      [request('r500', 'Server fault @@fault:api_error:1@@'), 1],
      [request('r504', 'Gateway timeout @@fault:timeout_error:1@@'), 1],
      [request('reset', 'Reset @@fault:connection_reset:1@@'), 1],
      [request('hang', 'Hang @@fault:hang:1@@'), 1],
    ];
    const terminal: Array<[TestRequest, string, number]> = [
      [request('bad400', 'Bad @@fault:invalid_request_error@@'), 'invalid_request_error', 400],
      [request('big413', 'Big @@fault:request_too_large@@'), 'request_too_large', 413],
    ];
    const all = [...plain, ...retryable.map(([r]) => r), ...terminal.map(([r]) => r)];
    const submitted = await submitBatch(runtime, { input: jsonlSource(all) });
    await work();
    const status = await waitForBatch(runtime, submitted.batchId, { pollMs: 100 });

    expect(status.processing_status).toBe('ended');
    expect(status.request_counts).toEqual({
      processing: 0,
      succeeded: all.length - terminal.length,
      errored: terminal.length,
      canceled: 0,
      expired: 0,
    });
    expect(status.errored_by_type).toEqual({ invalid_request_error: 1, request_too_large: 1 });

    const results = resultsById(await allResults(submitted.batchId));
    expect([...results.keys()].sort()).toEqual(all.map((r) => r.custom_id).sort());
    for (const r of [...plain, ...retryable.map(([x]) => x)]) {
      const result = results.get(r.custom_id)!;
      expect(result.type, r.custom_id).toBe('succeeded');
      // The reply belongs to its prompt.
      expect(JSON.stringify(result)).toContain(replyFingerprint(r.params));
    }
    for (const [r, type] of terminal) {
      expect(results.get(r.custom_id)).toMatchObject({
        type: 'errored',
        error: { type: 'error', error: { type }, request_id: expect.stringMatching(/^req_/) },
      });
    }

    const dead = await listDeadLetters(runtime, { batch: submitted.batchId });
    expect(dead.map((d) => [d.custom_id, d.error_type, d.status, d.reason, d.attempts]).sort()).toEqual(
      terminal.map(([r, type, httpStatus]) => [r.custom_id, type, httpStatus, 'terminal', 1]).sort(),
    );

    // The emulator's log is the ground truth of what was sent.
    const log = emulator.control.log().filter((e) => e.path === '/v1/messages');
    const sent = (r: TestRequest) => log.filter((e) => e.promptHash === replyFingerprint(r.params));
    for (const [r] of terminal) expect(sent(r), r.custom_id).toHaveLength(1);
    // k failures then one success: no extra calls, so the SDK retried nothing on its own.
    for (const [r, k] of retryable) expect(sent(r), r.custom_id).toHaveLength(k + 1);
    for (const r of plain) expect(sent(r), r.custom_id).toHaveLength(1);
    // No request was sent again before the retry-after it was given.
    for (const [r] of retryable) {
      const entries = sent(r).sort((a, b) => a.seq - b.seq);
      for (let i = 1; i < entries.length; i++) {
        const previous = entries[i - 1]!;
        if (previous.retryAfterSeconds !== null) {
          expect(entries[i]!.at - previous.at).toBeGreaterThanOrEqual(previous.retryAfterSeconds * 1000);
        }
      }
    }
    expect(sent(retryable[0]![0]).filter((e) => e.retryAfterSeconds !== null)).toHaveLength(2);
  });

  it('counts truncated and refused replies and totals usage', async () => {
    const all = [
      request('cut', 'Long story @@stop:max_tokens@@'),
      request('no', 'Something refused @@stop:refusal@@'),
      request('ok', 'Fine'),
    ];
    const submitted = await submitBatch(runtime, { input: jsonlSource(all) });
    await work();
    const status = await waitForBatch(runtime, submitted.batchId, { pollMs: 100 });
    expect(status.truncated).toBe(1);
    expect(status.refused).toBe(1);
    const log = emulator.control.log().filter((e) => e.status === 200);
    expect(status.usage.input_tokens).toBe(log.reduce((sum, e) => sum + e.inputTokens, 0));
    expect(status.usage.output_tokens).toBe(log.reduce((sum, e) => sum + e.outputTokens, 0));
  });
});
