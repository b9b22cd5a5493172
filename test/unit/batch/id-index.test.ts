import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdIndex } from '../../../src/batch/id-index.js';

/** What IdIndex replaces: a Map from each id to the line it was first seen on. */
function reference(ids: readonly string[]): Array<number | undefined> {
  const map = new Map<string, number>();
  return ids.map((id, i) => {
    const first = map.get(id);
    if (first === undefined) map.set(id, i + 1);
    return first;
  });
}

describe('IdIndex', () => {
  it('answers like a Map for any strings: short ASCII, long, empty, beyond Latin-1', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.stringMatching(/^[a-c0-9_-]{0,3}$/),
            fc.string({ maxLength: 300 }),
            fc.string({ unit: 'binary', maxLength: 8 }),
          ),
          { maxLength: 200 },
        ),
        (ids) => {
          const index = new IdIndex();
          expect(ids.map((id, i) => index.firstLine(id, i + 1))).toEqual(reference(ids));
          expect(index.size).toBe(new Set(ids).size);
        },
      ),
    );
  });

  it('keeps every id and its first line through many resizes', () => {
    const ids = Array.from({ length: 50_000 }, (_, i) => `req-${i}`);
    const index = new IdIndex();
    ids.forEach((id, i) => expect(index.firstLine(id, i + 1)).toBeUndefined());
    ids.forEach((id, i) => expect(index.firstLine(id, 0)).toBe(i + 1));
    expect(index.firstLine('req-50000', 7)).toBeUndefined();
    expect(index.size).toBe(50_001);
  });

  it('tells apart ids whose hashes collide', () => {
    // Pairs with the same 32-bit FNV-1a hash (found by search), so they share a probe sequence.
    const index = new IdIndex();
    for (const [a, b] of [
      ['id43zx', 'idbpad'],
      ['id43zy', 'idbpae'],
    ] as const) {
      expect(index.firstLine(a, 1)).toBeUndefined();
      expect(index.firstLine(b, 2)).toBeUndefined();
      expect(index.firstLine(a, 3)).toBe(1);
      expect(index.firstLine(b, 4)).toBe(2);
    }
    expect(index.size).toBe(4);
  });

  it('keeps line numbers past 2^32', () => {
    const index = new IdIndex();
    expect(index.firstLine('a', 2 ** 33 + 1)).toBeUndefined();
    expect(index.firstLine('a', 5)).toBe(2 ** 33 + 1);
  });
});
