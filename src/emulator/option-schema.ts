/**
 * The building blocks every emulator option schema is made of (zod 4), and the one place a zod
 * failure becomes an {@link EmulatorOptionsError}: the dotted path of the field, the value found there
 * and what the field accepts, in words. Each builder attaches that "expected" text to every check it
 * makes, so the error reads the same whichever check failed.
 */
import { z } from 'zod';
import { EmulatorOptionsError } from './option-error.js';

/** An integer within [min, max] (max defaults to the largest safe integer). */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A finite number within [min, max]. */
export function finite(min: number, max = Number.POSITIVE_INFINITY) {
  const error =
    max === Number.POSITIVE_INFINITY ? `a finite number >= ${min}` : `a finite number in [${min}, ${max}]`;
  const base = z.number({ error }).min(min, { error });
  return max === Number.POSITIVE_INFINITY ? base : base.max(max, { error });
}

export function nonEmptyString() {
  const error = 'a non-empty string';
  return z.string({ error }).min(1, { error });
}

export function boolean() {
  return z.boolean({ error: 'a boolean' });
}

export function stringList() {
  return z.array(nonEmptyString(), { error: 'an array of non-empty strings' });
}

/** One of the given literals; `expected` says which in words. */
export function oneOf<const T extends readonly (string | number)[]>(values: T, expected: string) {
  return z.literal(values, { error: expected });
}

/**
 * An object that rejects keys it does not know, so a typo (`rmp`) fails loudly instead of being
 * ignored. `unknownKey` words what a key may be (default: the list of known options).
 */
export function strictObject<Shape extends z.ZodRawShape>(shape: Shape, unknownKey?: string) {
  const known = unknownKey ?? `one of the known options (${Object.keys(shape).join(', ')})`;
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? known : 'an object'),
  });
}

/**
 * Option paths whose object keys are API keys (`forbiddenModels: {key: models}`): an error under one
 * names the entry by position instead, so the key never reaches a message.
 */
const SECRET_KEYED = new Set(['forbiddenModels']);

/**
 * Validates `value` with `schema` and returns the parsed result; throws EmulatorOptionsError.
 * `secret`: the value may hold an API key (a revoke body), so the error shows none of it.
 */
export function parseOption<S extends z.ZodType>(
  schema: S,
  value: unknown,
  path: string,
  secret = false,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const error = toOptionError(result.error.issues, value, path);
  throw secret ? new EmulatorOptionsError(error.option, HIDDEN, error.expected) : error;
}

/** Stands for a value that may be a key. */
const HIDDEN = Symbol('hidden');

function toOptionError(
  issues: readonly z.core.$ZodIssue[],
  value: unknown,
  prefix: string,
): EmulatorOptionsError {
  const { path, expected } = locate(issues);
  // The top-level value itself (not an object at all) is "options".
  return new EmulatorOptionsError(joinPath(prefix, path, value) || 'options', valueAt(value, path), expected);
}

/** The failing field's path (relative to the parsed value) and what it accepts. */
function locate(issues: readonly z.core.$ZodIssue[]): { path: PropertyKey[]; expected: string } {
  // An unknown key is reported before anything else, as a typo usually explains the other failures.
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (issue === undefined) return { path: [], expected: 'a valid value' };
  const path: PropertyKey[] = [...issue.path];
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    path.push(issue.keys[0]);
  } else if (issue.code === 'invalid_union') {
    // Report the branch that got furthest (deepest path, then fewest issues): for a value shaped like
    // one branch, its own error is the useful one. If none got past the union itself, say what it takes.
    const best = bestBranch(issue.errors);
    if (best !== null) {
      const inner = locate(best);
      return { path: [...path, ...inner.path], expected: inner.expected };
    }
  }
  return { path, expected: issue.message };
}

function bestBranch(branches: readonly (readonly z.core.$ZodIssue[])[]): readonly z.core.$ZodIssue[] | null {
  let best: readonly z.core.$ZodIssue[] | null = null;
  let bestDepth = 0;
  for (const branch of branches) {
    const depth = Math.max(...branch.map((i) => i.path.length + (i.code === 'unrecognized_keys' ? 1 : 0)));
    if (depth > bestDepth || (depth === bestDepth && best !== null && branch.length < best.length)) {
      best = branch;
      bestDepth = depth;
    }
  }
  return best;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * `prefix.a.b.0`; an entry keyed by an API key becomes `[key #n]`.
 */
function joinPath(prefix: string, path: readonly PropertyKey[], root: unknown): string {
  let out = prefix;
  let parent: unknown = root;
  for (const key of path) {
    const segment = String(key);
    if (SECRET_KEYED.has(out) && segment !== '*' && isRecord(parent)) {
      out += `[key #${Object.keys(parent).indexOf(segment) + 1}]`;
    } else {
      out = out === '' ? segment : `${out}.${segment}`;
    }
    parent = isRecord(parent) ? parent[segment] : undefined;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
