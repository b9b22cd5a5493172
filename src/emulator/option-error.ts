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
  if (typeof value === 'symbol') return '(not shown: it may hold an API key)';
  if (typeof value === 'string') return `${JSON.stringify(value)} (string)`;
  if (typeof value === 'function') return 'a function';
  let text: string;
  try {
    // String() only where JSON has no text: undefined, a symbol, a BigInt (which throws); never an object.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    text = String(value);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `${text} (${kind})`;
}
