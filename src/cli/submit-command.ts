import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import {
  costAt,
  DEFAULT_PRICE_TABLE,
  findPrice,
  loadPriceTable,
  type PriceTable,
} from '../pricing/price-table.js';
import { describeAutoCache } from '../batch/auto-cache.js';
import { submitBatch, type SubmitResult } from '../queue/producer.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, parseIntArg, withRuntime } from './common.js';

export function registerSubmitCommand(program: Command): void {
  const command = program
    .command('submit')
    .description('Validate a JSONL file of requests and enqueue it as a batch (resumable, idempotent).')
    .argument('<file>', 'JSONL in the Message Batches request format, or - for standard input')
    .option('--no-canary', 'send every request at once, without first sending one per model alone')
    .option(
      '--no-auto-cache',
      "leave the requests' prompt caching as written (default: mark the prefix most requests of a model share with one cache_control breakpoint)",
    )
    .option('--batch-id <id>', 'name the batch (default: derived from the content, so a resubmit resumes it)')
    .option(
      '--priority <n>',
      'fair-share weight against other batches running at once (1-1000, default 1): priority 2 is sent twice as fast as 1; on a resubmit, re-weights the batch',
      parseIntArg('--priority'),
    )
    .option('--dry-run', 'validate, count requests and estimate tokens and cost per model; enqueue nothing')
    .option('--prices <file>', 'price table (JSON) for --dry-run; default: the built-in list prices')
    .addHelpText(
      'after',
      `
Prints the batch id on stderr before enqueuing (so a killed submit can be resumed by running it
again) and alone on stdout's last line at the end. Invalid input: one FILE:LINE: field: reason
per bad line on stderr, exit 2, nothing enqueued.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(command, ['model', 'maxTokens', 'system', 'maxErrors', 'logLevel']);
  command.action(async (file: string, options: Record<string, unknown>) => {
    limitHeapGrowth();
    await withRuntime(options, async (runtime) => {
      const { config } = runtime;
      const result = await submitBatch(runtime, {
        input: file,
        batchId: options['batchId'] as string | undefined,
        defaults: { model: config.model, maxTokens: config.maxTokens, system: config.system },
        maxErrors: config.maxErrors,
        canary: options['canary'] !== false,
        priority: options['priority'] as number | undefined,
        autoCache: options['autoCache'] !== false,
        chunkSize: config.chunkSize,
        dryRun: options['dryRun'] === true,
        onBatchId: (id) => process.stderr.write(`batch ${id}: enqueuing...\n`),
      });
      if (result.outcome === 'dry-run') {
        const prices = options['prices']
          ? await loadPriceTable(options['prices'] as string)
          : DEFAULT_PRICE_TABLE;
        process.stderr.write(`${formatDryRun(result, prices)}\n`);
      } else {
        process.stderr.write(
          `batch ${result.batchId}: ${result.outcome}, ${result.enqueued} of ${result.total} requests enqueued now\n`,
        );
      }
      process.stdout.write(`${result.batchId}\n`);
      return EXIT.ok;
    });
  });
}

/**
 * How far V8 lets the heap grow past what the last full collection kept, in percent: V8's own
 * choice for a process with a few MB live and a 4 GB limit is up to ~4×.
 *
 * Why: submit keeps ~17 MB live, but enqueuing a chunk allocates ~16 KB per request (most of it in
 * BullMQ and ioredis) that lives until Redis answers, long enough to be promoted out of the young
 * generation. With V8's default, the old generation then grew to ~95 MB of garbage between full
 * collections, and the peak RSS at a million lines was ~200 MB; at 50 % it is ~130 MB, for ~15 %
 * more CPU in the submit process and about the same wall time, since Redis is the bottleneck
 * (scripts/bench, section submit). Only the `submit` command sets this: it is process-wide, so
 * the library leaves it alone, and a worker's heap is better left to V8's defaults.
 */
export const SUBMIT_HEAP_GROWING_PERCENT = 50;

function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${SUBMIT_HEAP_GROWING_PERCENT}`);
}

/** Characters per token for the dry run's typical-case estimate (the budget's own estimate errs high). */
const TYPICAL_CHARS_PER_TOKEN = 4;

/** Requests, estimated tokens and cost per model, and the total: what the batch will cost at most. */
export function formatDryRun(result: SubmitResult, prices: PriceTable): string {
  const lines = [`${result.total} valid requests; nothing enqueued (--dry-run)`];
  let total = 0;
  let cachedTotal = 0;
  let unpriced = false;
  for (const [model, stats] of Object.entries(result.models)) {
    const input = Math.ceil(stats.chars / TYPICAL_CHARS_PER_TOKEN);
    const price = findPrice(prices, model);
    const plan = result.autoCache?.models[model];
    // The planner's prefix estimate errs high (3 characters a token); the dry run's typical case is 4.
    const prefix =
      plan?.outcome === 'breakpoint'
        ? Math.min(Math.floor(input / Math.max(1, plan.sharing)), Math.ceil((plan.prefixTokens * 3) / 4))
        : 0;
    const usage = {
      input_tokens: input,
      output_tokens: stats.maxTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
    const cost = price ? costAt(price, usage) : null;
    // With the breakpoint: the canary writes the prefix once, every other sharing request reads it.
    const cachedCost =
      price && plan?.outcome === 'breakpoint'
        ? costAt(price, {
            ...usage,
            input_tokens: input - prefix * plan.sharing,
            cache_creation_input_tokens: prefix,
            cache_read_input_tokens: prefix * (plan.sharing - 1),
          })
        : cost;
    if (cost === null) unpriced = true;
    else {
      total += cost;
      cachedTotal += cachedCost ?? cost;
    }
    lines.push(
      `  ${model}: ${stats.requests} requests, ~${input} input tokens, at most ${stats.maxTokens} output tokens` +
        `, ${cost === null ? 'no price known (--prices FILE)' : `at most ~$${cost.toFixed(2)}`}` +
        (cost !== null && cachedCost !== null && cachedCost !== cost
          ? `, ~$${cachedCost.toFixed(2)} with its prefix cached`
          : ''),
    );
  }
  if (result.autoCache) {
    for (const line of describeAutoCache(result.autoCache)) lines.push(`  auto-cache ${line}`);
  } else lines.push('  auto-cache off (--no-auto-cache): requests as written');
  lines.push(
    `  estimated cost: at most ~$${total.toFixed(2)}${unpriced ? ' (models without a price left out)' : ''}` +
      ` at ${prices.source} prices, if every reply used its whole max_tokens` +
      (cachedTotal < total ? `; ~$${cachedTotal.toFixed(2)} with auto-caching (as submitted)` : ''),
  );
  return lines.join('\n');
}
