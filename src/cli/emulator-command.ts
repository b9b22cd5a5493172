import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  EmulatorOptionsError,
  FAULT_TYPES,
  resolveEmulatorOptions,
  startEmulator,
  type BillingErrorStatus,
  type EmulatorOptions,
  type FaultPlan,
  type FaultType,
  type RateLimits,
  type ScriptStep,
} from '../emulator/index.js';
import { validateFaultPlan } from '../emulator/fault-plan.js';

/** The same codes as the other commands: 2 for bad flags or values, 3 for failures outside the input. */
const EXIT_USAGE = 2;
const EXIT_FAILURE = 3;

export const EMULATOR_KEYS_ENV = 'CLAUDE_EMULATOR_KEYS';

/** The flags as commander hands them over, after each value's own parser. */
export interface EmulatorFlags {
  host?: string;
  port?: number;
  rpm?: number;
  itpm?: number;
  otpm?: number;
  otpmMode?: 'reserve' | 'produced';
  models?: string[];
  forbiddenModels?: string[];
  latencyMs?: number;
  jitterMs?: number;
  perOutputTokenMs?: number;
  faults?: string;
  fault?: Array<[FaultType, number]>;
  faultScript?: ScriptStep[];
  faultRetryAfter?: number;
  seed?: number;
  credits?: number;
  creditPerRequest?: number;
  creditPerInputToken?: number;
  creditPerOutputToken?: number;
  billingStatus?: BillingErrorStatus;
  maxBodyBytes?: number;
  maxOutputTokens?: number;
  logSize?: number;
  spendCap?: boolean;
  versionCheck?: boolean;
}

function bad(flag: string, value: string, expected: string): InvalidArgumentError {
  return new InvalidArgumentError(`${flag} expects ${expected}, got ${JSON.stringify(value)}.`);
}

function integer(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw bad(
        flag,
        value,
        max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`,
      );
    }
    return n;
  };
}

function decimal(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min) throw bad(flag, value, `a number >= ${min}`);
    return n;
  };
}

function list(flag: string) {
  return (value: string): string[] => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (items.length === 0) throw bad(flag, value, 'a comma-separated list');
    return items;
  };
}

function faultProbability(
  value: string,
  previous: Array<[FaultType, number]> | undefined,
): Array<[FaultType, number]> {
  const eq = value.indexOf('=');
  const type = value.slice(0, eq);
  const p = Number(value.slice(eq + 1));
  if (eq < 0 || !(FAULT_TYPES as readonly string[]).includes(type)) {
    throw bad('--fault', value, `TYPE=PROBABILITY with TYPE one of ${FAULT_TYPES.join(', ')}`);
  }
  if (value.slice(eq + 1).trim() === '' || !Number.isFinite(p) || p < 0 || p > 1) {
    throw bad('--fault', value, 'a probability in [0, 1] after "="');
  }
  return [...(previous ?? []), [type as FaultType, p]];
}

function faultScript(value: string): ScriptStep[] {
  return list('--fault-script')(value).map((step) => {
    if (step !== 'ok' && !(FAULT_TYPES as readonly string[]).includes(step)) {
      throw bad('--fault-script', value, `a comma-separated list of "ok" and ${FAULT_TYPES.join(', ')}`);
    }
    return step as ScriptStep;
  });
}

/** A usage error raised after commander's own parsing: which flag, which value. */
export class EmulatorFlagError extends Error {
  constructor(
    readonly flag: string,
    readonly value: unknown,
    message: string,
  ) {
    super(message);
  }
}

/** Turns parsed flags and the environment into emulator options (validated by startEmulator). */
export function emulatorOptionsFromFlags(
  flags: EmulatorFlags,
  env: NodeJS.ProcessEnv = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): EmulatorOptions {
  const options: EmulatorOptions = {};
  if (flags.host !== undefined) options.host = flags.host;
  if (flags.port !== undefined) options.port = flags.port;
  const keys = env[EMULATOR_KEYS_ENV];
  if (keys !== undefined && keys.trim() !== '') {
    options.apiKeys = keys
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k.length > 0);
  }
  if (flags.versionCheck === false) options.anthropicVersionRequired = false;
  if (flags.billingStatus !== undefined) options.billingErrorStatus = flags.billingStatus;
  if (flags.models !== undefined) options.models = flags.models;
  if (flags.forbiddenModels !== undefined) options.forbiddenModels = flags.forbiddenModels;
  if (flags.otpmMode !== undefined && flags.otpm === undefined) {
    throw new EmulatorFlagError(
      '--otpm-mode',
      flags.otpmMode,
      '--otpm-mode needs --otpm (there is no OTPM limit to apply it to).',
    );
  }
  if (flags.rpm !== undefined || flags.itpm !== undefined || flags.otpm !== undefined) {
    const limits: RateLimits = {};
    if (flags.rpm !== undefined) limits.rpm = flags.rpm;
    if (flags.itpm !== undefined) limits.itpm = flags.itpm;
    if (flags.otpm !== undefined) limits.otpm = flags.otpm;
    if (flags.otpmMode !== undefined) limits.otpmMode = flags.otpmMode;
    options.limits = limits;
  }
  if (flags.maxBodyBytes !== undefined) options.maxBodyBytes = flags.maxBodyBytes;
  if (flags.maxOutputTokens !== undefined) options.maxOutputTokens = flags.maxOutputTokens;
  if (flags.latencyMs !== undefined || flags.jitterMs !== undefined || flags.perOutputTokenMs !== undefined) {
    options.latency = {
      fixedMs: flags.latencyMs ?? 0,
      jitterMs: flags.jitterMs ?? 0,
      perOutputTokenMs: flags.perOutputTokenMs ?? 0,
    };
  }
  options.faults = faultPlanFrom(flags, readFile);
  if (flags.seed !== undefined) options.seed = flags.seed;
  if (flags.credits !== undefined) {
    options.credits = { balance: flags.credits };
    if (flags.creditPerRequest !== undefined) options.credits.perRequest = flags.creditPerRequest;
    if (flags.creditPerInputToken !== undefined) options.credits.perInputToken = flags.creditPerInputToken;
    if (flags.creditPerOutputToken !== undefined) options.credits.perOutputToken = flags.creditPerOutputToken;
  } else {
    for (const [flag, value] of [
      ['--credit-per-request', flags.creditPerRequest],
      ['--credit-per-input-token', flags.creditPerInputToken],
      ['--credit-per-output-token', flags.creditPerOutputToken],
    ] as const) {
      if (value !== undefined)
        throw new EmulatorFlagError(flag, value, `${flag} needs --credits (a starting balance).`);
    }
  }
  if (flags.spendCap === true) options.spendCapReached = true;
  if (flags.logSize !== undefined) options.requestLogSize = flags.logSize;
  return options;
}

function faultPlanFrom(flags: EmulatorFlags, readFile: (path: string) => string): FaultPlan {
  let plan: FaultPlan = {};
  if (flags.faults !== undefined) {
    let text: string;
    try {
      text = readFile(flags.faults);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new EmulatorFlagError(
        '--faults',
        flags.faults,
        `--faults ${flags.faults}: cannot read the file (${reason}).`,
      );
    }
    try {
      plan = validateFaultPlan(JSON.parse(text), 'faults');
    } catch (err) {
      const reason =
        err instanceof SyntaxError ? 'not valid JSON' : err instanceof Error ? err.message : String(err);
      throw new EmulatorFlagError('--faults', flags.faults, `--faults ${flags.faults}: ${reason}`);
    }
  }
  if (flags.fault !== undefined) {
    const probabilities = { ...plan.probabilities };
    for (const [type, p] of flags.fault) probabilities[type] = p;
    plan = { ...plan, probabilities };
  }
  if (flags.faultScript !== undefined) plan = { ...plan, script: flags.faultScript };
  if (flags.faultRetryAfter !== undefined) plan = { ...plan, retryAfterSeconds: flags.faultRetryAfter };
  return plan;
}

const HELP_AFTER = `
Environment:
  ${EMULATOR_KEYS_ENV}  comma-separated API keys to accept (via x-api-key or Authorization: Bearer).
                        Unset or empty: any non-empty key passes. Keys are never taken as flags,
                        since command lines are visible to other users of the machine.

Output: the URL (e.g. http://127.0.0.1:40123) alone on stdout once listening; a summary on stderr.
SIGINT or SIGTERM closes it. Use the URL as ANTHROPIC_BASE_URL or the SDK's baseURL.

Faults file (--faults): JSON {"probabilities": {"overloaded_error": 0.05, ...},
  "script": ["api_error", "ok", {"type": "rate_limit_error", "retryAfterSeconds": 3}],
  "retryAfterSeconds": 1}. --fault and --fault-script override its parts.
Per-prompt markers in message text: @@fault:TYPE@@, @@fault:TYPE:K@@ (first K attempts fail),
  @@fault:rate_limit_error:K:SECONDS@@, @@stop:max_tokens@@, @@stop:refusal@@, @@output_tokens:N@@.
Control API (no key needed): GET /_emulator/stats, GET /_emulator/log, POST /_emulator/reset,
  PUT /_emulator/faults, PUT /_emulator/limits, PUT /_emulator/latency, POST /_emulator/credits/top-up,
  POST /_emulator/revoke, POST /_emulator/spend-cap.

Exit codes: 0 closed by a signal; 2 bad flag or value; 3 could not start (e.g. port in use).`;

/** Adds `claude-batch emulator`: the Messages API emulator as a standalone server. */
export function registerEmulatorCommand(program: Command): void {
  program
    .command('emulator')
    .description(
      'Run the Messages API emulator (offline API with rate limits, faults, credits) until stopped.',
    )
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port; 0 picks a free one (default: 0)', integer('--port', 0, 65_535))
    .option(
      '--rpm <n>',
      'requests per minute per model (token bucket; default: unlimited)',
      integer('--rpm', 1),
    )
    .option('--itpm <n>', 'input tokens per minute per model (default: unlimited)', integer('--itpm', 1))
    .option('--otpm <n>', 'output tokens per minute per model (default: unlimited)', integer('--otpm', 1))
    .addOption(
      new Option(
        '--otpm-mode <mode>',
        'charge OTPM by reserving max_tokens up front, or as produced (default: produced)',
      ).choices(['reserve', 'produced']),
    )
    .option(
      '--models <ids>',
      'comma-separated model ids to serve (default: current Claude ids)',
      list('--models'),
    )
    .option(
      '--forbidden-models <ids>',
      'comma-separated model ids every key gets 403 permission_error for',
      list('--forbidden-models'),
    )
    .option(
      '--latency-ms <ms>',
      'fixed latency added to each reply [ms] (default: 0)',
      decimal('--latency-ms', 0),
    )
    .option('--jitter-ms <ms>', 'up to this much more, seeded [ms] (default: 0)', decimal('--jitter-ms', 0))
    .option(
      '--per-output-token-ms <ms>',
      'latency per output token [ms] (default: 0)',
      decimal('--per-output-token-ms', 0),
    )
    .option('--faults <file>', 'JSON fault plan (see below)')
    .option(
      '--fault <type=probability>',
      `probability of a fault type, repeatable; types: ${FAULT_TYPES.join(', ')}`,
      faultProbability,
    )
    .option(
      '--fault-script <steps>',
      'comma-separated outcomes for the next requests, "ok" to pass one',
      faultScript,
    )
    .option(
      '--fault-retry-after <s>',
      'retry-after of injected rate_limit_errors [s] (default: 1)',
      integer('--fault-retry-after', 1),
    )
    .option(
      '--seed <n>',
      'seed for replies, jitter and fault draws (default: 0)',
      integer('--seed', Number.MIN_SAFE_INTEGER),
    )
    .option(
      '--credits <balance>',
      'starting credit balance; refused once spent, as --billing-status says (default: unlimited)',
      decimal('--credits', 0),
    )
    .option(
      '--credit-per-request <n>',
      'credits per successful request (default: 1)',
      decimal('--credit-per-request', 0),
    )
    .option(
      '--credit-per-input-token <n>',
      'credits per input token (default: 0)',
      decimal('--credit-per-input-token', 0),
    )
    .option(
      '--credit-per-output-token <n>',
      'credits per output token (default: 0)',
      decimal('--credit-per-output-token', 0),
    )
    .addOption(
      new Option(
        '--billing-status <status>',
        'how an empty balance is refused: 400 = invalid_request_error "Your credit balance is too low..." ' +
          'as the live API sends it; 402 / 403 = billing_error as documented (default: 400)',
      )
        .choices(['400', '402', '403'])
        .argParser((v) => {
          if (v !== '400' && v !== '403' && v !== '402') throw bad('--billing-status', v, '400, 402 or 403');
          return Number(v) as BillingErrorStatus;
        }),
    )
    .option(
      '--max-body-bytes <n>',
      'largest request body before 413 [bytes] (default: 33554432)',
      integer('--max-body-bytes', 1),
    )
    .option(
      '--max-output-tokens <n>',
      'largest max_tokens accepted [tokens] (default: 64000)',
      integer('--max-output-tokens', 1),
    )
    .option(
      '--log-size <n>',
      'request log entries kept; 0 turns the log off (default: 10000)',
      integer('--log-size', 0),
    )
    .option('--spend-cap', 'start with the spend cap reached (429 enforced_spend_limit_reached)')
    .option('--no-version-check', 'accept requests without the anthropic-version header')
    .addHelpText('after', HELP_AFTER)
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    })
    .action(async (flags: EmulatorFlags) => {
      process.exitCode = await runEmulator(flags);
    });
}

async function runEmulator(flags: EmulatorFlags): Promise<number> {
  let options: EmulatorOptions;
  try {
    options = emulatorOptionsFromFlags(flags);
    resolveEmulatorOptions(options);
  } catch (err) {
    if (err instanceof EmulatorFlagError || err instanceof EmulatorOptionsError) {
      process.stderr.write(`claude-batch emulator: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  let handle;
  try {
    handle = await startEmulator(options);
  } catch (err) {
    process.stderr.write(
      `claude-batch emulator: cannot start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return EXIT_FAILURE;
  }
  process.stdout.write(`${handle.url}\n`);
  process.stderr.write(`claude-batch emulator listening on ${handle.url}${describe(options)}\n`);
  const running = handle;
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void running.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

function describe(options: EmulatorOptions): string {
  const parts: string[] = [];
  parts.push(options.apiKeys === undefined ? 'any key' : `${options.apiKeys.length} key(s)`);
  if (options.limits !== undefined) parts.push(`limits ${JSON.stringify(options.limits)}`);
  const plan = options.faults;
  if (plan?.probabilities !== undefined || plan?.script !== undefined) parts.push('faults on');
  if (options.credits !== undefined) parts.push(`credits ${options.credits.balance}`);
  if (options.latency !== undefined) parts.push(`latency ${JSON.stringify(options.latency)}`);
  return ` (${parts.join('; ')})`;
}
