import { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when that command runs: `submit` then never loads the SDK,
 * the dashboard or the emulator (tens of MB of RSS, and start-up time, for nothing).
 */
const COMMANDS: Record<string, () => Promise<Register[]>> = {
  submit: async () => [(await import('./submit-command.js')).registerSubmitCommand],
  run: async () => [(await import('./run-command.js')).registerRunCommand],
  worker: async () => [(await import('./worker-command.js')).registerWorkerCommand],
  status: async () => [(await import('./status-command.js')).registerStatusCommand],
  wait: async () => [(await import('./wait-command.js')).registerWaitCommand],
  results: async () => [(await import('./results-command.js')).registerResultsCommand],
  delete: async () => [(await import('./delete-command.js')).registerDeleteCommand],
  dlq: async () => [(await import('./dlq-command.js')).registerDlqCommand],
  pause: async () => [(await import('./control-commands.js')).registerControlCommands],
  dashboard: async () => [(await import('./dashboard-command.js')).registerDashboardCommand],
  emulator: async () => [(await import('./emulator-command.js')).registerEmulatorCommand],
  hosted: async () => [(await import('./hosted-command.js')).registerHostedCommand],
};
COMMANDS['resume'] = COMMANDS['pause']!;
COMMANDS['cancel'] = COMMANDS['pause']!;

/** The `claude-batch` command line: thin shells over the library. */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('claude-batch')
    .description('A durable batch runner for the Claude Messages API.')
    .showHelpAfterError()
    .exitOverride((err) => {
      // commander's own usage errors (unknown flag, missing argument) share our exit code 2.
      process.exit(err.exitCode === 0 ? 0 : 2);
    })
    .addHelpText(
      'after',
      `
Environment: REDIS_URL, REDIS_CLUSTER_NODES, ANTHROPIC_API_KEY (never a flag), ANTHROPIC_BASE_URL,
CLAUDE_BATCH_PREFIX. See the README's configuration table for the rest.`,
    );
  const name = argv[2];
  const load = name !== undefined ? COMMANDS[name] : undefined;
  // The named command alone; every command for the top-level help or an unknown name.
  const loaders = load ? [load] : [...new Set(Object.values(COMMANDS))];
  for (const registers of await Promise.all(loaders.map((l) => l()))) {
    for (const register of registers) register(program);
  }
  return program;
}

await (await buildProgram()).parseAsync(process.argv);
