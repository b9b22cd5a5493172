import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { z } from 'zod';
import {
  EmulatorOptionsError,
  FAULT_TYPES,
  resolveEmulatorOptions,
  startEmulator,
  type EmulatorOptions,
  type FaultPlan,
} from '../emulator/index.js';
import { faultPlanSchema, isFaultType, validateFaultPlan } from '../emulator/fault-plan.js';
import { parseOption } from '../emulator/option-schema.js';
import {
  creditsSchema,
  emulatorOptionsSchema,
  latencySchema,
  rateLimitsSchema,
  validateLatency,
} from '../emulator/options.js';

/** The same codes as the other commands: 2 for bad flags or values, 3 for failures outside the input. */
const EXIT_USAGE = 2;
const EXIT_FAILURE = 3;

export const EMULATOR_KEYS_ENV = 'CLAUDE_EMULATOR_KEYS';

/** How a flag's text becomes a value, before the option's own schema checks it. */
type FlagKind = 'int' | 'number' | 'list' | 'string' | 'switch';

/**
 * One flag of `claude-batch emulator`: everything about it is here, and the commander option, its
 * parser, its help line and its place in {@link EmulatorOptions} are all built from this row. The
 * value is checked by the option's schema from options.ts, so a flag accepts exactly what the
 * option does and says so in the same words.
 */
export interface EmulatorFlagSpec {
  /** Commander's flag syntax, e.g. `--rpm <n>`. */
  flags: string;
  kind: FlagKind;
  /** The option the value goes to (a path into EmulatorOptions); absent for the fault flags, merged apart. */
  to?: readonly string[];
  /** The schema of that option. */
  schema?: z.ZodType;
  /** Unit shown in the help, e.g. `ms`. */
  unit?: string;
  /** Default shown in the help. */
  defaultText?: string;
  /** Values shown in the help (and offered by completion). */
  choices?: readonly string[];
  /** A flag this one is meaningless without, and why, e.g. --otpm-mode needs --otpm. */
  needs?: { flag: string; why: string };
  /** The value a switch sets (default true). */
  switchValue?: boolean;
  /** Text parser for flags whose value is not a plain number/list/string (the fault flags). */
  parse?: (value: string, previous: unknown) => unknown;
  doc: string;
}

const optionShape = emulatorOptionsSchema.shape;

/** Every flag, in help order. */
export const EMULATOR_FLAGS: readonly EmulatorFlagSpec[] = [
  {
    flags: '--host <host>',
    kind: 'string',
    to: ['host'],
    schema: optionShape.host,
    defaultText: '127.0.0.1',
    doc: 'interface to listen on',
  },
  {
    flags: '--port <port>',
    kind: 'int',
    to: ['port'],
    schema: optionShape.port,
    defaultText: '0',
    doc: 'TCP port; 0 picks a free one',
  },
  {
    flags: '--rpm <n>',
    kind: 'int',
    to: ['limits', 'rpm'],
    schema: rateLimitsSchema.shape.rpm,
    unit: 'requests/min',
    defaultText: 'unlimited',
    doc: 'requests per minute per model (token bucket)',
  },
  {
    flags: '--itpm <n>',
    kind: 'int',
    to: ['limits', 'itpm'],
    schema: rateLimitsSchema.shape.itpm,
    unit: 'tokens/min',
    defaultText: 'unlimited',
    doc: 'input tokens per minute per model (input + cache creation)',
  },
  {
    flags: '--otpm <n>',
    kind: 'int',
    to: ['limits', 'otpm'],
    schema: rateLimitsSchema.shape.otpm,
    unit: 'tokens/min',
    defaultText: 'unlimited',
    doc: 'output tokens per minute per model',
  },
  {
    flags: '--otpm-mode <mode>',
    kind: 'string',
    to: ['limits', 'otpmMode'],
    schema: rateLimitsSchema.shape.otpmMode,
    choices: ['reserve', 'produced'],
    needs: { flag: '--otpm', why: 'there is no OTPM limit to apply it to' },
    defaultText: 'produced',
    doc: 'charge OTPM by reserving max_tokens up front, or as produced',
  },
  {
    flags: '--models <ids>',
    kind: 'list',
    to: ['models'],
    schema: optionShape.models,
    defaultText: 'current Claude ids',
    doc: 'comma-separated model ids to serve',
  },
  {
    flags: '--forbidden-models <ids>',
    kind: 'list',
    to: ['forbiddenModels'],
    schema: optionShape.forbiddenModels,
    defaultText: 'none',
    doc: 'comma-separated model ids every key gets 403 permission_error for',
  },
  {
    flags: '--latency-ms <ms>',
    kind: 'number',
    to: ['latency', 'fixedMs'],
    schema: latencySchema.unwrap().shape.fixedMs,
    unit: 'ms',
    defaultText: '0',
    doc: 'fixed latency added to each reply',
  },
  {
    flags: '--jitter-ms <ms>',
    kind: 'number',
    to: ['latency', 'jitterMs'],
    schema: latencySchema.unwrap().shape.jitterMs,
    unit: 'ms',
    defaultText: '0',
    doc: 'up to this much more, seeded',
  },
  {
    flags: '--per-output-token-ms <ms>',
    kind: 'number',
    to: ['latency', 'perOutputTokenMs'],
    schema: latencySchema.unwrap().shape.perOutputTokenMs,
    unit: 'ms',
    defaultText: '0',
    doc: 'latency per output token',
  },
  {
    flags: '--max-concurrent <n>',
    kind: 'int',
    to: ['maxConcurrent'],
    schema: optionShape.maxConcurrent,
    unit: 'requests',
    defaultText: 'unlimited',
    doc: 'requests in flight at once; one more gets 429 rate_limit_error "Number of concurrent connections has exceeded your rate limit..." with retry-after',
  },
  { flags: '--faults <file>', kind: 'string', doc: 'JSON fault plan (see below)' },
  {
    flags: '--fault <type=probability>',
    kind: 'string',
    parse: faultProbability,
    doc: `probability of a fault type, repeatable; types: ${FAULT_TYPES.join(', ')}`,
  },
  {
    flags: '--fault-script <steps>',
    kind: 'list',
    parse: faultScript,
    doc: 'comma-separated outcomes for the next requests, "ok" to pass one',
  },
  {
    flags: '--fault-retry-after <s>',
    kind: 'int',
    schema: faultPlanSchema.shape.retryAfterSeconds,
    unit: 's',
    defaultText: '1',
    doc: 'retry-after of injected rate_limit_errors',
  },
  {
    flags: '--seed <n>',
    kind: 'int',
    to: ['seed'],
    schema: optionShape.seed,
    defaultText: '0',
    doc: 'seed for replies, jitter and fault draws',
  },
  {
    flags: '--credits <balance>',
    kind: 'number',
    to: ['credits', 'balance'],
    schema: creditsSchema.shape.balance,
    unit: 'credits',
    defaultText: 'unlimited',
    doc: 'starting credit balance; refused once spent, as --billing-status says',
  },
  {
    flags: '--credit-per-request <n>',
    kind: 'number',
    to: ['credits', 'perRequest'],
    schema: creditsSchema.shape.perRequest,
    needs: { flag: '--credits', why: 'a starting balance' },
    defaultText: '1',
    doc: 'credits per successful request',
  },
  {
    flags: '--credit-per-input-token <n>',
    kind: 'number',
    to: ['credits', 'perInputToken'],
    schema: creditsSchema.shape.perInputToken,
    needs: { flag: '--credits', why: 'a starting balance' },
    defaultText: '0',
    doc: 'credits per input token',
  },
  {
    flags: '--credit-per-output-token <n>',
    kind: 'number',
    to: ['credits', 'perOutputToken'],
    schema: creditsSchema.shape.perOutputToken,
    needs: { flag: '--credits', why: 'a starting balance' },
    defaultText: '0',
    doc: 'credits per output token',
  },
  {
    flags: '--billing-status <status>',
    kind: 'int',
    to: ['billingErrorStatus'],
    schema: optionShape.billingErrorStatus,
    choices: ['400', '402', '403'],
    defaultText: '400',
    doc: 'how an empty balance is refused: 400 = invalid_request_error "Your credit balance is too low..." as the live API sends it; 402 / 403 = billing_error as documented',
  },
  {
    flags: '--max-body-bytes <n>',
    kind: 'int',
    to: ['maxBodyBytes'],
    schema: optionShape.maxBodyBytes,
    unit: 'bytes',
    defaultText: '33554432',
    doc: 'largest request body before 413',
  },
  {
    flags: '--max-output-tokens <n>',
    kind: 'int',
    to: ['maxOutputTokens'],
    schema: optionShape.maxOutputTokens,
    unit: 'tokens',
    defaultText: '64000',
    doc: 'largest max_tokens accepted',
  },
  {
    flags: '--min-cache-tokens <n>',
    kind: 'int',
    to: ['minCacheableTokens'],
    schema: optionShape.minCacheableTokens,
    unit: 'tokens',
    defaultText: '1024; 2048 Sonnet 4.6, Haiku 3; 4096 Haiku 4.5, Opus 4.5/4.6',
    doc: 'shortest prefix a cache_control breakpoint caches, for every model (shorter: ignored)',
  },
  {
    flags: '--log-size <n>',
    kind: 'int',
    to: ['requestLogSize'],
    schema: optionShape.requestLogSize,
    unit: 'entries',
    defaultText: '10000',
    doc: 'request log entries kept; 0 turns the log off',
  },
  {
    flags: '--batches-start-delay <ms>',
    kind: 'number',
    to: ['batchesStartDelayMs'],
    schema: optionShape.batchesStartDelayMs,
    unit: 'ms',
    defaultText: '1000',
    doc: "hosted Message Batches: time from a batch's creation to the start of its processing",
  },
  {
    flags: '--batches-processing <ms>',
    kind: 'number',
    to: ['batchesProcessingMs'],
    schema: optionShape.batchesProcessingMs,
    unit: 'ms',
    defaultText: '1',
    doc: 'hosted Message Batches: processing time per request (one after another within a batch; 0: all at once)',
  },
  {
    flags: '--batches-max-requests <n>',
    kind: 'int',
    to: ['batchesMaxRequests'],
    schema: optionShape.batchesMaxRequests,
    defaultText: '100000',
    doc: 'hosted Message Batches: most requests in one batch (more: 400 invalid_request_error)',
  },
  {
    flags: '--batches-max-bytes <n>',
    kind: 'int',
    to: ['batchesMaxBytes'],
    schema: optionShape.batchesMaxBytes,
    unit: 'bytes',
    defaultText: '256000000',
    doc: 'hosted Message Batches: largest create body (more: 413 request_too_large)',
  },
  {
    flags: '--batches-queue-limit <n>',
    kind: 'int',
    to: ['batchesQueueLimit'],
    schema: optionShape.batchesQueueLimit,
    defaultText: 'none',
    doc: 'hosted Message Batches: most requests waiting across batches in progress (more: 429 rate_limit_error with retry-after)',
  },
  {
    flags: '--batches-expiry <ms>',
    kind: 'number',
    to: ['batchesExpiryMs'],
    schema: optionShape.batchesExpiryMs,
    unit: 'ms',
    defaultText: '86400000 (24 h)',
    doc: 'hosted Message Batches: requests unprocessed this long after creation end expired',
  },
  {
    flags: '--batches-create-reply-delay <ms>',
    kind: 'number',
    to: ['batchesCreateReplyDelayMs'],
    schema: optionShape.batchesCreateReplyDelayMs,
    unit: 'ms',
    defaultText: '0',
    doc: 'hosted Message Batches: hold the answer to a create this long (the batch exists meanwhile: a client killed then never learns its id)',
  },
  {
    flags: '--batches-results-pause-after <lines>',
    kind: 'int',
    to: ['batchesResultsPauseAfterLines'],
    schema: optionShape.batchesResultsPauseAfterLines,
    defaultText: 'none',
    needs: { flag: '--batches-results-pause', why: 'it says how long the pause lasts' },
    doc: 'hosted Message Batches: a results download pauses after this many lines, once',
  },
  {
    flags: '--batches-results-pause <ms>',
    kind: 'number',
    to: ['batchesResultsPauseMs'],
    schema: optionShape.batchesResultsPauseMs,
    unit: 'ms',
    defaultText: '0',
    needs: { flag: '--batches-results-pause-after', why: 'it says where the pause comes' },
    doc: 'hosted Message Batches: how long that pause lasts',
  },
  {
    flags: '--spend-cap',
    kind: 'switch',
    to: ['spendCapReached'],
    doc: 'start with the spend cap reached (429 enforced_spend_limit_reached)',
  },
  {
    flags: '--no-version-check',
    kind: 'switch',
    to: ['anthropicVersionRequired'],
    switchValue: false,
    doc: 'accept requests without the anthropic-version header',
  },
];

/** The flags as commander hands them over (by attribute name), after each value's own parser. */
export type EmulatorFlags = Readonly<Record<string, unknown>>;

function flagName(spec: EmulatorFlagSpec): string {
  return spec.flags.split(' ')[0] ?? spec.flags;
}

function attributeOf(spec: EmulatorFlagSpec): string {
  return new Option(spec.flags).attributeName();
}

function bad(flag: string, value: string, expected: string): InvalidArgumentError {
  return new InvalidArgumentError(`${flag} expects ${expected}, got ${JSON.stringify(value)}.`);
}

/** Text → value by kind, then the option's schema; errors name the flag, the text and what it takes. */
function parserFor(spec: EmulatorFlagSpec): (value: string, previous: unknown) => unknown {
  const flag = flagName(spec);
  return (text, previous) => {
    if (spec.parse !== undefined) return spec.parse(text, previous);
    let value: unknown = text;
    if (spec.kind === 'int') value = /^\s*-?\d+\s*$/.test(text) ? Number(text) : Number.NaN;
    else if (spec.kind === 'number') value = text.trim() === '' ? Number.NaN : Number(text);
    else if (spec.kind === 'list') {
      const items = splitList(text);
      if (items.length === 0) throw bad(flag, text, 'a comma-separated list');
      value = items;
    }
    if (spec.schema === undefined) return value;
    try {
      parseOption(spec.schema, value, flag);
    } catch (err) {
      if (err instanceof EmulatorOptionsError) throw bad(flag, text, err.expected);
      throw err;
    }
    return value;
  };
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function faultProbability(text: string, previous: unknown): Array<[string, number]> {
  const eq = text.indexOf('=');
  const type = eq < 0 ? text : text.slice(0, eq);
  const p = eq < 0 || text.slice(eq + 1).trim() === '' ? Number.NaN : Number(text.slice(eq + 1));
  try {
    validateFaultPlan({ probabilities: { [type]: p } });
  } catch (err) {
    if (err instanceof EmulatorOptionsError) {
      const expected = isFaultType(type)
        ? 'a probability in [0, 1] after "="'
        : `TYPE=PROBABILITY with TYPE one of ${FAULT_TYPES.join(', ')}`;
      throw bad('--fault', text, expected);
    }
    throw err;
  }
  return [...((previous as Array<[string, number]> | undefined) ?? []), [type, p]];
}

function faultScript(text: string): unknown[] {
  const steps = splitList(text);
  try {
    validateFaultPlan({ script: steps });
  } catch (err) {
    if (err instanceof EmulatorOptionsError) {
      throw bad('--fault-script', text, `a comma-separated list of "ok" and ${FAULT_TYPES.join(', ')}`);
    }
    throw err;
  }
  return steps;
}

function helpLine(spec: EmulatorFlagSpec): string {
  const unit = spec.unit === undefined ? '' : ` [${spec.unit}]`;
  const fallback = spec.defaultText === undefined ? '' : ` (default: ${spec.defaultText})`;
  return `${spec.doc}${unit}${fallback}`;
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
  const options: Record<string, unknown> = {};
  const keys = env[EMULATOR_KEYS_ENV];
  if (keys !== undefined && keys.trim() !== '') options.apiKeys = splitList(keys);
  for (const spec of EMULATOR_FLAGS) {
    if (spec.to === undefined) continue;
    const value = flags[attributeOf(spec)];
    if (value === undefined) continue;
    // A switch only counts when given: commander sets `--no-x` flags to true when absent.
    if (spec.kind === 'switch' && value !== (spec.switchValue ?? true)) continue;
    if (spec.needs !== undefined) {
      const { flag: needed, why } = spec.needs;
      if (flags[new Option(needed).attributeName()] === undefined) {
        const flag = flagName(spec);
        throw new EmulatorFlagError(flag, value, `${flag} needs ${needed} (${why}).`);
      }
    }
    setPath(options, spec.to, value);
  }
  // The latency flags set parts of one option; the rest take their documented defaults.
  if (options.latency !== undefined) options.latency = validateLatency(options.latency);
  options.faults = faultPlanFrom(flags, readFile);
  return options;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let at = target;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (typeof next === 'object' && next !== null) at = next as Record<string, unknown>;
    else at = at[key] = {};
  }
  const last = path[path.length - 1];
  if (last !== undefined) at[last] = value;
}

function faultPlanFrom(flags: EmulatorFlags, readFile: (path: string) => string): FaultPlan {
  let plan: FaultPlan = {};
  const file = flags.faults as string | undefined;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFile(file);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new EmulatorFlagError('--faults', file, `--faults ${file}: cannot read the file (${reason}).`);
    }
    try {
      plan = validateFaultPlan(JSON.parse(text), 'faults');
    } catch (err) {
      const reason =
        err instanceof SyntaxError ? 'not valid JSON' : err instanceof Error ? err.message : String(err);
      throw new EmulatorFlagError('--faults', file, `--faults ${file}: ${reason}`);
    }
  }
  const fault = flags.fault as Array<[string, number]> | undefined;
  if (fault !== undefined) {
    const probabilities: Record<string, number> = { ...plan.probabilities };
    for (const [type, p] of fault) probabilities[type] = p;
    plan = { ...plan, probabilities };
  }
  const script = flags.faultScript as FaultPlan['script'];
  if (script !== undefined) plan = { ...plan, script };
  const retryAfter = flags.faultRetryAfter as number | undefined;
  if (retryAfter !== undefined) plan = { ...plan, retryAfterSeconds: retryAfter };
  return plan;
}

const HELP_AFTER = `
Environment:
  ${EMULATOR_KEYS_ENV}  comma-separated API keys to accept (via x-api-key or Authorization: Bearer).
                        Unset or empty: any non-empty key passes. Keys are never taken as flags,
                        since command lines are visible to other users of the machine.

Output: the URL (e.g. http://127.0.0.1:40123) alone on stdout once listening; a summary on stderr.
SIGINT or SIGTERM closes it. Use the URL as ANTHROPIC_BASE_URL or the SDK's baseURL.

Answers like the live API's (each also injectable, see below):
  - every response carries anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,
    reset}: from the buckets where --rpm/--itpm/--otpm are set, else an unlimited tier (1000000
    requests, 1000000000 tokens per minute, always full), so clients adapting to them are not slowed.
  - empty balance (--credits): 400 invalid_request_error "Your credit balance is too low..." by
    default; --billing-status 402 or 403 for billing_error.
  - --max-concurrent N: request N+1 in flight gets 429 rate_limit_error "Number of concurrent
    connections has exceeded your rate limit..." with retry-after: 1.
  - "stream": true answers text/event-stream: message_start, content_block_start, ping,
    content_block_delta (4 tokens each, paced by --per-output-token-ms), content_block_stop,
    message_delta (stop_reason, usage), message_stop; accumulated it equals the non-streamed reply.
  - error.details.error_code (status and type as SDK 1.14 declares them): organization_on_hold,
    cmek_key_disabled (400 invalid_request_error); linked_organization_billing_unavailable,
    linked_organization_spend_limit_reached (402 billing_error); contract_spend_limit_reached,
    enforced_spend_limit_reached (429, no retry-after), ramp_limit_exceeded (429, retry-after);
    cmek_context_unavailable, cmek_key_unreachable (503 api_error).
  - bodies that are not the API's: html_502/html_503/html_504 (an HTML page), empty_502/empty_503/
    empty_504 (no body), html_413 (413 without JSON): no request-id, no rate-limit headers;
    reset_mid_response (200 headers and part of the body, then a reset); connection_reset (no
    answer), hang (never answers). Injected api_error (500) and overloaded_error (529) carry no
    retry-after.
All of these are fault types (--fault, --fault-script, the faults file, markers, PUT /_emulator/faults).

Faults file (--faults): JSON {"probabilities": {"overloaded_error": 0.05, ...},
  "script": ["api_error", "ok", {"type": "rate_limit_error", "retryAfterSeconds": 3},
    {"type": "rate_limit_error", "errorCode": "ramp_limit_exceeded"},
    {"type": "overloaded_error", "afterDeltas": 5}],
  "retryAfterSeconds": 1}. --fault and --fault-script override its parts. afterDeltas: a streamed
  request sends that many deltas, then an "event: error" with the fault's body (connection_reset:
  a reset); a request that is not streamed meets the fault at once.
Per-prompt markers in message text: @@fault:TYPE@@, @@fault:TYPE:K@@ (first K attempts fail),
  @@fault:rate_limit_error:K:SECONDS@@, @@stream_fault:TYPE:D@@ (a stream fails after D deltas;
  @@stream_fault:TYPE:D:K@@ on the first K attempts), @@stop:max_tokens@@, @@stop:refusal@@,
  @@output_tokens:N@@. Markers and the fault plan apply to requests in hosted batches too.
Hosted Message Batches (the SDK's messages.batches.*): POST/GET /v1/messages/batches, GET and
  DELETE /v1/messages/batches/ID, POST .../ID/cancel, GET .../ID/results (JSONL). A batch starts
  --batches-start-delay after creation and processes its requests one by one, --batches-processing
  each, through the same checks, faults and replies as /v1/messages (usage.service_tier "batch").
Control API (no key needed): GET /_emulator/stats, GET /_emulator/log, POST /_emulator/reset,
  PUT /_emulator/faults, PUT /_emulator/limits, PUT /_emulator/latency, POST /_emulator/credits/top-up,
  POST /_emulator/revoke, POST /_emulator/spend-cap, PUT /_emulator/max-concurrent {"maxConcurrent": N},
  PUT /_emulator/batches {"processingMs": N, "startDelayMs": N, "queueLimit": N | null, ...}.

Exit codes: 0 closed by a signal; 2 bad flag or value; 3 could not start (e.g. port in use).`;

/** Adds `claude-batch emulator`: the Messages API emulator as a standalone server. */
export function registerEmulatorCommand(program: Command): void {
  const command = program
    .command('emulator')
    .description(
      'Run the Messages API emulator (offline API with rate limits, faults, credits) until stopped.',
    );
  for (const spec of EMULATOR_FLAGS) {
    const option = new Option(spec.flags, helpLine(spec));
    if (spec.choices !== undefined) option.choices(spec.choices);
    // After choices(), which installs its own parser: ours checks the same values and converts them.
    if (spec.kind !== 'switch') option.argParser(parserFor(spec));
    command.addOption(option);
  }
  command
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
  if (options.credits != null) parts.push(`credits ${options.credits.balance}`);
  if (options.latency !== undefined) parts.push(`latency ${JSON.stringify(options.latency)}`);
  return ` (${parts.join('; ')})`;
}
