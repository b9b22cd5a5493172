/**
 * Section "utilisation" (issue 16): how much of its budget a batch uses with default flags at
 * realistic latencies. The emulator (a child) enforces 3,000 RPM and 1,500,000 ITPM and answers
 * each request after 3 to 15 s (uniform); N requests are submitted (no canary), then `claude-batch
 * worker` processes with default flags work them:
 *   1 process, limits given (--rpm/--itpm as the emulator's);
 *   3 processes, limits given;
 *   1 process, no limits given (learned from the API's headers).
 * ideal = N / rate + mean latency (the issue's definition; it ignores the API bucket's initial
 * burst of one minute's worth, so a run can beat it); utilisation = ideal / wall time, wall from
 * the workers' start to the batch's end. 429s counted at the emulator.
 *
 *   npm run bench -- utilisation [--quick]    (quick: 3 minutes of budget per run; full: 10)
 */
import { type ChildProcess } from 'node:child_process';
import { startPrivateRedis } from '../../src/devtools/private-redis.js';
import { waitForBatch } from '../../src/operations/wait-for-batch.js';
import { submitBatch } from '../../src/queue/producer.js';
import {
  benchApiKey,
  benchPrefix,
  benchRuntime,
  fmt,
  load1,
  startEmulatorChild,
  writePromptsFile,
  type BenchContext,
  spawnCliWorker,
  stopChild,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const RPM = 3_000;
const ITPM = 1_500_000;
const LATENCY = { fixedMs: 3_000, jitterMs: 12_000 };
const MEAN_LATENCY_S = (LATENCY.fixedMs + LATENCY.jitterMs / 2) / 1000;

interface Variant {
  label: string;
  processes: number;
  limits: boolean;
}

const VARIANTS: readonly Variant[] = [
  { label: '1 process, limits given', processes: 1, limits: true },
  { label: '3 processes, limits given', processes: 3, limits: true },
  { label: '1 process, no limits (learned)', processes: 1, limits: false },
];

export async function runUtilisationSection(ctx: BenchContext): Promise<SectionResult> {
  const minutes = ctx.quick ? 3 : 10;
  const n = RPM * minutes;
  const ideal = n / (RPM / 60) + MEAN_LATENCY_S;
  const rows: string[][] = [];
  const notes: string[] = [];
  const file = await writePromptsFile(ctx, `utilisation-${n}.jsonl`, n);
  for (const variant of VARIANTS) {
    const redis = await startPrivateRedis();
    const emulator = await startEmulatorChild({ seed: 16, limits: { rpm: RPM, itpm: ITPM }, latency: LATENCY });
    const local: BenchContext = { ...ctx, redisUrl: redis.url };
    const apiKey = benchApiKey();
    const runtime = await benchRuntime(local, benchPrefix('utilisation'), apiKey);
    const workers: ChildProcess[] = [];
    try {
      const { batchId } = await submitBatch(runtime, { input: file, canary: false });
      ctx.log(`utilisation, ${variant.label}: ${fmt(n)} requests`);
      const args = [...(variant.limits ? ['--rpm', String(RPM), '--itpm', String(ITPM)] : [])];
      const t0 = performance.now();
      for (let i = 0; i < variant.processes; i++) {
        workers.push(spawnCliWorker(local, { prefix: runtime.keys.bullPrefix, apiKey, baseURL: emulator.url, args }));
      }
      const final = await waitForBatch(runtime, batchId, { pollMs: 500 });
      const wall = (performance.now() - t0) / 1000;
      const stats = await emulator.stats();
      rows.push([
        variant.label,
        fmt(n),
        fmt(wall, 1),
        fmt(ideal, 1),
        fmt(ideal / wall, 2),
        fmt(stats.byStatus['429'] ?? 0),
        fmt(final.request_counts.succeeded),
        load1(),
      ]);
    } finally {
      for (const w of workers) await stopChild(w);
      await runtime.close();
      await emulator.close();
      await redis.stop({ removeDir: true });
    }
  }
  notes.push(
    `Goal (issue 16): one process with default flags (limits given) at ≥ 0.9 of the ideal; three the same, zero 429s; ` +
      `with no limits given, within 0.1 of that. ${ctx.quick ? 'Quick run: 3 minutes of budget per row, not the 10 the goal names.' : ''}`,
  );
  return {
    key: 'utilisation',
    title: '9. Budget utilisation with default flags at realistic latencies',
    intro:
      `The emulator enforces ${fmt(RPM)} RPM and ${fmt(ITPM)} ITPM and answers after 3-15 s (uniform, mean ` +
      `${MEAN_LATENCY_S} s); N = ${minutes} minutes of budget, submitted without canary; \`claude-batch worker\` ` +
      'processes with default flags (--concurrency 512, the cap sized by each process). ideal = N / rate + mean ' +
      "latency (it ignores the API bucket's initial burst of a minute's worth, so a run can beat it).",
    tables: [
      {
        header: ['variant', 'N', 'wall s', 'ideal s', 'utilisation', '429s', 'succeeded', 'load'],
        rows,
      },
    ],
    notes,
  };
}
