/**
 * Issue 15 item 2, automatic prompt caching, end to end: submit finds the system prompt most of a
 * batch's requests share and marks it; the canary, sent first, writes the cache entry and the rest
 * go out at its first token, so they read it. Usage comes from the emulator, which models the API's
 * minimum cacheable length and makes an entry readable once its writer's response has begun
 * (../shared/docs/anthropic-api.md, prompt caching). Real Redis, the real SDK over HTTP.
 */
import { formatBatchStatus } from '../../../src/cli/format-status.js';
import { afterEach, describe, expect, it } from 'vitest';
import { waitForBatch } from '../../../src/operations/wait-for-batch.js';
import { submitBatch } from '../../../src/queue/producer.js';
import { jsonlSource, request, resultsById } from '../../helpers/batch.js';
import { WorkerRig } from '../../helpers/worker-rig.js';

let rig: WorkerRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

// A current model (the SDK warns about deprecated ones: claude-sonnet-4-5 reached end of life on 2026-11-30).
const MODEL = 'claude-sonnet-4-6';
/** ~2,400 tokens at the emulator's 4 characters a token: over the model's minimum of 2,048. */
const SYSTEM = Array.from({ length: 200 }, (_, i) => `Rule ${i}: answer briefly and cite the source.`).join(
  ' ',
);
const N = 2_000;

const batch = (tag: string) =>
  Array.from({ length: N }, (_, i) =>
    request(`${tag}${i}`, `Question ${i}: what is ${i} squared?`, { model: MODEL, system: SYSTEM }),
  );

interface Usage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

async function runAndRead(r: WorkerRig, autoCache: boolean) {
  const submitted = await submitBatch(r.runtime, { input: jsonlSource(batch('q')), autoCache });
  const final = await waitForBatch(r.runtime, submitted.batchId, {
    pollMs: 100,
    signal: AbortSignal.timeout(120_000),
  });
  const lines: string[] = [];
  for await (const line of r.runtime.store.results(submitted.batchId)) lines.push(line);
  return { submitted, final, byId: resultsById(lines) };
}

const usageOf = (result: unknown) => (result as { message: { usage: Usage } }).message.usage;

describe('automatic prompt caching', () => {
  it('a 2,000-request batch sharing a long system prompt: one request writes the prefix, the others read it', async () => {
    rig = await WorkerRig.start({ name: 'auto-cache', emulator: { latency: { fixedMs: 5 } } });
    await rig.startWorker();
    const cached = await runAndRead(rig, true);
    expect(cached.submitted.autoCache?.models[MODEL]).toMatchObject({ outcome: 'breakpoint', sharing: N });
    expect(cached.final.request_counts).toMatchObject({ succeeded: N, errored: 0 });
    const usages = [...cached.byId.values()].map(usageOf);
    const writers = usages.filter((u) => u.cache_creation_input_tokens > 0);
    const readers = usages.filter((u) => u.cache_read_input_tokens > 0);
    expect(writers).toHaveLength(1);
    expect(readers).toHaveLength(N - 1);
    // The writer is the canary: the first request of the model.
    expect(usageOf(cached.byId.get('q0')).cache_creation_input_tokens).toBeGreaterThan(2_048);
    // The batch's usage totals say the same.
    expect(cached.final.usage.cache_read_input_tokens).toBe(
      readers.reduce((sum, u) => sum + u.cache_read_input_tokens, 0),
    );
    // Status: the share read from the cache, and the money saved at the batch's frozen prices
    // (claude-sonnet-4-6: input $3, reads $0.30, 5-minute writes $3.75 per million tokens).
    const u = cached.final.usage;
    const prompt = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
    const saved = (u.cache_read_input_tokens * (3 - 0.3) - u.cache_creation_input_tokens * (3.75 - 3)) / 1e6;
    expect(cached.final.cache?.read_share).toBeCloseTo(u.cache_read_input_tokens / prompt, 3);
    expect(cached.final.cache?.read_share).toBeGreaterThan(0.5);
    expect(cached.final.cache?.saved_usd).toBeCloseTo(saved, 5);
    expect(formatBatchStatus(cached.final)).toContain(`saved $${saved.toFixed(4)}`);

    // The same file without auto-caching: another batch (the flag is part of its id), no cache
    // tokens at all, and otherwise the same results.
    const plain = await runAndRead(rig, false);
    expect(plain.submitted.batchId).not.toBe(cached.submitted.batchId);
    expect(plain.submitted.autoCache).toBeNull();
    expect(plain.final.cache).toBeNull();
    const plainUsages = [...plain.byId.values()].map(usageOf);
    expect(
      plainUsages.every((u) => u.cache_creation_input_tokens === 0 && u.cache_read_input_tokens === 0),
    ).toBe(true);
    expect([...plain.byId.keys()].sort()).toEqual([...cached.byId.keys()].sort());
    for (const [id, result] of plain.byId) {
      const other = cached.byId.get(id) as {
        type: string;
        message: { content: unknown; stop_reason: string };
      };
      const mine = result as { type: string; message: { content: unknown; stop_reason: string } };
      expect(other.type).toBe(mine.type);
      expect(other.message.stop_reason).toBe(mine.message.stop_reason);
      // Input tokens in all: what was cached plus what was not is what was sent without caching.
      const u = usageOf(other);
      expect(u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens).toBe(
        usageOf(result).input_tokens,
      );
    }
  }, 240_000);
});
