import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { routePlanOf, type Via } from '../hosted/route.js';
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
      '--via <path>',
      'live (default: the Messages API one by one), batches (the hosted Message Batches API: half price, results as each hosted batch ends) or auto (hosted while --deadline leaves room to finish live, then live)',
    )
    .option(
      '--deadline <when>',
      'when the batch must be done: a duration (90m, 6h, 1d12h) or an RFC 3339 time; --via auto plans by it, and hosted requests that expire before it are sent again',
    )
    .option(
      '--priority <n>',
      'fair-share weight against other batches running at once (1-1000, default 1): priority 2 is sent twice as fast as 1; on a resubmit, re-weights the batch',
      parseIntArg('--priority'),
    )
    .option('--dry-run', 'validate, count requests and estimate tokens and cost per model; enqueue nothing')
    .option(
      '--prices <file>',
      'price table (JSON) frozen into the batch for --max-cost, and used by --dry-run; default: the built-in list prices',
    )
    .addHelpText(
      'after',
      `
With --max-cost USD (or CLAUDE_BATCH_MAX_COST) the batch gets a hard cost ceiling: workers reserve
each call's worst case at the prices frozen here, and at the ceiling the batch pauses (reason
cost_ceiling) until \`claude-batch resume BATCH --max-cost N\`. Every model needs a price; server
tools (web search, code execution, web fetch, MCP) are refused. The ceiling is set when the batch is
created: a resubmit asking for another one is refused (use resume).

Prints the batch id on stderr before enqueuing (so a killed submit can be resumed by running it
again) and alone on stdout's last line at the end. Invalid input: one FILE:LINE: field: reason
per bad line on stderr, exit 2, nothing enqueued.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(command, ['model', 'maxTokens', 'system', 'maxCost', 'maxErrors', 'logLevel']);
  command.action(async (file: string, options: Record<string, unknown>) => {
    limitHeapGrowth();
    await withRuntime(options, async (runtime) => {
      const { config } = runtime;
      const prices = options['prices']
        ? await loadPriceTable(options['prices'] as string)
        : DEFAULT_PRICE_TABLE;
      const result = await submitBatch(runtime, {
        input: file,
        batchId: options['batchId'] as string | undefined,
        defaults: { model: config.model, maxTokens: config.maxTokens, system: config.system },
        maxErrors: config.maxErrors,
        canary: options['canary'] !== false,
        priority: options['priority'] as number | undefined,
        via: options['via'] as Via | undefined,
        deadline: options['deadline'] as string | undefined,
        autoCache: options['autoCache'] !== false,
        chunkSize: config.chunkSize,
        dryRun: options['dryRun'] === true,
        maxCost: config.maxCost,
        prices,
        routePlan: routePlanOf(config),
        onBatchId: (id) => process.stderr.write(`batch ${id}: enqueuing...\n`),
      });
      if (result.outcome === 'dry-run') {
        process.stderr.write(`${formatDryRun(result, prices, options['via'] as Via | undefined)}\n`);
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
export function formatDryRun(result: SubmitResult, prices: PriceTable, via: Via = 'live'): string {
  const lines = [`${result.total} valid requests; nothing enqueued (--dry-run)`];
  let total = 0;
  let cachedTotal = 0;
  /** Input side only (no output), with caching as submitted: the least the batch costs. */
  let inputTotal = 0;
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
    if (cost === null || price === null) unpriced = true;
    else {
      total += cost;
      cachedTotal += cachedCost ?? cost;
      inputTotal += (cachedCost ?? cost) - costAt(price, { ...NO_USAGE, output_tokens: stats.maxTokens });
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
  if (via !== 'live') {
    // The hosted Message Batches API bills every token at half the list price (anthropic-api.md).
    lines.push(
      `  --via ${via}: ~$${(cachedTotal / 2).toFixed(2)} at most for what the hosted API serves (half price)` +
        (via === 'auto' ? '; what goes live to meet --deadline is at full price' : ''),
    );
  }
  const ceiling = formatCeilingOutlook(result, { input: inputTotal, full: cachedTotal });
  if (ceiling) lines.push(`  ${ceiling}`);
  return lines.join('\n');
}

const NO_USAGE = {
  input_tokens: 0,
  output_tokens: 0,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
};

/**
 * Whether `--max-cost` is likely to be reached (issue 15 item 4): between the input side alone (the
 * least the batch costs) and every reply at its max_tokens (the most), typical case, caching as
 * submitted; and whether one request's worst case (what the ledger reserves) exceeds it.
 */
function formatCeilingOutlook(
  result: SubmitResult,
  estimate: { input: number; full: number },
): string | null {
  const ceiling = result.cost.maxCostUsd;
  if (ceiling === null) return null;
  const worst = Object.values(result.cost.worstCaseUsd);
  const largest = Math.max(0, ...worst.map((w) => w.largest));
  const head = `ceiling $${ceiling}:`;
  if (largest > ceiling) {
    return `${head} one request may cost up to $${largest.toFixed(4)} at worst, more than the whole ceiling: the batch would pause before sending it`;
  }
  if (estimate.full <= ceiling) {
    return `${head} not expected to be reached (~$${estimate.full.toFixed(2)} even if every reply used its whole max_tokens)`;
  }
  if (estimate.input >= ceiling) {
    const fit = Math.floor((result.total * ceiling) / Math.max(estimate.input, 1e-9));
    return `${head} will be reached: the input alone costs ~$${estimate.input.toFixed(2)}; about ${fit} of ${result.total} requests fit before the batch pauses (cost_ceiling)`;
  }
  const share = Math.round(((ceiling - estimate.input) / (estimate.full - estimate.input)) * 100);
  return `${head} reached if replies average more than ~${share} % of their max_tokens (input ~$${estimate.input.toFixed(2)}, at most ~$${estimate.full.toFixed(2)}); then the batch pauses (cost_ceiling)`;
}
