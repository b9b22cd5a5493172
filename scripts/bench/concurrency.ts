/**
 * Section "concurrency": throughput of one worker process against its ideal, concurrency / latency,
 * with the emulator (a child process) answering every request after 500 ms and budgets far above need.
 * Each point pre-enqueues more jobs than it can finish, starts a worker at that concurrency, skips a
 * warm-up, then counts completions over a fixed window. Where it bends: the first concurrency whose
 * throughput falls below 90 % of the ideal.
 *
 *   npm run bench -- concurrency [--quick]          (quick: a shorter window per point)
 */
import { submitBatch } from '../../src/queue/producer.js';
import { createClaudeClient } from '../../src/claude/claude-client.js';
import { startWorker } from '../../src/worker/start-worker.js';
import {
  benchApiKey,
  benchPrefix,
  benchRuntime,
  disposeRuntime,
  fmt,
  load1,
  sleep,
  startEmulatorChild,
  writePromptsFile,
  type BenchContext,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const LATENCY_MS = 500;
const LEVELS = [1, 4, 16, 64, 256];

interface Point {
  concurrency: number;
  ideal: number;
  actual: number;
  cpuPercent: number;
  load: string;
}

export async function runConcurrencySection(ctx: BenchContext): Promise<SectionResult> {
  const warmS = ctx.quick ? 1.5 : 3;
  const windowS = ctx.quick ? 4 : 15;
  const emulator = await startEmulatorChild({ latency: { fixedMs: LATENCY_MS }, requestLogSize: 0 });
  const points: Point[] = [];
  try {
    for (const concurrency of LEVELS) {
      const ideal = concurrency / (LATENCY_MS / 1000);
      // Enough for the whole run at the ideal rate, plus a margin, plus what is in flight.
      const n = Math.ceil(ideal * (warmS + windowS + 2) * 1.2) + concurrency;
      const file = await writePromptsFile(ctx, `concurrency-${n}.jsonl`, n);
      const prefix = benchPrefix(`conc${concurrency}`);
      const apiKey = benchApiKey();
      const runtime = await benchRuntime(ctx, prefix, apiKey, {
        concurrency: String(concurrency),
        rpm: '10000000',
        itpm: '10000000000',
        otpm: '10000000000',
      });
      try {
        await submitBatch(runtime, { input: file, canary: false });
        let completed = 0;
        const worker = await startWorker(runtime, {
          client: createClaudeClient({ apiKey, baseURL: emulator.url, timeoutMs: 60_000 }),
        });
        worker.worker.on('completed', () => completed++);
        await sleep(warmS * 1000);
        const from = completed;
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await sleep(windowS * 1000);
        const actual = (completed - from) / ((performance.now() - t0) / 1000);
        const cpu = process.cpuUsage(cpu0);
        const cpuPercent = ((cpu.user + cpu.system) / 1000 / (windowS * 1000)) * 100;
        const loadNow = load1();
        await worker.close();
        points.push({ concurrency, ideal, actual, cpuPercent, load: loadNow });
        ctx.log(
          `concurrency ${concurrency}: ${fmt(actual, 1)} jobs/s of ${fmt(ideal)} ideal (${((actual / ideal) * 100).toFixed(0)} %), ` +
            `worker CPU ${cpuPercent.toFixed(0)} %, load ${loadNow}`,
        );
      } finally {
        await disposeRuntime(ctx, runtime, apiKey);
      }
    }
  } finally {
    await emulator.close();
  }
  const bend = points.find((p) => p.actual / p.ideal < 0.9);
  return {
    key: 'concurrency',
    title: '3. Concurrency: throughput against concurrency / latency',
    intro:
      `Emulator latency ${LATENCY_MS} ms (child process), budgets far above need, one worker process. ` +
      `Per point: jobs pre-enqueued, ${warmS} s warm-up, then completions counted over ${windowS} s. ` +
      'Ideal = concurrency / 0.5 s. Worker CPU: this process over the window (100 % = one core).',
    tables: [
      {
        header: ['concurrency', 'ideal jobs/s', 'actual jobs/s', 'actual / ideal', 'worker CPU', 'load'],
        rows: points.map((p) => [
          String(p.concurrency),
          fmt(p.ideal),
          fmt(p.actual, 1),
          (p.actual / p.ideal).toFixed(2),
          `${p.cpuPercent.toFixed(0)} %`,
          p.load,
        ]),
      },
    ],
    notes: [
      bend
        ? `Bends at concurrency ${bend.concurrency}: ${((bend.actual / bend.ideal) * 100).toFixed(0)} % of the ideal (the first point under 90 %).`
        : 'No bend up to concurrency 256: every point within 90 % of the ideal.',
    ],
  };
}
