import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_LINE_BYTES,
  firstInvalidUtf8,
  readLineBatches,
  readLines,
  type InputLine,
} from '../../../src/batch/line-reader.js';
import { bytesOf, chunked, collect } from './helpers.js';

async function linesOf(content: Uint8Array, chunkSize = 3, maxLineBytes?: number): Promise<InputLine[]> {
  return collect(readLines(chunked(content, chunkSize), maxLineBytes === undefined ? {} : { maxLineBytes }));
}

function texts(lines: InputLine[]): (string | null)[] {
  return lines.map((l) => (l.kind === 'text' ? l.text : null));
}

describe('readLines', () => {
  it('numbers lines from 1, keeps blank lines, and does not add a line after a final newline', async () => {
    const lines = await linesOf(bytesOf('a\n\n  \nb\n'));
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3, 4]);
    expect(texts(lines)).toEqual(['a', '', '  ', 'b']);
  });

  it('yields a last line that has no newline', async () => {
    expect(texts(await linesOf(bytesOf('a\nb')))).toEqual(['a', 'b']);
  });

  it('yields nothing for an empty input and one blank line for a lone newline', async () => {
    expect(await linesOf(bytesOf(''))).toEqual([]);
    expect(texts(await linesOf(bytesOf('\n')))).toEqual(['']);
  });

  it('strips a trailing CR (CRLF input) but keeps a CR inside a line', async () => {
    const lines = await linesOf(bytesOf('a\r\nb\rc\r\n\r\nd\r'));
    expect(texts(lines)).toEqual(['a', 'b\rc', '', 'd']);
  });

  it('strips a UTF-8 BOM on line 1 only', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const lines = await linesOf(bytesOf([bom, 'a\n', bom, 'b\n']));
    expect(texts(lines)).toEqual(['a', '\ufeffb']);
  });

  it('reports invalid UTF-8 on its own line, with the byte position, and reads the lines around it', async () => {
    const lines = await linesOf(bytesOf(['ok\n', 'ab', Buffer.from([0xff, 0xfe]), 'c\n', 'fine\n']));
    expect(lines[0]).toMatchObject({ kind: 'text', line: 1, text: 'ok' });
    expect(lines[1]).toEqual({
      kind: 'unreadable',
      line: 2,
      field: 'encoding',
      reason: 'not valid UTF-8: bad byte sequence at byte 3 of the line (ff fe 63)',
    });
    expect(lines[2]).toMatchObject({ kind: 'text', line: 3, text: 'fine' });
  });

  it.each([
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['an overlong slash', [0xc0, 0xaf]],
    ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['a stray continuation byte', [0x80]],
  ])('rejects %s as invalid UTF-8', async (_name, bad) => {
    const [line] = await linesOf(bytesOf(['"x', Buffer.from(bad), '"\n']));
    expect(line).toMatchObject({ kind: 'unreadable', line: 1, field: 'encoding' });
  });

  it('decodes multi-byte characters split across chunks', async () => {
    const text = 'héllo 🌍 עברית\u200b';
    for (const size of [1, 2, 3, 5]) {
      expect(texts(await linesOf(bytesOf(`${text}\n${text}`), size))).toEqual([text, text]);
    }
  });

  it('gives the same lines whatever the chunk boundaries', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.string(), fc.constantFrom('\n', '\r\n', '\r', '\ufeff')), { maxLength: 30 }),
        fc.integer({ min: 1, max: 17 }),
        async (parts, size) => {
          const data = bytesOf(parts.join(''));
          const reference = await linesOf(data, data.length + 1);
          expect(await linesOf(data, size)).toEqual(reference);
        },
      ),
      { seed: 20240611, numRuns: 200 },
    );
  });

  it('accepts a Node Readable and string chunks', async () => {
    const lines = await collect(readLines(Readable.from(['a\nb', 'c\n'])));
    expect(texts(lines)).toEqual(['a', 'bc']);
  });

  it('batches the lines of a chunk together', async () => {
    const batches = await collect(readLineBatches(chunked(bytesOf('a\nb\nc\nd\n'), 4)));
    expect(batches.map((b) => b.map((l) => l.line))).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('reports a line over maxLineBytes with its full size, skips it, and reads the next line', async () => {
    const lines = await linesOf(bytesOf(['a\n', 'x'.repeat(100), '\nb\n']), 7, 50);
    expect(texts(lines)).toEqual(['a', null, 'b']);
    expect(lines[1]).toEqual({
      kind: 'unreadable',
      line: 2,
      field: 'line',
      reason: 'line is 100 B, over the 50 B limit (the API takes request bodies up to 32.0 MiB)',
    });
  });

  it('accepts a line of exactly maxLineBytes, with or without a CR', async () => {
    const exact = 'y'.repeat(50);
    expect(texts(await linesOf(bytesOf(`${exact}\n${exact}\r\n`), 7, 50))).toEqual([exact, exact]);
  });

  it('skips a 40 MiB line without keeping it, under the default limit', async () => {
    const chunk = 1024 * 1024;
    async function* giant(): AsyncGenerator<Buffer> {
      yield Buffer.from('first\n');
      for (let i = 0; i < 40; i++) yield Buffer.alloc(chunk, 0x61);
      yield Buffer.from('\nlast');
    }
    const lines = await collect(readLines(giant()));
    expect(DEFAULT_MAX_LINE_BYTES).toBe(33 * 1024 * 1024);
    expect(lines.map((l) => [l.line, l.kind])).toEqual([
      [1, 'text'],
      [2, 'unreadable'],
      [3, 'text'],
    ]);
    expect(lines[1]).toMatchObject({ field: 'line', reason: expect.stringContaining('line is 40.0 MiB') });
  });
});

describe('firstInvalidUtf8', () => {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decodes = (bytes: Uint8Array): boolean => {
    try {
      decoder.decode(bytes);
      return true;
    } catch {
      return false;
    }
  };

  it('agrees with a fatal TextDecoder on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        const at = firstInvalidUtf8(bytes);
        expect(at === bytes.length).toBe(decodes(bytes));
        expect(decodes(bytes.subarray(0, at))).toBe(true);
      }),
      { seed: 7, numRuns: 5000 },
    );
  });

  it('accepts every well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        const bytes = Buffer.from(text, 'utf8');
        expect(firstInvalidUtf8(bytes)).toBe(bytes.length);
      }),
      { seed: 8, numRuns: 1000 },
    );
  });
});
