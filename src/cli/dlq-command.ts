import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ConfigError } from '../config/load-config.js';
import { deadLetterEntries, listDeadLetters } from '../queue/dead-letters.js';
import { purgeDeadLetters, retryDeadLetters } from '../operations/dlq-retry.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

type Options = Record<string, unknown>;
const str = (options: Options, name: string) => options[name] as string | undefined;

function filterOptions(command: Command): Command {
  return command
    .option('--batch <id>', 'only this batch')
    .option(
      '--type <type>',
      'only this API error type (e.g. billing_error) or runner condition (billing, auth, spend_cap, model); ' +
        'billing_error also takes credit refusals the API sent as a 400 invalid_request_error',
    );
}

export function registerDlqCommand(program: Command): void {
  const dlq = program.command('dlq').description('The dead-letter queue: requests that ended errored.');

  const list = filterOptions(dlq.command('list').description('List dead-letter entries.'))
    .option(
      '--json',
      'a JSON array of {batch_id, custom_id, status, error_type, condition, reason, message, attempts, maybe_billed, failed_at, request_id, model}',
    )
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(list, ['logLevel']);
  list.action(async (options: Options) => {
    await withRuntime(options, async (runtime) => {
      const rows = await listDeadLetters(runtime, {
        batch: str(options, 'batch'),
        type: str(options, 'type'),
      });
      if (options['json']) {
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return EXIT.ok;
      }
      if (rows.length === 0) process.stdout.write('no dead-letter entries\n');
      for (const row of rows) {
        process.stdout.write(
          `${row.batch_id} ${row.custom_id}  ${row.error_type} (${row.status ?? 'not sent'})` +
            `${row.condition ? `  [${row.condition}]` : ''}  ${row.reason}  after ${row.attempts} calls` +
            `${row.maybe_billed ? ` (${row.maybe_billed} maybe billed twice)` : ''}  ${row.failed_at}\n    ${row.message}\n`,
        );
      }
      return EXIT.ok;
    });
  });

  const retry = filterOptions(
    dlq
      .command('retry')
      .description('Send dead-lettered requests again, with a fresh retry budget (no canary).'),
  )
    .option('--id <custom_id>', 'only this request')
    .option('--model <model>', 'send with this model id instead (fixes a mistyped or retired one)')
    .option(
      '--via <path>',
      'live (default: sent one by one, ahead of other work) or batches (through the hosted Message Batches API at half price; results when the hosted batch ends)',
    )
    .addHelpText(
      'after',
      `
Moves the batch counts from errored back to processing, closes the model breakers of the
models involved and resumes a queue the key-wide breaker paused. Idempotent: running it twice
sends nothing twice. Workers must be running to send them.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(retry, ['logLevel']);
  retry.action(async (options: Options) => {
    await withRuntime(options, async (runtime) => {
      const result = await retryDeadLetters(runtime, {
        batch: str(options, 'batch'),
        type: str(options, 'type'),
        customId: str(options, 'id'),
        model: str(options, 'model'),
        via: retryVia(str(options, 'via')),
      });
      process.stderr.write(
        `${result.requeued} requests requeued${result.dropped ? `, ${result.dropped} stale entries dropped` : ''}` +
          `${result.resumed ? '; the paused queue was resumed' : ''}\n`,
      );
      process.stdout.write(`${result.requeued}\n`);
      return EXIT.ok;
    });
  });

  const purge = filterOptions(
    dlq.command('purge').description('Remove dead-letter entries (results keep their errored lines).'),
  )
    .option('--yes', 'do not ask for confirmation')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(purge, ['logLevel']);
  purge.action(async (options: Options) => {
    await withRuntime(options, async (runtime) => {
      const filter = { batch: str(options, 'batch'), type: str(options, 'type') };
      if (!options['yes']) {
        const count = (await listDeadLetters(runtime, filter)).length;
        if (!process.stdin.isTTY) {
          process.stderr.write(`claude-batch: would remove ${count} entries; pass --yes to confirm\n`);
          return EXIT.usage;
        }
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Remove ${count} dead-letter entries? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) return EXIT.ok;
      }
      const removed = await purgeDeadLetters(runtime, filter);
      process.stderr.write(`${removed} dead-letter entries removed\n`);
      return EXIT.ok;
    });
  });

  const exporter = filterOptions(
    dlq.command('export').description('Write dead-letter entries (with their requests) as JSONL.'),
  )
    .requiredOption('--out <file>', 'the JSONL file to write')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(exporter, ['logLevel']);
  exporter.action(async (options: Options) => {
    await withRuntime(options, async (runtime) => {
      const file = str(options, 'out')!;
      const out = createWriteStream(file);
      let count = 0;
      for await (const { entry } of deadLetterEntries(runtime, {
        batch: str(options, 'batch'),
        type: str(options, 'type'),
      })) {
        if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
        count += 1;
      }
      out.end();
      await once(out, 'finish');
      process.stderr.write(`${count} entries written to ${file}\n`);
      return EXIT.ok;
    });
  });
}

/** `dlq retry --via`: live or batches (auto needs a deadline, which a retry has none of). */
function retryVia(value: string | undefined): 'live' | 'batches' | undefined {
  if (value === undefined || value === 'live' || value === 'batches') return value;
  throw new ConfigError('via', '--via', `must be live or batches, got ${JSON.stringify(value)}`);
}
