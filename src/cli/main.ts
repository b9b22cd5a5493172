import { Command } from 'commander';
import { registerControlCommands } from './control-commands.js';
import { registerDashboardCommand } from './dashboard-command.js';
import { registerDeleteCommand } from './delete-command.js';
import { registerDlqCommand } from './dlq-command.js';
import { registerEmulatorCommand } from './emulator-command.js';
import { registerResultsCommand } from './results-command.js';
import { registerRunCommand } from './run-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerSubmitCommand } from './submit-command.js';
import { registerWaitCommand } from './wait-command.js';
import { registerWorkerCommand } from './worker-command.js';

/** The `claude-batch` command line: thin shells over the library. */
export function buildProgram(): Command {
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
  registerSubmitCommand(program);
  registerRunCommand(program);
  registerWorkerCommand(program);
  registerStatusCommand(program);
  registerWaitCommand(program);
  registerResultsCommand(program);
  registerDeleteCommand(program);
  registerDlqCommand(program);
  registerControlCommands(program);
  registerDashboardCommand(program);
  registerEmulatorCommand(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
