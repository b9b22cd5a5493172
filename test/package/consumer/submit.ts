/**
 * A script in a user's own project, in TypeScript, type-checked against the installed package's
 * types: submit a JSONL batch, work it in this process against the emulator, follow its events,
 * write the results. Run by test/package/pack.test.ts, never from this repository.
 *
 *   node build/submit.js PROMPTS.jsonl RESULTS.jsonl
 */
import {
  exportResults,
  loadConfig,
  openRuntime,
  startEmulator,
  startWorker,
  submitBatch,
  watchBatch,
  type BatchStatus,
  type Runtime,
} from 'claude-batch';

const [input, out] = process.argv.slice(2);
if (!input || !out) throw new Error('usage: submit.js PROMPTS.jsonl RESULTS.jsonl');

const emulator = await startEmulator();
// REDIS_URL, CLAUDE_BATCH_PREFIX and ANTHROPIC_API_KEY come from the environment.
const runtime: Runtime = await openRuntime(loadConfig({ overrides: { baseURL: emulator.url } }));
// The runtime's Redis handles and key layout are internal: left out of the package's types.
// @ts-expect-error internal
void runtime.redis;
// @ts-expect-error internal
void runtime.keys;
try {
  const { batchId, total } = await submitBatch(runtime, { input });
  // Not closed here on purpose: closing the runtime closes it, and the process must still exit.
  await startWorker(runtime);
  let final: BatchStatus | undefined;
  const events: string[] = [];
  for await (const event of watchBatch(runtime, batchId, { intervalMs: 100 })) {
    events.push(event.type);
    if (event.type === 'paused') {
      console.error(`paused: ${event.reason.message} (${event.reason.fix})`);
      break;
    }
    if (event.type === 'progress') {
      const { succeeded, errored } = event.status.request_counts;
      console.error(`${succeeded + errored}/${event.status.total}`);
    }
    if (event.type === 'ended') final = event.status;
  }
  const lines = await exportResults(runtime, batchId, out);
  console.log(
    JSON.stringify({
      batchId,
      total,
      lines,
      counts: final?.request_counts,
      first: events[0],
      last: events.at(-1),
    }),
  );
} finally {
  await runtime.close();
  await emulator.close();
}
