import type { Command } from 'commander';
import { startWorker } from '../worker/start-worker.js';
import { workUntilIdle } from '../worker/until-idle.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, withRuntime } from './common.js';

export function registerWorkerCommand(program: Command): void {
  const command = program
    .command('worker')
    .description('Work the queue: send requests within the shared budget, record results and dead letters.')
    .option(
      '--until-idle',
      'exit 0 once nothing is pending or delayed (or the queue is paused with nothing in flight)',
    )
    .addHelpText(
      'after',
      `
Runs until SIGTERM or SIGINT: then it stops taking requests, lets in-flight ones finish for the
grace period, hands the rest back to the queue and exits 0. A second signal exits at once.
The API key comes from ANTHROPIC_API_KEY only.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(command, [
    'concurrency',
    'rpm',
    'itpm',
    'otpm',
    'budgetsFile',
    'maxAttempts',
    'maxRetryWaitMs',
    'maxMaybeBilled',
    'streamMinMaxTokens',
    'requestTimeoutMs',
    'gracePeriodMs',
    'stormThreshold',
    'concurrencyProbeQuietMs',
    'logLevel',
  ]);
  command.action(async (options: Record<string, unknown>) => {
    await withRuntime(options, async (runtime) => {
      const worker = await startWorker(runtime);
      const stop = new AbortController();
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals += 1;
        if (signals > 1) process.exit(130);
        runtime.logger.info('stopping: finishing in-flight requests', {
          signal,
          in_flight: worker.activeCount,
        });
        stop.abort();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        if (options['untilIdle']) {
          const reason = await workUntilIdle(runtime, worker.reconciler, 500, stop.signal).catch(
            (err: unknown) => {
              if (!stop.signal.aborted) throw err;
              return null;
            },
          );
          if (reason?.kind === 'paused') {
            const what = (await runtime.requests.isPaused())
              ? 'the queue is paused'
              : 'the batches left are paused at their cost ceiling';
            runtime.logger.warn(
              `${what} with ${reason.pending} requests waiting: nothing to do until it is resumed ` +
                '(see `claude-batch status` for why, and the fix)',
            );
          }
        } else {
          await new Promise<void>((resolve) =>
            stop.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        }
      } finally {
        await worker.close();
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        runtime.logger.info('worker stopped');
      }
      return EXIT.ok;
    });
  });
}
