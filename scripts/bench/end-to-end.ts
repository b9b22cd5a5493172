/**
 * Section "e2e": the whole story as a user runs it, `claude-batch run FILE --out RESULTS --rpm 4000`,
 * as a child process, against the emulator (a child process) answering after 200 ms and enforcing
 * 4,000 RPM itself. Wall time from spawn to exit (tsx start-up, submit, canary, work, results file)
 * against the theoretical minimum of the API's bucket: the first 4,000 at once (one latency), the
 * rest at 4,000/min: N ≤ 4000 → latency; else (N − 4000) / 4000 min + latency.
 *
 *   npm run bench -- e2e [--quick] [--e2e-concurrency 64]      (quick: 10k prompts; full: 100k)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { budgetKeyPattern } from '../../src/limits/index.js';
import type { Secret } from '../../src/secret.js';
import {
  CLI_BIN,
  benchApiKey,
  benchPrefix,
  childEnv,
  deleteKeys,
  fmt,
  load1,
  mb,
  runNode,
  startEmulatorChild,
  writePromptsFile,
  type BenchContext,
} from './lib/harness.js';
import type { SectionResult } from './lib/report.js';

const LATENCY_MS = 200;
const RPM = 4_000;

export function theoreticalMinSeconds(n: number): number {
  return n <= RPM ? LATENCY_MS / 1000 : ((n - RPM) / RPM) * 60 + LATENCY_MS / 1000;
}

export async function runEndToEndSection(ctx: BenchContext): Promise<SectionResult> {
  const n = ctx.quick ? 10_000 : 100_000;
  const concurrency = Number(ctx.options['e2e-concurrency'] ?? 64);
  const file = await writePromptsFile(ctx, `e2e-${n}.jsonl`, n);
  const rows: string[][] = [];
  const notes: string[] = [];
  // Quick runs also show the canary's cost (one latency plus the release); at 100k one run is ~25 min.
  for (const canary of ctx.quick ? [true, false] : [true]) {
    const emulator = await startEmulatorChild({
      latency: { fixedMs: LATENCY_MS },
      limits: { rpm: RPM },
      requestLogSize: 0,
    });
    const prefix = benchPrefix('e2e');
    const apiKey: Secret = benchApiKey();
    const out = join(ctx.tmpDir, `e2e-results-${canary ? 'canary' : 'nocanary'}.jsonl`);
    try {
      ctx.log(`e2e: ${fmt(n)} prompts, canary ${canary ? 'on' : 'off'}, concurrency ${concurrency}...`);
      const run = await runNode(
        [
          CLI_BIN,
          'run',
          file,
          '--out',
          out,
          '--rpm',
          String(RPM),
          '--concurrency',
          String(concurrency),
          '--log-level',
          'warn',
          ...(canary ? [] : ['--no-canary']),
        ],
        childEnv(ctx, {
          CLAUDE_BATCH_PREFIX: prefix,
          ANTHROPIC_API_KEY: apiKey.reveal(),
          ANTHROPIC_BASE_URL: emulator.url,
        }),
        { nodeFlags: ctx.childNodeFlags },
      );
      const loadNow = load1();
      const stats = await emulator.stats();
      if (run.code !== 0) throw new Error(`claude-batch run exited ${run.code}: ${run.stderr.slice(-2000)}`);
      const lines = (await readFile(out, 'utf8')).split('\n').filter((l) => l.length > 0).length;
      const min = theoreticalMinSeconds(n);
      const wall = run.wallMs / 1000;
      rows.push([
        fmt(n),
        canary ? 'on (default)' : 'off',
        String(concurrency),
        min.toFixed(1),
        wall.toFixed(1),
        (min / wall).toFixed(2),
        fmt(stats.byStatus['200'] ?? 0),
        fmt(stats.byStatus['429'] ?? 0),
        fmt(lines),
        mb(run.maxRssKb),
        loadNow,
      ]);
      ctx.log(`  ${wall.toFixed(1)} s (min ${min.toFixed(1)} s), 429s ${stats.byStatus['429'] ?? 0}, load ${loadNow}`);
      if (lines !== n) notes.push(`canary ${canary ? 'on' : 'off'}: ${lines} results lines for ${n} prompts!`);
    } finally {
      await emulator.close();
      await deleteKeys(ctx.admin, `${prefix}:*`);
      await deleteKeys(ctx.admin, budgetKeyPattern(apiKey.fingerprint()));
    }
  }
  return {
    key: 'e2e',
    title: '6. End to end: `claude-batch run` at 4,000 RPM against the theoretical minimum',
    intro:
      `\`claude-batch run FILE --out R --rpm ${RPM} --concurrency ${concurrency}\` as a child process; emulator ` +
      `latency ${LATENCY_MS} ms with its own ${RPM} RPM bucket. Minimum: N ≤ ${RPM} → one latency, else ` +
      `(N − ${RPM}) / ${RPM} min + latency. Wall: spawn to exit (start-up, submit, canary, work, results file).`,
    tables: [
      {
        header: [
          'N',
          'canary',
          'concurrency',
          'min s',
          'wall s',
          'min / wall',
          '200s',
          '429s',
          'results lines',
          'peak RSS',
          'load',
        ],
        rows,
      },
    ],
    notes,
  };
}
