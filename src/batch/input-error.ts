/** How an input read from stdin is named in messages, since it has no file name. */
export const STDIN_NAME = '<stdin>';

/** One problem with one line of the input. A record to report, not an exception to throw. */
export class InputError {
  constructor(
    /** The input as the user named it (the path they passed), or {@link STDIN_NAME}. */
    readonly file: string,
    /** 1-based line number; blank lines count. */
    readonly line: number,
    /** Where in the line: `custom_id`, `params.messages[0].content`, `json`, `encoding`, `line`. */
    readonly field: string,
    /** What is wrong, short, with any quoted value already shortened. */
    readonly reason: string,
  ) {}

  /** `FILE:LINE: field: reason`, the compiler-style form editors can jump to. */
  format(): string {
    return `${this.file}:${this.line}: ${this.field}: ${this.reason}`;
  }

  toString(): string {
    return this.format();
  }

  toJSON(): { file: string; line: number; field: string; reason: string } {
    return { file: this.file, line: this.line, field: this.field, reason: this.reason };
  }
}

/** What {@link formatErrorSummary} needs; a scan result has all of it. */
export interface ErrorTally {
  /** Lines with at least one error. */
  invalidLines: number;
  /** All errors found, shown or not. */
  errorCount: number;
  /** Errors kept for display. */
  shown: number;
}

/**
 * The line printed after the listed errors, e.g.
 * `1204 invalid lines (1310 errors) in prompts.jsonl (showing the first 20; --max-errors 0 shows all)`.
 */
export function formatErrorSummary(file: string, tally: ErrorTally): string {
  const lines = `${tally.invalidLines} invalid line${tally.invalidLines === 1 ? '' : 's'}`;
  const errors =
    tally.errorCount === tally.invalidLines
      ? ''
      : ` (${tally.errorCount} error${tally.errorCount === 1 ? '' : 's'})`;
  const capped =
    tally.shown < tally.errorCount ? ` (showing the first ${tally.shown}; --max-errors 0 shows all)` : '';
  return `${lines}${errors} in ${file}${capped}`;
}

/**
 * The input changed between the validating pass and the reading pass (a file edited in between),
 * so what was validated and fingerprinted is not what would be submitted.
 */
export class InputChangedError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file} changed after it was validated (${detail}); run the command again`);
    this.name = 'InputChangedError';
  }
}
