import { InputFingerprint } from './fingerprint.js';
import { InputChangedError } from './input-error.js';
import type { InputSource } from './input-source.js';
import { readLineBatches, type LineReaderOptions } from './line-reader.js';
import type { BatchRequest } from './types.js';
import { isBlankLine, validateLine, type RequestDefaults, type ValidateOptions } from './validate-request.js';

export interface ReadRequestsOptions extends LineReaderOptions, ValidateOptions {
  /** Must be the defaults pass 1 validated with, or shorthand lines normalise differently. */
  defaults?: RequestDefaults;
  /**
   * Requests per chunk yielded by {@link readRequestChunks}.
   * @default DEFAULT_CHUNK_SIZE (250)
   */
  chunkSize?: number;
  /**
   * What pass 1 found. When given, the count and fingerprint are recomputed and checked before the
   * final chunk is yielded; a difference throws {@link InputChangedError}. Chunks yielded earlier
   * have already gone out, so the caller must treat that error as failing the whole batch.
   */
  expect?: { count: number; fingerprint: string };
}

/** One request to submit, with where it came from. */
export interface IndexedRequest {
  /** 0-based position among the requests (blank lines do not count): the submission order. */
  index: number;
  /** 1-based input line, for messages. */
  line: number;
  request: BatchRequest;
  /** Its request body size in bytes. */
  bytes: number;
}

/**
 * Default for {@link ReadRequestsOptions.chunkSize} and for submit's chunks. 250 rather than 1,000:
 * a chunk's jobs live until Redis has run them all, and smaller chunks die before V8 promotes them,
 * so at a million lines submit peaked ~16 MB lower and ran no slower (scripts/bench, section submit).
 */
export const DEFAULT_CHUNK_SIZE = 250;

/**
 * Pass 2: reads an input that `scanInput` has already accepted and yields its requests, normalised,
 * in chunks of `chunkSize` (the last one shorter), ready for one bulk enqueue each.
 *
 * Lines are re-validated (the requests have to be parsed and normalised anyway); a line that now
 * fails means the input changed since pass 1, and throws {@link InputChangedError}. Duplicate ids are
 * not checked again: that needs the id map pass 1 already paid for; `expect` catches any change.
 */
export async function* readRequestChunks(
  source: InputSource,
  options: ReadRequestsOptions = {},
): AsyncGenerator<IndexedRequest[], void, undefined> {
  const defaults = options.defaults ?? {};
  const chunkSize = Math.max(1, options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const expect = options.expect;
  const fingerprint = expect === undefined ? undefined : new InputFingerprint();

  let index = 0;
  let chunk: IndexedRequest[] = [];
  // With `expect`, the latest full chunk waits for the next request (or the final check), so the
  // last requests never go out before the input is known to be unchanged.
  let held: IndexedRequest[] | undefined;

  for await (const batch of readLineBatches(source.open(), options)) {
    for (const item of batch) {
      if (item.kind === 'unreadable') {
        throw new InputChangedError(source.name, `line ${item.line}: ${item.field}: ${item.reason}`);
      }
      if (isBlankLine(item.text)) continue;
      const checked = validateLine(item.text, item.line, defaults, options);
      if (!checked.ok) {
        const first = checked.errors[0];
        throw new InputChangedError(source.name, `line ${item.line}: ${first?.field}: ${first?.reason}`);
      }
      if (expect !== undefined && index >= expect.count) {
        throw new InputChangedError(source.name, `more than the ${expect.count} requests validated`);
      }
      fingerprint?.add(checked.canonical);
      chunk.push({ index, line: item.line, request: checked.request, bytes: checked.bytes });
      index++;
      if (chunk.length >= chunkSize) {
        if (expect === undefined) yield chunk;
        else {
          if (held !== undefined) yield held;
          held = chunk;
        }
        chunk = [];
      }
    }
  }

  if (expect !== undefined && fingerprint !== undefined) {
    if (index !== expect.count) {
      throw new InputChangedError(source.name, `${index} requests, ${expect.count} were validated`);
    }
    if (fingerprint.digest() !== expect.fingerprint) {
      throw new InputChangedError(source.name, 'its content fingerprint differs');
    }
  }
  if (held !== undefined) yield held;
  if (chunk.length > 0) yield chunk;
}

/** {@link readRequestChunks}, one request at a time. */
export async function* readRequests(
  source: InputSource,
  options: ReadRequestsOptions = {},
): AsyncGenerator<IndexedRequest, void, undefined> {
  for await (const chunk of readRequestChunks(source, options)) yield* chunk;
}
