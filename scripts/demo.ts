/**
 * `npm run demo`: the main job end to end on embedded defaults.
 *
 * - No ANTHROPIC_API_KEY: starts the bundled emulator in this process with a mild fault plan
 *   (429, 529 and 500 to retry; 400 and 413 to dead-letter: nothing key- or model-wide).
 * - With a key: uses the real API, says how many requests it will send, and asks first
 *   (`--yes` skips the question).
 * - No Redis at REDIS_URL: starts a private redis-server on a free port if one is installed,
 *   and stops it afterwards; otherwise says how to start one.
 *
 * Flags: --yes, --file FILE (default scripts/demo/prompts.jsonl), --concurrency N.
 */
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { createClaudeClient } from '../src/claude/claude-client.js';
import { formatBatchStatus } from '../src/cli/format-status.js';
import { createProgressReporter } from '../src/cli/progress.js';
import { loadConfig } from '../src/config/load-config.js';
import { startPrivateRedis, type PrivateRedis } from '../src/devtools/private-redis.js';
import { startEmulator, type EmulatorHandle } from '../src/emulator/index.js';
import { createLogger } from '../src/logger.js';
import { createRedis, waitForRedis } from '../src/redis/connection.js';
import { submitBatch } from '../src/queue/producer.js';
import { listDeadLetters } from '../src/queue/dead-letters.js';
import { runBatch } from '../src/run-batch.js';
import { openRuntime } from '../src/runtime.js';
import { Secret } from '../src/secret.js';

const { values: flags } = parseArgs({
  options: {
    yes: { type: 'boolean', default: false },
    file: { type: 'string', default: 'scripts/demo/prompts.jsonl' },
    concurrency: { type: 'string', default: '16' },
  },
});
const file = flags.file;
const defaults = { model: 'claude-haiku-4-5', maxTokens: 200 };
const say = (line: string) => process.stderr.write(`${line}\n`);

async function redisAnswers(url: string): Promise<boolean> {
  const client = createRedis(
    { url, clusterNodes: [] },
    { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true },
  );
  client.on('error', () => {});
  try {
    await waitForRedis(client, { url, clusterNodes: [] }, 2_000);
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function hasRedisServer(): Promise<boolean> {
  const { spawnSync } = await import('node:child_process');
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function main(): Promise<number> {
  let redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  let privateRedis: PrivateRedis | undefined;
  let emulator: EmulatorHandle | undefined;
  try {
    if (!(await redisAnswers(redisUrl))) {
      if (!(await hasRedisServer())) {
        say(`No Redis answers at ${redisUrl}, and redis-server is not installed.`);
        say('Start one, then run the demo again:');
        say('  docker compose up -d redis          # from this repository');
        say('  or: apt-get install redis-server && redis-server --daemonize yes');
        say('  or: set REDIS_URL to a Redis you have');
        return 3;
      }
      privateRedis = await startPrivateRedis();
      redisUrl = privateRedis.url;
      say(
        `No Redis answered at the default address: started a private redis-server on port ${privateRedis.port} (stopped at the end).`,
      );
    }

    const config = loadConfig({
      env: { ...process.env, REDIS_URL: redisUrl },
      overrides: {
        prefix: process.env['CLAUDE_BATCH_PREFIX'] ?? 'claude-batch-demo',
        concurrency: flags.concurrency,
      },
    });
    // Dead-letter warnings would interleave with the progress bar; the summary lists them instead.
    const logger = createLogger({ level: 'error' });
    const runtime = await openRuntime(config, { logger });
    try {
      let apiKey = config.apiKey;
      let baseURL = config.baseURL;
      if (apiKey) {
        const dry = await submitBatch(runtime, { input: file, defaults, dryRun: true });
        say(
          `ANTHROPIC_API_KEY is set: this demo will send ${dry.total} requests to the real API${baseURL ? ` at ${baseURL}` : ''}.`,
        );
        if (!flags.yes) {
          if (!process.stdin.isTTY) {
            say(
              'Not a terminal, so nothing to confirm with: run `npm run demo -- --yes` to proceed, or unset ANTHROPIC_API_KEY to use the emulator.',
            );
            return 2;
          }
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question('Send them? [y/N] ');
          rl.close();
          if (!/^y(es)?$/i.test(answer.trim())) {
            say('Nothing sent.');
            return 0;
          }
        }
      } else {
        emulator = await startEmulator({
          seed: 42,
          latency: { fixedMs: 100, jitterMs: 200 },
          faults: {
            probabilities: {
              rate_limit_error: 0.05,
              overloaded_error: 0.04,
              api_error: 0.03,
              invalid_request_error: 0.01,
              request_too_large: 0.01,
            },
            retryAfterSeconds: 1,
          },
        });
        apiKey = new Secret('demo-key-for-the-emulator');
        baseURL = emulator.url;
        say(
          `No ANTHROPIC_API_KEY: using the bundled emulator at ${emulator.url} with a mild fault plan (429, 529, 500 retried; 400, 413 dead-lettered).`,
        );
      }

      const client = createClaudeClient({ apiKey, baseURL, timeoutMs: 60_000 });
      await mkdir('.demo', { recursive: true });
      const batchId = `demo-${new Date()
        .toISOString()
        .replace(/[^0-9]/g, '')
        .slice(0, 14)}`;
      const out = `.demo/${batchId}.results.jsonl`;
      const progress = createProgressReporter(process.stderr, 2_000);
      const result = await runBatch(runtime, {
        input: file,
        out,
        batchId,
        defaults,
        client,
        apiKey,
        order: 'input',
        onBatchId: (id) =>
          say(
            `Submitted ${file} as batch ${id}; working it with ${config.concurrency} requests in flight...`,
          ),
        onStatus: (status) => progress.update(status),
      });
      progress.done();
      process.stdout.write(`\n${formatBatchStatus(result.status)}\n\n`);
      const dead = await listDeadLetters(runtime, { batch: batchId });
      if (dead.length > 0) {
        process.stdout.write(
          `Dead-letter queue: ${dead.length} entries (e.g. ${dead[0]!.custom_id}: ${dead[0]!.error_type}, ${dead[0]!.reason})\n`,
        );
      }
      process.stdout.write(`Results: ${out} (${result.resultsWritten} lines, one per custom_id)\n`);
      if (privateRedis) {
        process.stdout.write(
          'The private Redis is stopped now; with your own Redis, `claude-batch status` and `dlq list` show this batch.\n',
        );
      } else {
        process.stdout.write(
          `See it again: CLAUDE_BATCH_PREFIX=${config.prefix} npx claude-batch status ${batchId}\n`,
        );
      }
      return 0;
    } finally {
      await runtime.close();
    }
  } finally {
    await emulator?.close();
    await privateRedis?.stop({ removeDir: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(3);
  },
);
