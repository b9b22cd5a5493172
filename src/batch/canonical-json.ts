/**
 * Deepest nesting of arrays and objects serialised. A fixed limit, rather than whatever the stack
 * allows, so a line is accepted or refused the same way in both passes and on every machine.
 */
export const MAX_NESTING_DEPTH = 256;

/** Thrown by {@link canonicalJson} for a value nested deeper than {@link MAX_NESTING_DEPTH}. */
export class NestingTooDeepError extends Error {
  constructor() {
    super(`nested deeper than ${MAX_NESTING_DEPTH} levels`);
    this.name = 'NestingTooDeepError';
  }
}

/**
 * JSON with object keys in one canonical order, so two requests that differ only in key order
 * serialise, and fingerprint, the same. The order is what JavaScript gives an object whose keys were
 * inserted sorted: array-index keys numerically, then the others by UTF-16 code units.
 *
 * The output has exactly the length of `JSON.stringify(value)`: only the key order differs. That lets
 * one serialisation serve both the fingerprint and the request body size check.
 */
export function canonicalJson(value: unknown): string {
  // Reordering in JS and letting the native JSON.stringify write the text is several times faster
  // than writing it in JS; already-ordered objects (most of them) are not copied.
  return JSON.stringify(ordered(value, 0)) ?? 'null';
}

function ordered(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_NESTING_DEPTH) throw new NestingTooDeepError();
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const next = ordered(item, depth + 1);
      if (next !== item) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }

  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) sorted = (keys[i - 1] as string) < (keys[i] as string);
  let copy: Record<string, unknown> | undefined;
  if (!sorted) {
    keys.sort();
    copy = copyOf(record, keys);
  }
  for (const key of keys) {
    const item = record[key];
    const next = ordered(item, depth + 1);
    if (next !== item) {
      copy ??= copyOf(record, keys);
      set(copy, key, next);
    }
  }
  return copy ?? record;
}

function copyOf(record: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key of keys) set(copy, key, record[key]);
  return copy;
}

// A plain object keeps JSON.stringify on its fast path; a `__proto__` key from the input must be
// defined, not assigned, or it would set the prototype instead.
function set(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else target[key] = value;
}
