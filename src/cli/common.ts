import { InvalidArgumentError, Option, type Command } from 'commander';
import { ConfigError, loadConfig, type ClaudeBatchConfig } from '../config/load-config.js';
import { SETTINGS, type SettingName, type SettingSpec } from '../config/settings.js';
import { BatchConflictError, InputValidationError, MissingApiKeyError } from '../errors/runner-errors.js';
import { PriceTableError } from '../pricing/price-table.js';
import { createLogger } from '../logger.js';
import { RedisUnavailableError } from '../redis/connection.js';
import { openRuntime, type Runtime } from '../runtime.js';

/** Exit codes every command documents. */
export const EXIT = {
  ok: 0,
  /** `wait`/`run`: the batch ended with errored, canceled or expired requests. */
  batchHadErrors: 1,
  /** Bad flags, bad config, invalid input: nothing was done. */
  usage: 2,
  /** Redis unreachable, or another failure outside the input. */
  failure: 3,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  the batch ended with errored, canceled or expired requests (wait, run)
  2  invalid input, flags or configuration; nothing was done
  3  Redis unreachable or another failure`;

function attributeOf(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds the flags of these settings, documented from the settings table. */
export function addSettingOptions(command: Command, names: readonly SettingName[]): Command {
  for (const name of names) {
    const spec: SettingSpec = SETTINGS[name];
    if (!spec.flag) continue;
    const arg =
      spec.kind === 'boolean'
        ? ''
        : spec.kind === 'int'
          ? ' <n>'
          : spec.kind === 'usd'
            ? ' <usd>'
            : ' <value>';
    const unit = spec.unit ? ` [${spec.unit}]` : '';
    const env = spec.env ? ` (env ${spec.env})` : '';
    command.addOption(new Option(`${spec.flag}${arg}`, `${spec.doc}${unit}${env}`));
  }
  return command.addOption(
    new Option('--prefix <value>', SETTINGS.prefix.doc + ' (env CLAUDE_BATCH_PREFIX)'),
  );
}

/** Builds the config from defaults, env and the command's flags. */
function configFrom(options: Record<string, unknown>): ClaudeBatchConfig {
  const overrides: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [string, SettingSpec][]) {
    if (!spec.flag) continue;
    const value = options[attributeOf(spec.flag)];
    if (value !== undefined) overrides[name] = value;
  }
  return loadConfig({ overrides });
}

/** Opens the runtime for a command, runs it, closes it, and maps failures to exit codes. */
export async function withRuntime(
  options: Record<string, unknown>,
  body: (runtime: Runtime) => Promise<number | void>,
): Promise<void> {
  let runtime: Runtime | undefined;
  try {
    const config = configFrom(options);
    runtime = await openRuntime(config, { logger: createLogger({ level: config.logLevel }) });
    const code = await body(runtime);
    process.exitCode = code ?? EXIT.ok;
  } catch (err) {
    process.exitCode = reportError(err);
  } finally {
    await runtime?.close();
  }
}

/** Prints a failure the way a person can act on, and returns its exit code. */
function reportError(err: unknown): number {
  if (err instanceof InputValidationError) {
    for (const error of err.errors) process.stderr.write(`${error.format()}\n`);
    process.stderr.write(`${err.summary}\n`);
    return EXIT.usage;
  }
  if (
    err instanceof ConfigError ||
    err instanceof BatchConflictError ||
    err instanceof MissingApiKeyError ||
    err instanceof PriceTableError
  ) {
    process.stderr.write(`claude-batch: ${err.message}\n`);
    return EXIT.usage;
  }
  if (err instanceof RedisUnavailableError) {
    process.stderr.write(`claude-batch: ${err.message}\n`);
    return EXIT.failure;
  }
  process.stderr.write(`claude-batch: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.failure;
}

/** A flag's value as a positive number of US dollars; the error names the flag, the value and its type. */
export function parseUsdArg(name: string) {
  return (value: string): number => {
    const n = Number(value.trim());
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
      // Commander's own error: reported as a usage error (exit 2), not thrown out of the parser.
      throw new InvalidArgumentError(
        `${name}: expected a positive number of US dollars (e.g. 25 or 0.5), got ${JSON.stringify(value)} (string)`,
      );
    }
    return n;
  };
}

export function parseIntArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${name}: expected a whole number, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}
