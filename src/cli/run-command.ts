import type { Command } from 'commander';
import type { Via } from '../hosted/route.js';
import { loadPriceTable } from '../pricing/price-table.js';
import { runBatch } from '../run-batch.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, parseIntArg, withRuntime } from './common.js';
import { formatBatchStatus } from './format-status.js';
import { createProgressReporter } from './progress.js';

export function registerRunCommand(program: Command): void {
  const command = program
    .command('run')
    .description('Submit, work the batch in this process, wait, and write the results: the whole story.')
    .argument('<file>', 'JSONL in the Message Batches request format, or - for standard input')
    .requiredOption('--out <file>', 'where to write the results JSONL')
    .option('--no-canary', 'send every request at once, without first sending one per model alone')
    .option(
      '--no-auto-cache',
      "leave the requests' prompt caching as written (default: mark the prefix most requests of a model share with one cache_control breakpoint)",
    )
    .option('--batch-id <id>', 'name the batch (default: derived from the content)')
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
    .option('--order <order>', 'results order: any or input', 'any')
    .option(
      '--prices <file>',
      'price table (JSON) frozen into the batch for --max-cost; default: the built-in list prices',
    )
    .addHelpText(
      'after',
      `
Other worker processes on the same Redis and prefix may help; the budget is shared.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(command, [
    'model',
    'maxTokens',
    'system',
    'maxCost',
    'maxErrors',
    'concurrency',
    'rpm',
    'itpm',
    'otpm',
    'budgetsFile',
    'maxAttempts',
    'maxRetryWaitMs',
    'maxMaybeBilled',
    'streamMinMaxTokens',
    'requestTimeoutMs',
    'logLevel',
  ]);
  command.action(async (file: string, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const { config } = runtime;
      const progress = createProgressReporter(process.stderr);
      const result = await runBatch(runtime, {
        input: file,
        out: options['out'] as string,
        batchId: options['batchId'] as string | undefined,
        order: options['order'] === 'input' ? 'input' : 'any',
        defaults: { model: config.model, maxTokens: config.maxTokens, system: config.system },
        maxErrors: config.maxErrors,
        canary: options['canary'] !== false,
        priority: options['priority'] as number | undefined,
        via: options['via'] as Via | undefined,
        deadline: options['deadline'] as string | undefined,
        autoCache: options['autoCache'] !== false,
        maxCost: config.maxCost,
        ...(options['prices'] ? { prices: await loadPriceTable(options['prices'] as string) } : {}),
        onBatchId: (id) => process.stderr.write(`batch ${id}\n`),
        onStatus: (status) => progress.update(status),
      });
      progress.done();
      process.stdout.write(`${formatBatchStatus(result.status)}\n`);
      process.stderr.write(`${result.resultsWritten} results written to ${options['out'] as string}\n`);
      const c = result.status.request_counts;
      return c.errored + c.canceled + c.expired > 0 ? EXIT.batchHadErrors : EXIT.ok;
    });
  });
}
