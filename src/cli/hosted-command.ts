import type { Command } from 'commander';
import { settleChunk } from '../operations/settle-chunk.js';
import { addSettingOptions, EXIT, parseIntArg, withRuntime } from './common.js';

export function registerHostedCommand(program: Command): void {
  const hosted = program
    .command('hosted')
    .description('Operator actions on the hosted Message Batches of batches sent --via batches|auto.');
  const settle = hosted
    .command('settle')
    .description(
      'Settle a hosted chunk held after an interrupted create (status shows it, with the candidate hosted batch ids).',
    )
    .argument('<batch>', 'batch id')
    .argument('<chunk>', 'chunk number, as status shows it', parseIntArg('<chunk>'))
    .option('--adopt <hosted-id>', 'this hosted batch is the chunk: poll it and take its results')
    .option('--not-created', 'no hosted batch was created for the chunk: create it')
    .addHelpText(
      'after',
      `
Look the candidates up in the Console (Message Batches) or with the API: the chunk's batch has
the same number of requests and was created around the time status gives. Adopting the wrong one
is caught when it ends (its custom_ids are checked); --not-created when one was created pays for
the chunk twice.`,
    );
  addSettingOptions(settle, ['logLevel']);
  settle.action(async (batch: string, chunk: number, options: Record<string, unknown>) => {
    const adopt = options['adopt'] as string | undefined;
    const notCreated = options['notCreated'] === true;
    if ((adopt === undefined) === !notCreated) {
      process.stderr.write('hosted settle: give exactly one of --adopt <hosted-id> and --not-created\n');
      return process.exit(EXIT.usage);
    }
    await withRuntime(options, async (runtime) => {
      const settled = await settleChunk(runtime, batch, chunk, adopt ? { adopt } : { notCreated: true });
      process.stderr.write(
        adopt
          ? `chunk ${chunk} of ${batch}: adopted ${settled.hosted_id}; a worker polls it and takes its results\n`
          : `chunk ${chunk} of ${batch}: marked not created; a worker creates it\n`,
      );
      return EXIT.ok;
    });
  });
}
