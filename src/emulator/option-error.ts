/**
 * The one error every emulator option check throws, at start-up and from the control API alike, so a
 * caller (the CLI, a test, a control client) can report which option was wrong, what it held and
 * what was expected without parsing prose.
 */
export class EmulatorOptionsError extends Error {
  override readonly name = 'EmulatorOptionsError';

  constructor(
    /** Dotted path of the option, e.g. `limits.rpm` or `faults.probabilities.api_error`. */
    readonly option: string,
    /** The value that was given. */
    readonly value: unknown,
    /** What the option accepts, in words. */
    readonly expected: string,
  ) {
    super(`invalid emulator option ${option}: got ${describeValue(value)}, expected ${expected}`);
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `${JSON.stringify(value)} (string)`;
  if (typeof value === 'function') return 'a function';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `${text} (${kind})`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Rejects keys the option object does not know, so a typo (`rmp`) fails loudly instead of being ignored. */
export function checkKnownKeys(value: Record<string, unknown>, known: readonly string[], path: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new EmulatorOptionsError(
        path ? `${path}.${key}` : key,
        value[key],
        `one of the known options (${known.join(', ')})`,
      );
    }
  }
}

export function checkObject(value: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw new EmulatorOptionsError(path, value, 'an object');
  return value;
}

export function checkBoolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new EmulatorOptionsError(path, value, 'a boolean');
  return value;
}

export function checkString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new EmulatorOptionsError(path, value, 'a non-empty string');
  }
  return value;
}

export function checkStringList(value: unknown, path: string): string[] {
  if (!Array.isArray(value)) throw new EmulatorOptionsError(path, value, 'an array of non-empty strings');
  return value.map((item, i) => checkString(item, `${path}.${i}`));
}

/** An integer within [min, max]. */
export function checkInteger(
  value: unknown,
  path: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new EmulatorOptionsError(path, value, `an integer ${range}`);
  }
  return value;
}

/** A finite number within [min, max]. */
export function checkNumber(
  value: unknown,
  path: string,
  min: number,
  max = Number.POSITIVE_INFINITY,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new EmulatorOptionsError(path, value, `a finite number ${range}`);
  }
  return value;
}
