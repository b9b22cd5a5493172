import type { Command } from 'commander';
import { exportResults, writeResults } from '../operations/export-results.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

export function registerResultsCommand(program: Command): void {
  const command = program
    .command('results')
    .description('Stream the batch results as Message Batches results JSONL, one line per custom_id.')
    .argument('<batch>', 'batch id')
    .option('--out <file>', 'write to a file (atomically) instead of stdout')
    .option('--order <order>', 'any (fastest) or input (the input file order)', 'any')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(command, ['logLevel']);
  command.action(async (batch: string, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const order = options['order'];
      if (order !== 'any' && order !== 'input') {
        process.stderr.write(`claude-batch: --order: expected any or input, got ${JSON.stringify(order)}\n`);
        return EXIT.usage;
      }
      if (!(await runtime.store.get(batch))) {
        process.stderr.write(`claude-batch: no batch ${batch} under prefix ${runtime.keys.bullPrefix}\n`);
        return EXIT.usage;
      }
      const out = options['out'] as string | undefined;
      if (out) {
        const lines = await exportResults(runtime, batch, out, { order });
        process.stderr.write(`${lines} results written to ${out}\n`);
      } else {
        await writeResults(runtime, batch, process.stdout, { order });
      }
      return EXIT.ok;
    });
  });
}
