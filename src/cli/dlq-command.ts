import type { Command } from 'commander';
import { listDeadLetters } from '../queue/dead-letters.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

export function registerDlqCommand(program: Command): void {
  const dlq = program.command('dlq').description('The dead-letter queue: requests that ended errored.');
  const list = dlq
    .command('list')
    .description('List dead-letter entries.')
    .option('--batch <id>', 'only this batch')
    .option('--type <type>', 'only this API error type (e.g. billing_error)')
    .option('--json', 'a JSON array of {batch_id, custom_id, status, error_type, reason, message, attempts, failed_at}')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(list, ['logLevel']);
  list.action(async (options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const rows = await listDeadLetters(runtime, {
        batch: options['batch'] as string | undefined,
        type: options['type'] as string | undefined,
      });
      if (options['json']) {
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return EXIT.ok;
      }
      if (rows.length === 0) process.stdout.write('no dead-letter entries\n');
      for (const row of rows) {
        process.stdout.write(
          `${row.batch_id} ${row.custom_id}  ${row.error_type} (${row.status ?? 'not sent'})  ${row.reason}  after ${row.attempts} calls  ${row.failed_at}\n    ${row.message}\n`,
        );
      }
      return EXIT.ok;
    });
  });
}
