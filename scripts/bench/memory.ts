/**
 * Section "memory": Redis memory per pending job and per stored result. INFO memory used_memory is
 * read before and after submitting N requests (~300-byte lines; every request held for its batch's
 * share, --no-canary; then again with the canary, every request but one held behind it), then again
 * once a worker (the
 * emulator with no latency) has finished them all: per result. MEMORY USAGE of the results hash and
 * the input-order list splits the finished figure. On the shared Redis (--redis-url) other clients'
 * writes land in the same figure; the private one (default) has only this run.
 *
 *   npm run bench -- memory [--quick]          (quick: 10k requests; full: 100k)
 */
import type { Redis } from 'ioredis';
import { SHARE_REASON } from '../../src/queue/holds.js';
import { submitBatch } from '../../src/queue/producer.js';
import { createClaudeClient } from '../../src/claude/claude-client.js';
import { waitForBatch } from '../../src/operations/wait-for-batch.js';
import { startWorker } from '../../src/worker/start-worker.js';
import {
  benchApiKey,
  benchPrefix,
  benchRuntime,
  disposeRuntime,
  fmt,
  infoField,
  load1,
  sleep,
  startEmulatorChild,
  writePromptsFile,
  type BenchContext,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

async function usedMemory(redis: Redis): Promise<number> {
  // Let freed client buffers and lazy frees settle.
  await sleep(300);
  return Number(await infoField(redis, 'memory', 'used_memory'));
}

async function keyBytes(redis: Redis, key: string): Promise<number> {
  return Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
}

export async function runMemorySection(ctx: BenchContext): Promise<SectionResult> {
  const n = ctx.quick ? 10_000 : 100_000;
  const file = await writePromptsFile(ctx, `memory-${n}.jsonl`, n);
  const rows: string[][] = [];
  const notes: string[] = [];
  const emulator = await startEmulatorChild({ requestLogSize: 0 });
  try {
    // With the canary: the rest are held behind it (the same hash entries, under its reason).
    {
      const prefix = benchPrefix('mem-canary');
      const apiKey = benchApiKey();
      const runtime = await benchRuntime(ctx, prefix, apiKey);
      try {
        await runtime.requests.waitUntilReady();
        const before = await usedMemory(ctx.admin);
        await submitBatch(runtime, { input: file, canary: true });
        const after = await usedMemory(ctx.admin);
        rows.push([
          'pending request, canary (held behind it)',
          fmt(n),
          fmt((after - before) / n),
          '—',
          load1(),
        ]);
      } finally {
        await disposeRuntime(ctx, runtime, apiKey);
      }
    }
    const prefix = benchPrefix('mem');
    const apiKey = benchApiKey();
    const runtime = await benchRuntime(ctx, prefix, apiKey, { concurrency: '32' });
    try {
      await runtime.requests.waitUntilReady();
      const before = await usedMemory(ctx.admin);
      const { batchId } = await submitBatch(runtime, { input: file, canary: false });
      const pending = await usedMemory(ctx.admin);
      const heldBytes = await keyBytes(ctx.admin, runtime.keys.held(batchId, SHARE_REASON));
      const idsBytes = await keyBytes(ctx.admin, runtime.keys.ids(batchId));
      rows.push([
        'pending request, no canary (held for its share)',
        fmt(n),
        fmt((pending - before) / n),
        `share hash ${fmt(heldBytes / n)}/req, ids list ${fmt(idsBytes / n, 1)}/req`,
        load1(),
      ]);
      ctx.log(`memory: ${fmt((pending - before) / n)} bytes per pending request`);

      const worker = await startWorker(runtime, {
        client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 60_000 }),
      });
      await waitForBatch(runtime, batchId, { pollMs: 200 });
      await worker.close();
      const finished = await usedMemory(ctx.admin);
      const resultsBytes = await keyBytes(ctx.admin, runtime.keys.results(batchId));
      const sample = await ctx.admin.hstrlen(runtime.keys.results(batchId), 'req-0000000');
      const kept = await runtime.requests.getCompletedCount();
      rows.push([
        'finished request (result line + rest)',
        fmt(n),
        fmt((finished - before) / n),
        `results hash ${fmt(resultsBytes / n)}/result (a line is ~${fmt(sample)} chars), ids list ${fmt(idsBytes / n, 1)}; ${fmt(kept)} completed jobs kept by BullMQ`,
        load1(),
      ]);
      notes.push(
        `Per result, the results hash alone: ${fmt(resultsBytes / n)} bytes for a ~${fmt(sample)}-character line ` +
          `(overhead ${fmt(resultsBytes / n - sample)} bytes). The finished figure also carries the ids list ` +
          `(${fmt(idsBytes / n, 1)} bytes/request) and the ${fmt(kept)} completed jobs BullMQ keeps (removeOnComplete 1,000) ` +
          `spread over ${fmt(n)}.`,
      );
      ctx.log(`memory: ${fmt((finished - before) / n)} bytes per finished request`);
    } finally {
      await disposeRuntime(ctx, runtime, apiKey);
    }
  } finally {
    await emulator.close();
  }
  return {
    key: 'memory',
    title: '5. Redis memory per pending request and per stored result',
    intro:
      `INFO memory used_memory before and after, divided by N. Requests of ~300 bytes (one ~200-character ` +
      'user message, max_tokens 256); replies of 16-128 tokens from the emulator.',
    tables: [{ header: ['what', 'N', 'bytes each', 'breakdown (MEMORY USAGE)', 'load'], rows }],
    notes,
  };
}
