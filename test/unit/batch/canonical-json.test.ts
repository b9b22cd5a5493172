import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH, NestingTooDeepError, canonicalJson } from '../../../src/batch/canonical-json.js';
import { fieldPath, quote } from '../../../src/batch/describe-value.js';

describe('canonicalJson', () => {
  it('sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }], '': 'x' })).toBe(
      '{"":"x","a":[{"c":null,"d":2}],"b":1}',
    );
  });

  it('has the byte length of JSON.stringify and parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const canonical = canonicalJson(value);
        expect(Buffer.byteLength(canonical)).toBe(Buffer.byteLength(JSON.stringify(value)));
        expect(JSON.parse(canonical)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { seed: 11, numRuns: 2000 },
    );
  });

  it('does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(record));
      }),
      { seed: 12, numRuns: 500 },
    );
  });

  it('throws NestingTooDeepError past MAX_NESTING_DEPTH', () => {
    const nest = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);
    expect(canonicalJson(nest(MAX_NESTING_DEPTH))).toHaveLength(MAX_NESTING_DEPTH * 2);
    expect(() => canonicalJson(nest(MAX_NESTING_DEPTH + 1))).toThrow(NestingTooDeepError);
  });
});

describe('quote and fieldPath', () => {
  it('quotes short values whole and cuts long ones at 40 code points', () => {
    expect(quote('abc')).toBe('"abc"');
    expect(quote('a'.repeat(41))).toBe(`"${'a'.repeat(40)}…"`);
    expect(quote('a'.repeat(40))).toBe(`"${'a'.repeat(40)}"`);
  });

  it('escapes quotes, backslashes and unsafe characters, and lone surrogates', () => {
    expect(quote('"\\\u0000\u2028\ud800')).toBe('"\\"\\\\\\u0000\\u2028\\ud800"');
  });

  it('shows plain keys bare and odd keys quoted in brackets', () => {
    expect(fieldPath('', 'params')).toBe('params');
    expect(fieldPath('params', 'max_tokens')).toBe('params.max_tokens');
    expect(fieldPath('params', 'a-b')).toBe('params["a-b"]');
    expect(fieldPath('', '')).toBe('[""]');
  });
});
