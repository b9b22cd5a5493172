// The same from plain JavaScript, in one call: submit, work in this process, wait, write results.
// Run by test/package/pack.test.ts from a user's project: node submit.mjs PROMPTS.jsonl RESULTS.jsonl
/* global process, console */
import { loadConfig, openRuntime, runBatch, startEmulator, InputValidationError } from 'claude-batch';

const [input, out] = process.argv.slice(2);
const emulator = await startEmulator();
const runtime = await openRuntime(loadConfig({ overrides: { baseURL: emulator.url } }));
try {
  const { submit, status, resultsWritten } = await runBatch(runtime, { input, out });
  console.log(
    JSON.stringify({
      batchId: submit.batchId,
      total: submit.total,
      lines: resultsWritten,
      counts: status.request_counts,
    }),
  );
} catch (err) {
  if (err instanceof InputValidationError) console.error(err.summary);
  throw err;
} finally {
  await runtime.close();
  await emulator.close();
}
