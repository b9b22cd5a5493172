import { quote } from './describe-value.js';
import { InputFingerprint } from './fingerprint.js';
import { IdHashes } from './id-hashes.js';
import { InputError } from './input-error.js';
import type { InputSource } from './input-source.js';
import { readLineBatches, type LineReaderOptions } from './line-reader.js';
import type { MessageParams } from './types.js';
import {
  isBlankLine,
  validateLine,
  type FieldError,
  type RequestDefaults,
  type ValidateOptions,
} from './validate-request.js';

export { openInput, type InputSource } from './input-source.js';

export interface ScanOptions extends LineReaderOptions, ValidateOptions {
  /** Model, max_tokens and system for shorthand (`prompt`) lines. Never applied to full lines. */
  defaults?: RequestDefaults;
  /**
   * How many errors to keep for display; `0` keeps all. Lines past the cap are still validated and
   * counted in `errorCount` and `invalidLines`.
   * @default 20
   */
  maxErrors?: number;
  /**
   * Called after each chunk of input with the number of lines read so far. When the input repeats
   * a custom_id it is read a second time, and the count starts again from 0.
   */
  onProgress?: (lines: number) => void;
  /**
   * Hash for the duplicate check's first round. Tests pass a weak one to force collisions: a worse
   * hash only costs another read of the input, never a wrong answer.
   * @default idHash (53 bits)
   */
  idHash?: (id: string) => number;
  /**
   * Called with each valid request's params in the first read (not again if the input is read a
   * second time for repeated ids): what pass 2 needs to know of the whole input, e.g. the prefix
   * most requests share (auto-caching).
   */
  observe?: (params: MessageParams, line: number, customId: string) => void;
}

/** What one model's requests add up to, for a cost estimate before submitting. */
export interface ModelStats {
  requests: number;
  /**
   * Characters of text in `system` and `messages` (string content, and `text` / nested `content`
   * of blocks). Rough: images, documents and tool definitions are not counted.
   */
  chars: number;
  /** Sum of `max_tokens`: the most output the requests can cost. */
  maxTokens: number;
}

export interface ScanResult {
  /** Valid requests. Equals the number of requests pass 2 will yield when there are no errors. */
  count: number;
  /** See `InputFingerprint`: sha256 hex over the normalised valid requests in order. */
  fingerprint: string;
  /** Per model, in order of first appearance. A null-prototype record: any model name is a safe key. */
  models: Record<string, ModelStats>;
  /** The first `maxErrors` errors (all of them with `maxErrors: 0`), in line order. */
  errors: InputError[];
  /** All errors, shown or not. */
  errorCount: number;
  /** Lines with at least one error. */
  invalidLines: number;
  /** Lines read, blank ones included. */
  lines: number;
  /** Blank or whitespace-only lines, skipped. */
  blankLines: number;
  /** Sum of the request body sizes of the valid requests (bytes). */
  bodyBytes: number;
}

/** Default for {@link ScanOptions.maxErrors}. */
const DEFAULT_MAX_ERRORS = 20;

/**
 * Pass 1: reads the whole input, validating every line, and returns the request count, the
 * content fingerprint, per-model totals and the errors. No request is kept.
 *
 * Memory is bounded by the line reader (one chunk plus one line) and the duplicate check, which
 * keeps 8 bytes per custom_id: a hash (see {@link IdHashes}). Only when two hashes are equal (a
 * repeated id, or rarely a collision) is the input read once more, this time comparing the real
 * ids behind just those hashes, so the answer is exact and a clean input is read once.
 */
export async function scanInput(source: InputSource, options: ScanOptions = {}): Promise<ScanResult> {
  const hashes = new IdHashes(options.idHash);
  const scanned = await scanOnce(source, options, (customId) => {
    hashes.add(customId);
    return undefined;
  });
  const repeated = hashes.repeated();
  if (repeated.size === 0) return scanned;
  const firstLines = new Map<string, number>();
  const { observe: _observedOnce, ...again } = options;
  return scanOnce(source, again, (customId, line) => {
    if (!repeated.has(hashes.hash(customId))) return undefined;
    const first = firstLines.get(customId);
    if (first === undefined) firstLines.set(customId, line);
    return first;
  });
}

/**
 * One read of the input. `seen` registers a custom_id and returns the line it was first seen on,
 * or undefined when it is (as far as this round can tell) new.
 */
async function scanOnce(
  source: InputSource,
  options: ScanOptions,
  seen: (customId: string, line: number) => number | undefined,
): Promise<ScanResult> {
  const defaults = options.defaults ?? {};
  const maxErrors = options.maxErrors ?? DEFAULT_MAX_ERRORS;
  const fingerprint = new InputFingerprint();
  const models: Record<string, ModelStats> = Object.create(null) as Record<string, ModelStats>;
  const result: Omit<ScanResult, 'fingerprint' | 'models'> = {
    count: 0,
    errors: [],
    errorCount: 0,
    invalidLines: 0,
    lines: 0,
    blankLines: 0,
    bodyBytes: 0,
  };

  const report = (line: number, errors: FieldError[]): void => {
    result.invalidLines++;
    for (const { field, reason } of errors) {
      result.errorCount++;
      if (maxErrors === 0 || result.errors.length < maxErrors) {
        result.errors.push(new InputError(source.name, line, field, reason));
      }
    }
  };

  const duplicateError = (customId: string, first: number): FieldError => ({
    field: 'custom_id',
    reason: `duplicate: ${quote(customId)} is already used on line ${first}`,
  });

  for await (const batch of readLineBatches(source.open(), options)) {
    for (const item of batch) {
      result.lines = item.line;
      if (item.kind === 'unreadable') {
        report(item.line, [{ field: item.field, reason: item.reason }]);
        continue;
      }
      if (isBlankLine(item.text)) {
        result.blankLines++;
        continue;
      }
      const checked = validateLine(item.text, item.line, defaults, options);
      if (!checked.ok) {
        // An invalid line still claims its id, so fixing it cannot surface a new duplicate error.
        const { customId, errors } = checked;
        const first = customId === undefined ? undefined : seen(customId, item.line);
        report(
          item.line,
          customId === undefined || first === undefined
            ? errors
            : [...errors, duplicateError(customId, first)],
        );
        continue;
      }
      const { request, bytes, canonical } = checked;
      const first = seen(request.custom_id, item.line);
      if (first !== undefined) {
        report(item.line, [duplicateError(request.custom_id, first)]);
        continue;
      }
      result.count++;
      result.bodyBytes += bytes;
      fingerprint.add(canonical);
      const stats = (models[request.params.model] ??= { requests: 0, chars: 0, maxTokens: 0 });
      stats.requests++;
      stats.chars += textChars(request.params);
      stats.maxTokens += request.params.max_tokens;
      options.observe?.(request.params, item.line, request.custom_id);
    }
    options.onProgress?.(result.lines);
  }

  return { ...result, fingerprint: fingerprint.digest(), models };
}

/** Rough size of a request's text, for cost estimates: see {@link ModelStats.chars}. */
export function textChars(params: MessageParams): number {
  let chars = contentChars(params.system, 0);
  for (const message of params.messages) {
    if (typeof message === 'object' && message !== null) {
      chars += contentChars((message as { content?: unknown }).content, 0);
    }
  }
  return chars;
}

// Depth-capped: tool results nest content one or two levels; anything deeper is not text worth counting.
function contentChars(content: unknown, depth: number): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content) || depth > 3) return 0;
  let chars = 0;
  for (const block of content) {
    if (typeof block !== 'object' || block === null) continue;
    const { text, content: inner } = block as { text?: unknown; content?: unknown };
    if (typeof text === 'string') chars += text.length;
    chars += contentChars(inner, depth + 1);
  }
  return chars;
}
