import type { Command } from 'commander';
import { getBatchStatus, listBatchStatuses } from '../operations/batch-status.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';
import type { Runtime } from '../runtime.js';
import { waitForBatch } from '../operations/wait-for-batch.js';
import { budgetFromConfig } from '../worker/start-worker.js';
import { formatBatchStatus, formatBatchTable, formatBudget } from './format-status.js';
import { createProgressReporter } from './progress.js';

export function registerStatusCommand(program: Command): void {
  const command = program
    .command('status')
    .description("A batch's request counts, errors by type (with the fix), usage; or a table of all batches.")
    .argument('[batch]', 'batch id (default: all batches)')
    .option('--json', 'one JSON object (an array without a batch id)')
    .option(
      '--watch',
      'follow the batch until it ends: a live progress bar with rate, ETA and errors by type',
    )
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(command, ['rpm', 'itpm', 'otpm', 'budgetsFile', 'logLevel']);
  command.action(async (batch: string | undefined, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      if (batch === undefined) {
        const all = await listBatchStatuses(runtime);
        process.stdout.write(`${options['json'] ? JSON.stringify(all) : formatBatchTable(all)}\n`);
        if (!options['json']) await printBudget(runtime);
        return EXIT.ok;
      }
      if (options['watch']) {
        const progress = createProgressReporter(process.stderr);
        const final = await waitForBatch(runtime, batch, {
          pollMs: 1_000,
          onStatus: (s) => progress.update(s),
        });
        progress.done();
        process.stdout.write(`${options['json'] ? JSON.stringify(final) : formatBatchStatus(final)}\n`);
        return EXIT.ok;
      }
      const status = await getBatchStatus(runtime, batch);
      if (!status) {
        process.stderr.write(`claude-batch: no batch ${batch} under prefix ${runtime.keys.bullPrefix}\n`);
        return EXIT.usage;
      }
      process.stdout.write(`${options['json'] ? JSON.stringify(status) : formatBatchStatus(status)}\n`);
      if (!options['json']) await printBudget(runtime);
      return EXIT.ok;
    });
  });
}

/** The budget is the account's: it can be shown only with the key whose fingerprint names it. */
async function printBudget(runtime: Runtime): Promise<void> {
  if (!runtime.config.apiKey) return;
  const budget = await budgetFromConfig(runtime, runtime.config.apiKey);
  try {
    process.stdout.write(`${formatBudget(await budget.snapshot())}\n`);
  } finally {
    await budget.close();
  }
}
