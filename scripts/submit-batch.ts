/**
 * The library from a script: what `claude-batch run prompts.jsonl --out results.jsonl` does.
 *
 *   npx tsx scripts/submit-batch.ts prompts.jsonl results.jsonl
 *
 * Uses REDIS_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL and the other settings of the README's
 * configuration table.
 */
import {
  exportResults,
  getBatchStatus,
  loadConfig,
  openRuntime,
  startWorker,
  submitBatch,
  waitForBatch,
} from '../src/index.js';

const [input, out] = process.argv.slice(2);
if (!input || !out) {
  process.stderr.write('usage: tsx scripts/submit-batch.ts PROMPTS.jsonl RESULTS.jsonl\n');
  process.exit(2);
}

const runtime = await openRuntime(loadConfig());
try {
  const { batchId, total } = await submitBatch(runtime, {
    input,
    onBatchId: (id) => process.stderr.write(`batch ${id}\n`),
  });
  process.stderr.write(`${total} requests submitted\n`);
  const worker = await startWorker(runtime);
  try {
    await waitForBatch(runtime, batchId, {
      onStatus: (s) =>
        process.stderr.write(`${s.request_counts.succeeded + s.request_counts.errored}/${s.total}\r`),
    });
  } finally {
    await worker.close();
  }
  const lines = await exportResults(runtime, batchId, out);
  const status = await getBatchStatus(runtime, batchId);
  process.stderr.write(`\n${lines} results in ${out}; ${JSON.stringify(status?.request_counts)}\n`);
} finally {
  await runtime.close();
}
