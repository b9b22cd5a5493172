import type { InputError } from '../batch/input-error.js';

/**
 * The runner's own failures that a person must act on, kept in one light module: the CLI maps
 * them to exit codes without loading the parts of the runner that throw them.
 */

/** The input has invalid lines; nothing was enqueued. */
export class InputValidationError extends Error {
  override name = 'InputValidationError';
  constructor(
    readonly file: string,
    readonly errors: readonly InputError[],
    readonly summary: string,
  ) {
    super(summary);
  }
}

/** A batch id taken by other content, or records newer than this runner. */
export class BatchConflictError extends Error {
  override name = 'BatchConflictError';
}

/** A worker was started without ANTHROPIC_API_KEY. */
export class MissingApiKeyError extends Error {
  override name = 'MissingApiKeyError';
}
