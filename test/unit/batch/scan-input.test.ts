import { describe, expect, it } from 'vitest';
import { inputSource } from '../../../src/batch/input-source.js';
import { scanInput, textChars, type ScanOptions, type ScanResult } from '../../../src/batch/scan-input.js';
import { MAX_REQUEST_BODY_BYTES } from '../../../src/batch/types.js';
import { fullLine, memoryInput, promptLine } from './helpers.js';

const defaults = { model: 'claude-default', maxTokens: 100 };

function scan(content: Parameters<typeof memoryInput>[0], options: ScanOptions = {}): Promise<ScanResult> {
  return scanInput(memoryInput(content), { defaults, maxErrors: 0, ...options });
}

function where(result: ScanResult): string[] {
  return result.errors.map((e) => `${e.line}:${e.field}`);
}

describe('scanInput', () => {
  it('counts requests and skips blank lines, with CRLF and a BOM', async () => {
    const text = `\ufeff${fullLine('a')}\r\n\r\n   \r\n${promptLine('b')}\r\n\t\n${fullLine('c')}`;
    const result = await scan(text);
    expect(result).toMatchObject({ count: 3, errorCount: 0, invalidLines: 0, lines: 6, blankLines: 3 });
    expect(result.errors).toEqual([]);
  });

  it('reports errors with the line numbers blank lines included', async () => {
    const text = ['', fullLine('a'), '', '{"custom_id":"b"', '', fullLine('c', { max_tokens: -1 })].join(
      '\n',
    );
    const result = await scan(text);
    expect(where(result)).toEqual(['4:json', '6:params.max_tokens']);
    expect(result.errors[1]?.format()).toBe(
      'prompts.jsonl:6: params.max_tokens: must be a positive integer, got number -1',
    );
    expect(result.count).toBe(1);
  });

  it('reports a duplicate custom_id at the later line, naming the first', async () => {
    const text = [fullLine('a'), fullLine('b'), promptLine('a'), fullLine('a')].join('\n');
    const result = await scan(text);
    expect(result.errors.map((e) => e.format())).toEqual([
      'prompts.jsonl:3: custom_id: duplicate: "a" is already used on line 1',
      'prompts.jsonl:4: custom_id: duplicate: "a" is already used on line 1',
    ]);
    expect(result.count).toBe(2);
  });

  it('counts the id of an invalid line for duplicates, both ways', async () => {
    const text = [fullLine('a', { max_tokens: 0 }), fullLine('a'), fullLine('a', { model: 1 })].join('\n');
    expect(where(await scan(text))).toEqual([
      '1:params.max_tokens',
      '2:custom_id',
      '3:params.model',
      '3:custom_id',
    ]);
  });

  it('gives the same exact answer when every id hash collides', async () => {
    // A hash of the length alone: ids "a".."c" all collide, so only the exact round can tell them apart.
    const text = [
      fullLine('a'),
      fullLine('b'),
      fullLine('a', { max_tokens: 0 }),
      fullLine('c'),
      fullLine('b'),
      fullLine('dd'),
    ].join('\n');
    const exact = await scan(text);
    const collided = await scan(text, { idHash: (id) => id.length });
    expect(collided).toEqual(exact);
    expect(where(collided)).toEqual(['3:params.max_tokens', '3:custom_id', '5:custom_id']);
    expect(collided).toMatchObject({ count: 4, invalidLines: 2, errorCount: 3 });
  });

  it('reads a clean input once, even when hashes collide only among distinct ids', async () => {
    let opened = 0;
    const source = memoryInput([fullLine('a'), fullLine('b'), fullLine('c')].join('\n'));
    const counting = { ...source, open: () => (opened++, source.open()) };
    const once = await scanInput(counting, { defaults });
    expect(opened).toBe(1);
    const collided = await scanInput(counting, { defaults, idHash: () => 7 });
    expect(opened).toBe(3);
    expect(collided).toEqual(once);
    expect(collided.errorCount).toBe(0);
  });

  it('reports invalid UTF-8 and NUL bytes at their lines and reads on', async () => {
    const result = await scan([
      `${fullLine('a')}\n`,
      Buffer.from('{"custom_id":"b","prompt":"caf'),
      Buffer.from([0xe9]),
      Buffer.from('"}\n'),
      `${fullLine('c')}\n`,
      Buffer.from('{"custom_id":"d","prompt":"x\u0000y"}\n'),
      fullLine('e'),
    ]);
    expect(where(result)).toEqual(['2:encoding', '4:encoding']);
    expect(result.errors[1]?.reason).toBe('contains a NUL byte (at character 29)');
    expect(result.count).toBe(3);
  });

  it('keeps only maxErrors errors but counts them all', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? `bad ${i}` : fullLine(`r${i}`)));
    const result = await scan(lines.join('\n'), { maxErrors: 5 });
    expect(result.errors.map((e) => e.line)).toEqual([1, 3, 5, 7, 9]);
    expect(result).toMatchObject({ errorCount: 25, invalidLines: 25, count: 25 });
  });

  it('keeps every error with maxErrors 0 and 20 by default', async () => {
    const text = Array.from({ length: 30 }, () => 'nope').join('\n');
    expect((await scan(text, { maxErrors: 0 })).errors).toHaveLength(30);
    expect((await scanInput(memoryInput(text))).errors).toHaveLength(20);
  });

  it('sums requests, text characters and max_tokens per model', async () => {
    const text = [
      promptLine('a', 'abcd'),
      fullLine('b', {
        model: 'other',
        max_tokens: 5,
        system: 'sys',
        messages: [{ role: 'user', content: 'xy' }],
      }),
      promptLine('c', 'efgh'),
    ].join('\n');
    const result = await scan(text);
    expect({ ...result.models }).toEqual({
      'claude-default': { requests: 2, chars: 8, maxTokens: 200 },
      other: { requests: 1, chars: 5, maxTokens: 5 },
    });
    expect(Object.getPrototypeOf(result.models)).toBeNull();
  });

  it('counts text blocks and nested tool result content in textChars', () => {
    expect(
      textChars({
        model: 'm',
        max_tokens: 1,
        system: [{ type: 'text', text: 'abc' }],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'de' },
              { type: 'image', source: { data: 'zzzz' } },
            ],
          },
          { role: 'user', content: [{ type: 'tool_result', content: [{ type: 'text', text: 'f' }] }] },
        ],
      }),
    ).toBe(6);
  });

  it('reports progress per chunk', async () => {
    const seen: number[] = [];
    await scanInput(memoryInput([fullLine('a'), fullLine('b')].join('\n'), { chunkSize: 64 }), {
      defaults,
      onProgress: (lines) => seen.push(lines),
    });
    expect(seen.at(-1)).toBe(2);
  });
});

describe('scanInput fingerprint', () => {
  const body = [promptLine('a', 'one'), promptLine('b', 'two')];
  const same = (r: ScanResult): string => r.fingerprint;

  it('is a sha256 hex digest', async () => {
    expect(same(await scan(body.join('\n')))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not change with blank lines, CRLF, a BOM, key order or chunking', async () => {
    const base = same(await scan(body.join('\n')));
    expect(same(await scan(`\ufeff\n${body.join('\r\n\r\n')}\r\n`))).toBe(base);
    expect(same(await scan('{"prompt":"one","custom_id":"a"}\n{"prompt":"two","custom_id":"b"}'))).toBe(base);
    const oneChunk = await scanInput(memoryInput(body.join('\n'), { chunkSize: 1 << 20 }), { defaults });
    expect(same(oneChunk)).toBe(base);
  });

  it('is the same for shorthand lines and the full lines they expand to', async () => {
    const full = [
      '{"custom_id":"a","params":{"max_tokens":100,"model":"claude-default","messages":[{"role":"user","content":"one"}]}}',
      '{"custom_id":"b","params":{"model":"claude-default","messages":[{"content":"two","role":"user"}],"max_tokens":100}}',
    ];
    expect(same(await scan(full.join('\n'), { defaults: {} }))).toBe(same(await scan(body.join('\n'))));
  });

  it('changes with the defaults, a prompt, an id, the order, or an added request', async () => {
    const base = same(await scan(body.join('\n')));
    const variants = await Promise.all([
      scan(body.join('\n'), { defaults: { ...defaults, model: 'claude-other' } }),
      scan(body.join('\n'), { defaults: { ...defaults, maxTokens: 101 } }),
      scan(body.join('\n'), { defaults: { ...defaults, system: 'Be brief.' } }),
      scan([promptLine('a', 'one'), promptLine('b', 'two!')].join('\n')),
      scan([promptLine('a', 'one'), promptLine('c', 'two')].join('\n')),
      scan([body[1], body[0]].join('\n')),
      scan([...body, promptLine('c', 'three')].join('\n')),
    ]);
    const fingerprints = new Set([base, ...variants.map(same)]);
    expect(fingerprints.size).toBe(variants.length + 1);
  });
});

describe('scanInput: the 32 MiB request body limit', () => {
  // The big lines are generated in memory as a stream; nothing of this size is written to disk.
  function streamedLine(customId: string, promptBytes: number): () => AsyncGenerator<Buffer> {
    return async function* () {
      yield Buffer.from(`${fullLine('small-1')}\n{"custom_id":"${customId}","prompt":"`);
      const piece = Buffer.alloc(1024 * 1024, 0x61);
      let left = promptBytes;
      while (left > 0) {
        const size = Math.min(left, piece.length);
        yield piece.subarray(0, size);
        left -= size;
      }
      yield Buffer.from(`"}\n${fullLine('small-2')}\n`);
    };
  }

  it('rejects a request just over 32 MiB at its line, and keeps the lines around it', async () => {
    const source = inputSource('big.jsonl', streamedLine('huge', MAX_REQUEST_BODY_BYTES));
    const result = await scanInput(source, { defaults, maxErrors: 0 });
    expect(result.errors.map((e) => e.format())).toEqual([
      "big.jsonl:2: params: request body would be 32.0 MiB (33554517 bytes), over the API's limit of 33554432 bytes",
    ]);
    expect(result.count).toBe(2);
  });

  it('accepts a request just under 32 MiB', async () => {
    // The body wraps the prompt in {"max_tokens":100,"messages":[{"content":"...","role":"user"}],"model":"claude-default"}.
    const overhead = Buffer.byteLength(
      JSON.stringify({ max_tokens: 100, messages: [{ content: '', role: 'user' }], model: 'claude-default' }),
    );
    const source = inputSource('big.jsonl', streamedLine('huge', MAX_REQUEST_BODY_BYTES - overhead));
    const result = await scanInput(source, { defaults, maxErrors: 0 });
    expect(result.errors).toEqual([]);
    expect(result.count).toBe(3);
    expect(result.bodyBytes).toBeGreaterThanOrEqual(MAX_REQUEST_BODY_BYTES);
  });

  it('refuses a line far over the limit without parsing it', async () => {
    const source = inputSource('big.jsonl', streamedLine('giant', 48 * 1024 * 1024));
    const result = await scanInput(source, { defaults, maxErrors: 0 });
    expect(result.errors.map((e) => `${e.line}:${e.field}`)).toEqual(['2:line']);
    expect(result.errors[0]?.reason).toMatch(/^line is 48\.0 MiB, over the 33\.0 MiB limit/);
    expect(result.count).toBe(2);
  });
});
