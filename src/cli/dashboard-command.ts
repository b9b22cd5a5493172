import { Option, type Command } from 'commander';
import {
  AUTH_ENV,
  assertSafeBinding,
  authFromEnv,
  DEFAULT_PRICES,
  DashboardConfigError,
  loadPriceTable,
  PRICES_FILE_HELP,
  PriceTableError,
  startDashboard,
  type BudgetSnapshotProvider,
  type DashboardAuth,
  type PriceTable,
  type RunningDashboard,
} from '../dashboard/index.js';
import type { Runtime } from '../runtime.js';
import { budgetFromConfig } from '../worker/start-worker.js';
import { addSettingOptions, EXIT, EXIT_CODES_HELP, parseIntArg, withRuntime } from './common.js';

export function registerDashboardCommand(program: Command): void {
  const command = program
    .command('dashboard')
    .description('Serve the batch page, Bull Board, JSON and Prometheus /metrics over HTTP.')
    .addOption(
      new Option('--port <n>', 'port to listen on (0 picks a free one)')
        .default(3000)
        .argParser(parseIntArg('--port')),
    )
    .addOption(
      new Option(
        '--host <address>',
        'address to listen on; beyond loopback, credentials are required',
      ).default('127.0.0.1'),
    )
    .option('--read-only', 'Bull Board read-only, and no pause/resume: every change answers 403')
    .option(
      '--prices <file>',
      'JSON price table for cost estimates (see below; default: built-in list prices)',
    )
    .addOption(
      new Option('--refresh <seconds>', 'reload the batch page every N seconds (0: never)')
        .default(5)
        .argParser(parseIntArg('--refresh')),
    )
    .addHelpText(
      'after',
      `
Routes:
  /               batches: progress, errors by type with their fix, usage and estimated cost, breakers
  /queues         Bull Board over the "requests" and "dead-letter" queues
  /api/batches    JSON statuses (as status --json); /api/batches/ID for one
  /api/breakers   JSON key and model breaker state
  /metrics        Prometheus text format
  POST /api/pause, POST /api/resume   pause or resume the main queue (not with --read-only)

Authentication (from the environment only, never flags):
  ${AUTH_ENV.token}     token: "Authorization: Bearer TOKEN" (for Prometheus, curl);
                                   browsers: basic auth with any user name and the token as password
  ${AUTH_ENV.user}      basic auth user name (with ${AUTH_ENV.password})
  ${AUTH_ENV.password}  basic auth password
When any is set, every route requires it. Without credentials the dashboard only listens on
loopback (127.0.0.1, ::1, localhost), refuses to start on any other --host, and serves only
requests whose Host header is a loopback name (against DNS rebinding; behind a reverse proxy, set
credentials). Forms and scripts of other sites cannot pause the queue.

${PRICES_FILE_HELP}
Built-in prices (USD per million tokens: input / output / cache write / cache read):
${DEFAULT_PRICES.map((p) => `  ${p.match.padEnd(20)} ${p.input} / ${p.output} / ${p.cache_write} / ${p.cache_read}`).join('\n')}

Prints the URL to open, then serves until SIGINT or SIGTERM.
${EXIT_CODES_HELP}`,
    );
  addSettingOptions(command, ['logLevel']);
  command.action(async (options: Record<string, unknown>) => {
    const host = String(options['host']);
    let auth: DashboardAuth;
    let priceTable: PriceTable | undefined;
    try {
      auth = authFromEnv(process.env);
      assertSafeBinding(host, auth);
      if (typeof options['prices'] === 'string') priceTable = await loadPriceTable(options['prices']);
    } catch (err) {
      if (err instanceof DashboardConfigError || err instanceof PriceTableError) {
        process.stderr.write(`claude-batch: ${err.message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      throw err;
    }
    await withRuntime(options, async (runtime) => {
      let running: RunningDashboard;
      try {
        running = await startDashboard(runtime, {
          host,
          port: options['port'] as number,
          readOnly: options['readOnly'] === true,
          auth,
          refreshSeconds: options['refresh'] as number,
          ...(priceTable ? { priceTable } : {}),
          // The budget's gauges need the account (the key's fingerprint); without a key there are none.
          ...(runtime.config.apiKey ? { budgetSnapshot: budgetSnapshotOf(runtime) } : {}),
        });
      } catch (err) {
        if (err instanceof DashboardConfigError) {
          process.stderr.write(`claude-batch: ${err.message}\n`);
          return EXIT.usage;
        }
        throw err;
      }
      const stop = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        if (stop.signal.aborted) process.exit(130);
        runtime.logger.info('dashboard stopping', { signal });
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const { host: boundHost, port } = running.address;
      process.stderr.write(
        `claude-batch dashboard listening on ${boundHost.includes(':') ? `[${boundHost}]` : boundHost}:${port}` +
          `${options['readOnly'] ? ' (read-only)' : ''}${auth.token || auth.basic ? ', credentials required' : ''}\n`,
      );
      process.stdout.write(`${running.url}\n`);
      try {
        await new Promise<void>((resolve) =>
          stop.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
      } finally {
        await running.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return EXIT.ok;
    });
  });
}

/** Reads the shared budget's levels; the budget is built once, on the first scrape. */
function budgetSnapshotOf(runtime: Runtime): BudgetSnapshotProvider {
  let budget: ReturnType<typeof budgetFromConfig> | undefined;
  return async () => (await (budget ??= budgetFromConfig(runtime, runtime.config.apiKey))).snapshot();
}
