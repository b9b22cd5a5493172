import { createHash } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A value that must never reach a log line, a Redis value, a result or an error message.
 * Every way Node renders an object (String(), JSON.stringify, util.inspect, template strings)
 * yields `[redacted]`; only {@link Secret.reveal} hands the value out, at the one place it is sent.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  /** A short, stable, non-reversible id for keying shared state (e.g. the account's rate budget). */
  fingerprint(): string {
    return createHash('sha256').update('claude-batch:').update(this.#value).digest('hex').slice(0, 16);
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Replaces every occurrence of the given secrets in a text, for messages that quote foreign input. */
export function scrub(text: string, secrets: ReadonlyArray<Secret | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    const value = secret?.reveal();
    if (value && value.length >= 4) out = out.split(value).join(REDACTED);
  }
  return out;
}
