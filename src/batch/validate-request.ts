import { canonicalJson, NestingTooDeepError } from './canonical-json.js';
import { describe, fieldPath, formatBytes, quote, sanitize } from './describe-value.js';
import { CUSTOM_ID_PATTERN, MAX_REQUEST_BODY_BYTES, type BatchRequest, type MessageParams } from './types.js';

/** Where shorthand lines (`{"custom_id", "prompt"}`) get the rest of their params: flags or config. */
export interface RequestDefaults {
  /** `--model`: becomes `params.model` of shorthand lines. */
  model?: string | undefined;
  /** `--max-tokens`: becomes `params.max_tokens` of shorthand lines. */
  maxTokens?: number | undefined;
  /** `--system`: becomes `params.system` of shorthand lines; omitted when undefined or empty. */
  system?: string | undefined;
}

export interface ValidateOptions {
  /**
   * Largest serialised request body (the `params` JSON, UTF-8) accepted. The API answers 413 above it.
   * @default MAX_REQUEST_BODY_BYTES (32 MiB)
   */
  maxBodyBytes?: number;
}

/** One problem in one line. `field` is a path into the line: `custom_id`, `params.messages[0].role`. */
export interface FieldError {
  field: string;
  reason: string;
}

export type LineValidation =
  | {
      ok: true;
      /** The request in full format; shorthand lines are expanded with the defaults. */
      request: BatchRequest;
      /** Size of the request body the runner would send (`params` as JSON, UTF-8 bytes). */
      bytes: number;
      /** The request as canonical JSON (keys sorted): what the input fingerprint hashes. */
      canonical: string;
    }
  | {
      ok: false;
      errors: FieldError[];
      /** The line's custom_id when that much was valid, so duplicates can still be detected. */
      customId?: string;
    };

/** A line with a pathological number of problems reports this many, then a count of the rest. */
export const MAX_ERRORS_PER_LINE = 10;

const TOP_LEVEL_KEYS = ['custom_id', 'params', 'prompt'];

// Messages parameters someone may write at the top level by mistake; named in the hint.
const PARAM_KEYS = new Set([
  'model',
  'max_tokens',
  'messages',
  'system',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'metadata',
  'tools',
  'tool_choice',
  'thinking',
  'stream',
  'service_tier',
]);

/**
 * A line made only of JSON whitespace (space, tab, CR) or nothing. Such lines are skipped, but
 * still counted for line numbers.
 */
export function isBlankLine(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}

/**
 * Checks defaults up front, so a bad `--max-tokens` is reported once rather than on every
 * shorthand line. Fields are named as flags: `--model`, `--max-tokens`, `--system`.
 */
export function validateDefaults(defaults: RequestDefaults): FieldError[] {
  const errors: FieldError[] = [];
  if (defaults.model !== undefined && (typeof defaults.model !== 'string' || defaults.model.trim() === '')) {
    errors.push({ field: '--model', reason: `must be a non-empty string, got ${describe(defaults.model)}` });
  }
  if (defaults.maxTokens !== undefined && !isPositiveInteger(defaults.maxTokens)) {
    errors.push({
      field: '--max-tokens',
      reason: `must be a positive integer, got ${describe(defaults.maxTokens)}`,
    });
  }
  if (defaults.system !== undefined && typeof defaults.system !== 'string') {
    errors.push({ field: '--system', reason: `must be a string, got ${describe(defaults.system)}` });
  }
  return errors;
}

/**
 * Validates one input line and normalises it to the Message Batches request format.
 *
 * Pure and synchronous. Checks only what is cheap and certain (shapes and types of the fields the
 * runner needs, `stream`, the body size); other params pass through for the API to judge. Defaults
 * apply to shorthand lines only: a full-format line missing `model` is an error, never filled in.
 *
 * `lineNo` matters only for line 1, whose BOM is dropped; a trailing `\r` is dropped on any line, so
 * text that did not come through the line reader is handled the same way.
 */
export function validateLine(
  text: string,
  lineNo: number,
  defaults: RequestDefaults = {},
  options: ValidateOptions = {},
): LineValidation {
  if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.charCodeAt(text.length - 1) === 0x0d) text = text.slice(0, -1);

  const nul = text.indexOf('\u0000');
  if (nul !== -1) {
    return fail([{ field: 'encoding', reason: `contains a NUL byte (at character ${nul + 1})` }]);
  }
  if (isBlankLine(text)) return fail([{ field: 'json', reason: 'blank line' }]);

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail([{ field: 'json', reason: `not valid JSON: ${jsonErrorReason(err)}` }]);
  }
  if (!isObject(parsed)) {
    return fail([
      {
        field: 'json',
        reason: `expected an object like {"custom_id": ..., "params": {...}}, got ${describe(parsed)}`,
      },
    ]);
  }

  const errors = new ErrorList();
  for (const key of Object.keys(parsed)) {
    if (!TOP_LEVEL_KEYS.includes(key)) errors.add(fieldPath('', key), `unknown field${unknownKeyHint(key)}`);
  }
  const customId = checkCustomId(parsed.custom_id, errors);

  const hasPrompt = parsed.prompt !== undefined;
  const hasParams = parsed.params !== undefined;
  let params: unknown;
  if (hasPrompt && hasParams) {
    errors.add('prompt', 'a line takes either prompt (shorthand) or params, not both');
  } else if (hasPrompt) {
    params = expandShorthand(parsed.prompt, defaults, errors);
  } else if (hasParams) {
    params = parsed.params;
  } else {
    errors.add('params', 'missing: give params, or prompt to use the default model and max_tokens');
  }
  if (params !== undefined) checkParams(params, errors);

  if (errors.size > 0 || customId === undefined || !isObject(params)) {
    return fail(errors.list(), customId);
  }

  let body: string;
  try {
    body = canonicalJson(params);
  } catch (err) {
    // Parsed JSON has no cycles or unserialisable values; depth is the one thing that can fail.
    if (!(err instanceof NestingTooDeepError)) throw err;
    return fail([{ field: 'params', reason: err.message }], customId);
  }
  const bytes = Buffer.byteLength(body, 'utf8');
  const maxBodyBytes = options.maxBodyBytes ?? MAX_REQUEST_BODY_BYTES;
  if (bytes > maxBodyBytes) {
    return fail(
      [
        {
          field: 'params',
          reason: `request body would be ${formatBytes(bytes)} (${bytes} bytes), over the API's limit of ${maxBodyBytes} bytes`,
        },
      ],
      customId,
    );
  }
  return {
    ok: true,
    request: { custom_id: customId, params: params as MessageParams },
    bytes,
    canonical: `{"custom_id":${JSON.stringify(customId)},"params":${body}}`,
  };
}

function fail(errors: FieldError[], customId?: string): LineValidation {
  return customId === undefined ? { ok: false, errors } : { ok: false, errors, customId };
}

/** Collects a line's errors, keeping the first {@link MAX_ERRORS_PER_LINE} and counting the rest. */
class ErrorList {
  private readonly kept: FieldError[] = [];
  private dropped = 0;

  get size(): number {
    return this.kept.length + this.dropped;
  }

  add(field: string, reason: string): void {
    if (this.kept.length < MAX_ERRORS_PER_LINE) this.kept.push({ field, reason });
    else this.dropped++;
  }

  list(): FieldError[] {
    if (this.dropped === 0) return this.kept;
    return [...this.kept, { field: 'line', reason: `and ${this.dropped} more errors on this line` }];
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function checkCustomId(value: unknown, errors: ErrorList): string | undefined {
  if (value === undefined) {
    errors.add('custom_id', 'missing: every line needs a custom_id');
    return undefined;
  }
  if (typeof value !== 'string') {
    errors.add('custom_id', `must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (CUSTOM_ID_PATTERN.test(value)) return value;
  if (value === '') errors.add('custom_id', 'must not be empty');
  else if (value.length > 64)
    errors.add('custom_id', `is ${value.length} characters long; at most 64 allowed`);
  else {
    const bad = /[^a-zA-Z0-9_-]/u.exec(value);
    const at = bad === null ? '' : ` (${quote(bad[0])} at character ${bad.index + 1})`;
    errors.add('custom_id', `${quote(value)} may only contain A-Z a-z 0-9 _ -${at}`);
  }
  return undefined;
}

function expandShorthand(prompt: unknown, defaults: RequestDefaults, errors: ErrorList): unknown {
  if (typeof prompt !== 'string') {
    errors.add('prompt', `must be a string, got ${describe(prompt)}`);
    return undefined;
  }
  if (prompt.trim() === '') errors.add('prompt', 'must not be empty');

  const { model, maxTokens, system } = defaults;
  if (model === undefined) {
    errors.add('params.model', 'missing: a prompt line takes the model from --model, and none was given');
  } else if (typeof model !== 'string' || model.trim() === '') {
    errors.add('params.model', `the default (--model) must be a non-empty string, got ${describe(model)}`);
  }
  if (maxTokens === undefined) {
    errors.add(
      'params.max_tokens',
      'missing: a prompt line takes max_tokens from --max-tokens, and none was given',
    );
  } else if (!isPositiveInteger(maxTokens)) {
    errors.add(
      'params.max_tokens',
      `the default (--max-tokens) must be a positive integer, got ${describe(maxTokens)}`,
    );
  }
  if (system !== undefined && typeof system !== 'string') {
    errors.add('params.system', `the default (--system) must be a string, got ${describe(system)}`);
  }
  if (errors.size > 0) return undefined;

  // Fixed key order; the fingerprint sorts keys anyway, so a full line with the same values matches.
  const base = { model: model as string, max_tokens: maxTokens as number };
  const messages = [{ role: 'user', content: prompt }];
  const params: MessageParams =
    system === undefined || system === '' ? { ...base, messages } : { ...base, system, messages };
  return params;
}

function checkParams(params: unknown, errors: ErrorList): void {
  if (!isObject(params)) {
    errors.add('params', `must be an object, got ${describe(params)}`);
    return;
  }

  const { model, max_tokens: maxTokens, messages, system, stream } = params;
  if (model === undefined) errors.add('params.model', 'missing');
  else if (typeof model !== 'string') errors.add('params.model', `must be a string, got ${describe(model)}`);
  else if (model.trim() === '') errors.add('params.model', 'must not be empty');

  if (maxTokens === undefined) errors.add('params.max_tokens', 'missing');
  else if (!isPositiveInteger(maxTokens)) {
    errors.add('params.max_tokens', `must be a positive integer, got ${describe(maxTokens)}`);
  }

  if (messages === undefined) errors.add('params.messages', 'missing');
  else if (!Array.isArray(messages)) {
    errors.add('params.messages', `must be an array of messages, got ${describe(messages)}`);
  } else if (messages.length === 0) errors.add('params.messages', 'must not be empty');
  else messages.forEach((message: unknown, i) => checkMessage(message, `params.messages[${i}]`, errors));

  if (system !== undefined && typeof system !== 'string') {
    if (Array.isArray(system)) checkBlocks(system, 'params.system', errors);
    else
      errors.add('params.system', `must be a string or an array of content blocks, got ${describe(system)}`);
  }

  if (stream === true) {
    errors.add('params.stream', 'true is not supported: the runner makes the call itself; remove it');
  }
}

function checkMessage(message: unknown, path: string, errors: ErrorList): void {
  if (!isObject(message)) {
    errors.add(path, `must be an object with role and content, got ${describe(message)}`);
    return;
  }
  const { role, content } = message;
  if (role === undefined) errors.add(`${path}.role`, 'missing');
  else if (role !== 'user' && role !== 'assistant') {
    errors.add(`${path}.role`, `must be "user" or "assistant", got ${describe(role)}`);
  }
  if (content === undefined) errors.add(`${path}.content`, 'missing');
  else if (Array.isArray(content)) checkBlocks(content, `${path}.content`, errors);
  else if (typeof content !== 'string') {
    errors.add(`${path}.content`, `must be a string or an array of content blocks, got ${describe(content)}`);
  }
}

function checkBlocks(blocks: unknown[], path: string, errors: ErrorList): void {
  blocks.forEach((block: unknown, i) => {
    if (!isObject(block)) {
      errors.add(`${path}[${i}]`, `must be a content block object, got ${describe(block)}`);
    } else if (block.type === undefined) {
      errors.add(`${path}[${i}].type`, 'missing');
    } else if (typeof block.type !== 'string') {
      errors.add(`${path}[${i}].type`, `must be a string, got ${describe(block.type)}`);
    }
  });
}

function unknownKeyHint(key: string): string {
  if (PARAM_KEYS.has(key)) return `; ${key} goes inside params`;
  const folded = key.toLowerCase().replace(/-/g, '_');
  const near = TOP_LEVEL_KEYS.find((known) => known === folded || editDistance(folded, known) <= 2);
  if (near !== undefined) return `; did you mean ${near}?`;
  return `; a line has custom_id and either params or prompt`;
}

/** Levenshtein distance, giving up early: only small distances matter for a typo hint. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * V8's JSON.parse messages, minus the fragment of the line they quote (it can be anything), with the
 * 0-based position turned into a 1-based character.
 */
function jsonErrorReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const token = /^Unexpected token '([\s\S]+?)', [\s\S]* is not valid JSON$/.exec(message);
  if (token !== null) return `unexpected character ${quote(token[1] ?? '')}`;
  const reason = message
    .replace(/, "[\s\S]*" is not valid JSON$/, '')
    .replace(/ in JSON at position (\d+)/, (_, at: string) => ` at character ${Number(at) + 1}`)
    .replace(/^[A-Z]/, (c) => c.toLowerCase());
  return sanitize(reason);
}
