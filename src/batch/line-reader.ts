import { formatBytes } from './describe-value.js';
import { MAX_REQUEST_BODY_BYTES } from './types.js';

/**
 * Room a line gets above the API's body limit: the `custom_id`, the `{"params": ...}` wrapper and
 * whitespace do not reach the API. A line past the limit plus this is not parsed at all.
 */
const LINE_SLACK_BYTES = 1024 * 1024;

/** The default longest line that is decoded and parsed. */
export const DEFAULT_MAX_LINE_BYTES = MAX_REQUEST_BODY_BYTES + LINE_SLACK_BYTES;

export interface LineReaderOptions {
  /**
   * Longest line, in bytes without its line break, that is buffered and decoded. The rest of a
   * longer line is counted but not kept, so one giant line cannot exhaust memory; the line is
   * reported with field `line`. A line this long of mostly whitespace or `\u` escapes could in
   * principle serialise under the API limit; such lines are still refused.
   * @default MAX_REQUEST_BODY_BYTES + LINE_SLACK_BYTES (33 MiB)
   */
  maxLineBytes?: number;
}

/** A decoded line: no line break, no trailing `\r`, no BOM on line 1. May be blank. */
interface TextLine {
  kind: 'text';
  /** 1-based; blank lines count. */
  line: number;
  text: string;
  /** Raw byte length, line break excluded. */
  bytes: number;
}

/** A line that could not be turned into text: invalid UTF-8 (`encoding`) or too long (`line`). */
interface UnreadableLine {
  kind: 'unreadable';
  line: number;
  field: 'encoding' | 'line';
  reason: string;
}

export type InputLine = TextLine | UnreadableLine;

/** What the reader accepts: a Node Readable (file stream, stdin) or any async iterable of bytes. */
export type ByteSource = AsyncIterable<Uint8Array | string>;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines and yields them in batches (one batch per incoming chunk), so a
 * consumer pays one `await` per chunk rather than one per line.
 *
 * Splitting happens on the raw bytes so a bad byte sequence spoils only its own line: each line is
 * decoded on its own with a fatal decoder. Memory is one chunk plus the current line, and the current
 * line is capped at {@link LineReaderOptions.maxLineBytes}.
 */
export async function* readLineBatches(
  source: ByteSource,
  options: LineReaderOptions = {},
): AsyncGenerator<InputLine[], void, undefined> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // ignoreBOM keeps a BOM in the output: only line 1 may carry one, and a decoder call per line
  // would otherwise silently drop one at the start of any line.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  let lineNo = 1;
  // Pieces of the current line that arrived in earlier chunks (copied, so chunks are not retained).
  let parts: Buffer[] = [];
  let keptBytes = 0;
  let lineBytes = 0;
  let tooLong = false;

  const finish = (last: Buffer): InputLine => {
    const line = lineNo++;
    const total = lineBytes + last.length;
    const overflow = tooLong || keptBytes + last.length > maxLineBytes + 1;
    let bytes = overflow ? null : parts.length === 0 ? last : Buffer.concat([...parts, last]);
    parts = [];
    keptBytes = 0;
    lineBytes = 0;
    tooLong = false;

    if (bytes !== null && bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, -1);
    if (bytes === null || bytes.length > maxLineBytes) {
      return {
        kind: 'unreadable',
        line,
        field: 'line',
        reason: `line is ${formatBytes(total)}, over the ${formatBytes(maxLineBytes)} limit (the API takes request bodies up to ${formatBytes(MAX_REQUEST_BODY_BYTES)})`,
      };
    }
    if (line === 1 && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
      bytes = bytes.subarray(3);
    }
    try {
      return { kind: 'text', line, text: decoder.decode(bytes), bytes: bytes.length };
    } catch {
      const at = firstInvalidUtf8(bytes);
      const shown = bytes
        .subarray(at, Math.min(at + 4, bytes.length))
        .toString('hex')
        .replace(/(..)(?!$)/g, '$1 ');
      return {
        kind: 'unreadable',
        line,
        field: 'encoding',
        reason: `not valid UTF-8: bad byte sequence at byte ${at + 1} of the line (${shown})`,
      };
    }
  };

  // Keeps the unterminated tail of a chunk, or only counts it once the line is past the limit.
  const carry = (tail: Buffer): void => {
    lineBytes += tail.length;
    if (tooLong) return;
    if (keptBytes + tail.length > maxLineBytes + 1) {
      tooLong = true;
      parts = [];
      keptBytes = 0;
      return;
    }
    parts.push(Buffer.from(tail));
    keptBytes += tail.length;
  };

  for await (const chunk of source) {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const batch: InputLine[] = [];
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl === -1) {
        if (pos < buf.length) carry(buf.subarray(pos));
        break;
      }
      batch.push(finish(buf.subarray(pos, nl)));
      pos = nl + 1;
    }
    if (batch.length > 0) yield batch;
  }
  // A last line without a line break still counts; a final `\n` does not start another line.
  if (lineBytes > 0 || tooLong) yield [finish(Buffer.alloc(0))];
}

/** {@link readLineBatches}, one line at a time. */
export async function* readLines(
  source: ByteSource,
  options: LineReaderOptions = {},
): AsyncGenerator<InputLine, void, undefined> {
  for await (const batch of readLineBatches(source, options)) yield* batch;
}

/**
 * Offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlongs,
 * surrogates and code points past U+10FFFF included), or `bytes.length` if there is none.
 * Only run once a decoder has already refused the line, to say where.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      // Only the first continuation byte has the narrowed range.
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return bytes.length;
}
