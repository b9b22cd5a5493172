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
 * JSON with object keys sorted (by UTF-16 code units, what `Array.prototype.sort` does), so two
 * requests that differ only in key order serialise, and fingerprint, the same.
 *
 * The output has exactly the length of `JSON.stringify(value)`: only the key order differs. That lets
 * one serialisation serve both the fingerprint and the request body size check.
 */
export function canonicalJson(value: unknown): string {
  // Measured: as fast as re-ordering the objects and calling JSON.stringify once, since typical
  // messages ({role, content}) are never in sorted order and would all be copied.
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null';
  if (depth >= MAX_NESTING_DEPTH) throw new NestingTooDeepError();
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      // Mirrors JSON.stringify, which writes null for array holes and unserialisable items.
      out += item === undefined || typeof item === 'function' ? 'null' : write(item, depth + 1);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined || typeof item === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(key)}:${write(item, depth + 1)}`;
  }
  return `${out}}`;
}
