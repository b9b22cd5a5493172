import type { Command } from 'commander';
import { waitForBatch } from '../operations/wait-for-batch.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';
import { formatBatchStatus } from './format-status.js';

export function registerWaitCommand(program: Command): void {
  const command = program
    .command('wait')
    .description('Block until the batch has ended; exit 0 if every request succeeded, 1 otherwise.')
    .argument('<batch>', 'batch id')
    .option('--json', 'print the final status as JSON')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(command, ['logLevel']);
  command.action(async (batch: string, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const status = await waitForBatch(runtime, batch);
      process.stdout.write(`${options['json'] ? JSON.stringify(status) : formatBatchStatus(status)}\n`);
      const c = status.request_counts;
      return c.errored + c.canceled + c.expired > 0 ? EXIT.batchHadErrors : EXIT.ok;
    });
  });
}
