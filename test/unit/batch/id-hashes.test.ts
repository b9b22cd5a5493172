import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdHashes, idHash } from '../../../src/batch/id-hashes.js';

describe('IdHashes', () => {
  it('finds the hash of every id added more than once, for any strings', () => {
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
          const hashes = new IdHashes();
          for (const id of ids) hashes.add(id);
          const counts = new Map<string, number>();
          for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
          const expected = new Set([...counts].filter(([, n]) => n > 1).map(([id]) => idHash(id)));
          expect(hashes.size).toBe(ids.length);
          // Equal: with 53 bits, no two distinct ids among a few hundred collide.
          expect(hashes.repeated()).toEqual(expected);
        },
      ),
    );
  });

  it('keeps every hash across many blocks', () => {
    const hashes = new IdHashes();
    for (let i = 0; i < 200_000; i++) hashes.add(`req-${i}`);
    hashes.add('req-3');
    hashes.add('req-199999');
    expect(hashes.size).toBe(200_002);
    expect(hashes.repeated()).toEqual(new Set([idHash('req-3'), idHash('req-199999')]));
  });

  it('has no collision among a million ids of one common shape', () => {
    const hashes = new IdHashes();
    for (let i = 0; i < 1_000_000; i++) hashes.add(`req-${String(i).padStart(7, '0')}`);
    expect(hashes.repeated().size).toBe(0);
  });

  it('hashes to 53-bit non-negative integers, exact in a double', () => {
    for (const id of ['', 'a', 'req-0000001', 'x'.repeat(64), 'é😀']) {
      const h = idHash(id);
      expect(Number.isSafeInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
    }
  });
});
