import type { Command } from 'commander';
import { submitBatch } from '../queue/producer.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

export function registerSubmitCommand(program: Command): void {
  const command = program
    .command('submit')
    .description('Validate a JSONL file of requests and enqueue it as a batch (resumable, idempotent).')
    .argument('<file>', 'JSONL in the Message Batches request format, or - for standard input')
    .option('--no-canary', 'send every request at once, without first sending one per model alone')
    .option('--batch-id <id>', 'name the batch (default: derived from the content, so a resubmit resumes it)')
    .option('--dry-run', 'validate and count only; enqueue nothing')
    .addHelpText(
      'after',
      `
Prints the batch id on stderr before enqueuing (so a killed submit can be resumed by running it
again) and alone on stdout's last line at the end. Invalid input: one FILE:LINE: field: reason
per bad line on stderr, exit 2, nothing enqueued.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(command, ['model', 'maxTokens', 'system', 'maxErrors', 'logLevel']);
  command.action(async (file: string, options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const { config } = runtime;
      const result = await submitBatch(runtime, {
        input: file,
        batchId: options['batchId'] as string | undefined,
        defaults: { model: config.model, maxTokens: config.maxTokens, system: config.system },
        maxErrors: config.maxErrors,
        canary: options['canary'] !== false,
        chunkSize: config.chunkSize,
        dryRun: options['dryRun'] === true,
        onBatchId: (id) => process.stderr.write(`batch ${id}: enqueuing...\n`),
      });
      if (result.outcome === 'dry-run') {
        process.stderr.write(`${result.total} valid requests; nothing enqueued (--dry-run)\n`);
        for (const [model, stats] of Object.entries(result.models)) {
          process.stderr.write(
            `  ${model}: ${stats.requests} requests, ~${Math.ceil(stats.chars / 4)} input tokens, at most ${stats.maxTokens} output tokens\n`,
          );
        }
      } else {
        process.stderr.write(
          `batch ${result.batchId}: ${result.outcome}, ${result.enqueued} of ${result.total} requests enqueued now\n`,
        );
      }
      process.stdout.write(`${result.batchId}\n`);
      return EXIT.ok;
    });
  });
}
