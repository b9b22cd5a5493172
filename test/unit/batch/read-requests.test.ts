import { describe, expect, it } from 'vitest';
import { InputChangedError } from '../../../src/batch/input-error.js';
import { inputSource } from '../../../src/batch/input-source.js';
import { DEFAULT_CHUNK_SIZE, readRequestChunks, readRequests } from '../../../src/batch/read-requests.js';
import { scanInput } from '../../../src/batch/scan-input.js';
import { bytesOf, chunked, collect, fullLine, memoryInput, promptLine } from './helpers.js';

const defaults = { model: 'claude-default', maxTokens: 64 };

describe('readRequests', () => {
  it('yields normalised requests in order with their index and line', async () => {
    const source = memoryInput(['', fullLine('a'), '', promptLine('b', 'hi'), fullLine('c')].join('\r\n'));
    const read = await collect(readRequests(source, { defaults }));
    expect(read.map(({ index, line, request }) => [index, line, request.custom_id])).toEqual([
      [0, 2, 'a'],
      [1, 4, 'b'],
      [2, 5, 'c'],
    ]);
    expect(read[1]?.request).toEqual({
      custom_id: 'b',
      params: { model: 'claude-default', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(read[0]?.bytes).toBe(Buffer.byteLength(JSON.stringify(read[0]?.request.params)));
  });

  it('throws InputChangedError on a line that no longer validates', async () => {
    const source = memoryInput([fullLine('a'), 'oops'].join('\n'));
    await expect(collect(readRequests(source, { defaults }))).rejects.toThrow(
      /changed after it was validated \(line 2: json: not valid JSON/,
    );
  });
});

describe('readRequestChunks', () => {
  const lines = Array.from({ length: 2500 }, (_, i) => promptLine(`r${i}`, `prompt ${i}`));
  const source = memoryInput(lines.join('\n'), { chunkSize: 4096 });

  it('yields chunks of DEFAULT_CHUNK_SIZE by default, the last one shorter', async () => {
    const chunks = await collect(readRequestChunks(source, { defaults }));
    const full = Math.floor(lines.length / DEFAULT_CHUNK_SIZE);
    const rest = lines.length % DEFAULT_CHUNK_SIZE;
    expect(chunks.map((c) => c.length)).toEqual([
      ...Array<number>(full).fill(DEFAULT_CHUNK_SIZE),
      ...(rest > 0 ? [rest] : []),
    ]);
    expect(chunks.flat().map((r) => r.index)).toEqual(lines.map((_, i) => i));
  });

  it('honours chunkSize', async () => {
    const chunks = await collect(readRequestChunks(source, { defaults, chunkSize: 999 }));
    expect(chunks.map((c) => c.length)).toEqual([999, 999, 502]);
  });

  it('passes the check against pass 1 when nothing changed, holding no chunk back', async () => {
    const scanned = await scanInput(source, { defaults });
    const chunks = await collect(readRequestChunks(source, { defaults, chunkSize: 1000, expect: scanned }));
    expect(chunks.map((c) => c.length)).toEqual([1000, 1000, 500]);
  });

  it('throws before the last chunk when the content differs from pass 1', async () => {
    const scanned = await scanInput(source, { defaults });
    const yielded: number[] = [];
    const run = async (): Promise<void> => {
      for await (const chunk of readRequestChunks(source, {
        defaults: { ...defaults, maxTokens: 65 },
        chunkSize: 1000,
        expect: scanned,
      })) {
        yielded.push(chunk.length);
      }
    };
    await expect(run()).rejects.toThrow('its content fingerprint differs');
    expect(yielded).toEqual([1000]);
  });

  it('holds back the last full chunk when the count is a multiple of chunkSize', async () => {
    const even = memoryInput(lines.slice(0, 2000).join('\n'));
    const scanned = await scanInput(even, { defaults });
    const yielded: number[] = [];
    const run = async (): Promise<void> => {
      for await (const chunk of readRequestChunks(even, {
        defaults,
        chunkSize: 1000,
        expect: { ...scanned, fingerprint: 'x' },
      })) {
        yielded.push(chunk.length);
      }
    };
    await expect(run()).rejects.toBeInstanceOf(InputChangedError);
    expect(yielded).toEqual([1000]);
  });

  it('throws as soon as there are more requests than pass 1 counted', async () => {
    const scanned = await scanInput(memoryInput(lines.slice(0, 10).join('\n')), { defaults });
    await expect(collect(readRequestChunks(source, { defaults, expect: scanned }))).rejects.toThrow(
      'more than the 10 requests validated',
    );
  });

  it('reads any re-openable source', async () => {
    const data = bytesOf(lines.slice(0, 3).join('\n'));
    const custom = inputSource('custom', () => chunked(data, 5));
    expect((await collect(readRequests(custom, { defaults }))).map((r) => r.line)).toEqual([1, 2, 3]);
  });
});
