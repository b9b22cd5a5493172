import type { Command } from 'commander';
import { deleteBatch } from '../operations/delete-batch.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

export function registerDeleteCommand(program: Command): void {
  const command = program
    .command('delete')
    .description('Remove a batch: its queued requests (unsent), dead-letter entries, records and results.')
    .argument('<batch>', 'batch id')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(command, ['logLevel']);
  command.action(async (batch: string, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const result = await deleteBatch(runtime, batch);
      if (!result.existed) {
        process.stderr.write(`claude-batch: no batch ${batch} under prefix ${runtime.keys.bullPrefix}\n`);
        return EXIT.usage;
      }
      process.stderr.write(
        `batch ${batch} deleted: ${result.removedRequests} queued requests removed unsent, ${result.removedDeadLetters} dead-letter entries removed\n`,
      );
      return EXIT.ok;
    });
  });
}
