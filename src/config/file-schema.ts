/**
 * The JSON files the runner reads (the budgets file, the prices file) are declared as zod 4
 * schemas: one declaration gives their type and their validation. This is the one place a zod
 * failure becomes a message, naming the file, where in it (entry, field), what the field accepts
 * and the value found there:
 *   budgets.json: entry 1, field "rpm": expected a non-negative integer (0 = no limit), got -1
 * Each builder attaches its "expected" text to every check it makes, so the message reads the same
 * whichever check failed (the pattern of src/emulator/option-schema.ts, for the emulator's options).
 */
import { z } from 'zod';
import { quote } from '../batch/describe-value.js';

/** A non-negative integer (a safe one: zod 4's int() refuses the rest). */
export function nonNegativeInteger(expected: string) {
  return z.number({ error: expected }).int({ error: expected }).min(0, { error: expected });
}

/** A finite number >= 0 (zod 4's number() refuses Infinity and NaN). */
export function nonNegativeNumber(expected: string) {
  return z.number({ error: expected }).min(0, { error: expected });
}

/** A non-empty string of at most `maxLength` characters. */
export function nonEmptyString(expected: string, maxLength = Number.MAX_SAFE_INTEGER) {
  return z.string({ error: expected }).min(1, { error: expected }).max(maxLength, { error: expected });
}

/** A non-empty string of at most `maxLength` characters and no control characters: a name shown in logs. */
export function label(expected: string, maxLength: number) {
  return nonEmptyString(expected, maxLength).refine((text) => !hasControl(text), { error: expected });
}

/**
 * An object that refuses fields it does not know: a typo (`tpm` for `itpm`) fails loudly instead of
 * silently meaning "no limit". `expected` words what the value must be when it is no object at all.
 */
export function strictRecord<Shape extends z.ZodRawShape>(shape: Shape, expected = 'an object') {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? known : expected),
  });
}

/**
 * Adds an issue whose message is a whole sentence (a duplicate name), not what the field expects.
 * For a superRefine/check on a parsed value.
 */
export function addSentence(
  ctx: z.core.$RefinementCtx,
  path: readonly (string | number)[],
  sentence: string,
): void {
  ctx.addIssue({ code: 'custom', path: [...path], message: sentence, params: { sentence: true } });
}

/**
 * Validates `value` (parsed from the file `source`) with `schema` and returns the parsed result;
 * throws `fail(message)` for the first problem (an unknown field first: a typo usually explains
 * the other failures).
 */
export function parseFile<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: string,
  fail: (message: string) => Error,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw fail(describeIssue(result.error.issues, value, source));
}

function describeIssue(issues: readonly z.core.$ZodIssue[], value: unknown, source: string): string {
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (issue === undefined) return `${source}: not valid`;
  const path: PropertyKey[] = [...issue.path];
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    path.push(issue.keys[0]);
    return `${at(source, path)}: unknown field (value ${describe(valueAt(value, path))}); expected ${issue.message}`;
  }
  if (issue.code === 'custom' && issue.params?.['sentence'] === true)
    return `${at(source, path)}: ${issue.message}`;
  return `${at(source, path)}: expected ${issue.message}, got ${describe(valueAt(value, path))}`;
}

/** `file: entry 1, field "rpm"`: indexes are entries, keys are fields. */
function at(source: string, path: readonly PropertyKey[]): string {
  const parts = path.map((key) => (typeof key === 'number' ? `entry ${key}` : `field ${quote(String(key))}`));
  return parts.length === 0 ? source : `${source}: ${parts.join(', ')}`;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** A value in a message: scalars as JSON (strings escaped and cut), containers by kind. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return quote(value, 60);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}

function hasControl(text: string): boolean {
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
