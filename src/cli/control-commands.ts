import type { Command } from 'commander';
import { pauseQueue, resumeQueue } from '../breakers/breakers.js';
import { cancelBatch } from '../operations/cancel-batch.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

/** `pause`, `resume` and `cancel`. */
export function registerControlCommands(program: Command): void {
  const pause = program
    .command('pause')
    .description('Pause the queue for every worker (in-flight requests finish).')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(pause, ['logLevel']);
  pause.action(async (options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      await pauseQueue(runtime);
      process.stderr.write('queue paused; `claude-batch resume` resumes it\n');
      return EXIT.ok;
    });
  });

  const resume = program
    .command('resume')
    .description('Resume the queue (after `pause`, or after fixing what tripped the key-wide breaker).')
    .addHelpText(
      'after',
      `
After a key-wide breaker, \`dlq retry --type TYPE\` also resumes the queue and sends the
dead-lettered requests again; \`resume\` alone sends only what was still queued.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(resume, ['logLevel']);
  resume.action(async (options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const was = await resumeQueue(runtime);
      process.stderr.write(was ? 'queue resumed\n' : 'the queue was not paused\n');
      return EXIT.ok;
    });
  });

  const cancel = program
    .command('cancel')
    .description('Cancel a batch: queued requests end as canceled; in-flight ones finish.')
    .argument('<batch>', 'batch id')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(cancel, ['logLevel']);
  cancel.action(async (batch: string, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const result = await cancelBatch(runtime, batch);
      if (!result.existed) {
        process.stderr.write(`claude-batch: no batch ${batch} under prefix ${runtime.keys.bullPrefix}\n`);
        return EXIT.usage;
      }
      process.stderr.write(
        `batch ${batch}: ${result.canceled} requests canceled; ${result.inFlight} in flight will finish (status: canceling until then)\n`,
      );
      return EXIT.ok;
    });
  });
}
