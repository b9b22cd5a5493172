import type { Command } from 'commander';
import { pauseQueue, resumeQueue } from '../breakers/breakers.js';
import { BatchNotFoundError } from '../errors/batch-not-found-error.js';
import { cancelBatch } from '../operations/cancel-batch.js';
import { resumeBatch } from '../operations/resume-batch.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, parseUsdArg, withRuntime } from './common.js';

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
    .description(
      "Resume the queue (after `pause`, or after fixing what tripped the key-wide breaker); with BATCH, lift only that batch's own pause (its cost ceiling).",
    )
    .argument('[batch]', "a batch id: lift that batch's own pause reasons only (the queue's stay)")
    .option(
      '--max-cost <usd>',
      "with BATCH: the batch's new cost ceiling in USD (above its spend so far); also gives one to a batch submitted without",
      parseUsdArg('--max-cost'),
    )
    .addHelpText(
      'after',
      `
After a key-wide breaker, \`dlq retry --type TYPE\` also resumes the queue and sends the
dead-lettered requests again; \`resume\` alone sends only what was still queued.
A batch paused at its cost ceiling (status: paused, reason cost_ceiling) resumes with
\`resume BATCH --max-cost N\`; other batches were never paused by it.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(resume, ['logLevel']);
  resume.action(async (batch: string | undefined, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const maxCost = options['maxCost'] as number | undefined;
      if (batch === undefined) {
        if (maxCost !== undefined) {
          process.stderr.write(
            'claude-batch: --max-cost needs a batch: `claude-batch resume BATCH --max-cost N`\n',
          );
          return EXIT.usage;
        }
        const was = await resumeQueue(runtime);
        process.stderr.write(was ? 'queue resumed\n' : 'the queue was not paused\n');
        return EXIT.ok;
      }
      try {
        const result = await resumeBatch(runtime, batch, { maxCost });
        const ceiling = result.ceilingUsd === null ? 'no cost ceiling' : `cost ceiling $${result.ceilingUsd}`;
        process.stderr.write(
          `batch ${batch}: ${result.lifted.length > 0 ? `resumed (lifted: ${result.lifted.join(', ')})` : 'was not paused'}; ` +
            `${ceiling}, $${result.spentUsd.toFixed(4)} spent so far` +
            (result.rewarmed.length > 0
              ? `; paused longer than its cache TTL: one request of ${result.rewarmed.join(', ')} writes the cached prefix again before the rest\n`
              : '\n'),
        );
        return EXIT.ok;
      } catch (err) {
        if (!(err instanceof BatchNotFoundError)) throw err;
        process.stderr.write(`claude-batch: ${err.message}\n`);
        return EXIT.usage;
      }
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
