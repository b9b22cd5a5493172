import { describe, expect, it } from 'vitest';
import { allocateTurns, type ShareClaim } from '../../../src/worker/fair-share.js';

const claim = (id: string, weight: number, available = 1_000_000): ShareClaim => ({ id, weight, available });

/** Runs `rounds` rounds of `slots` turns and sums what each claim got. */
function over(rounds: number, slots: number, claims: ShareClaim[]): Record<string, number> {
  const deficits = new Map<string, number>();
  const totals: Record<string, number> = {};
  for (let i = 0; i < rounds; i++) {
    const turns = allocateTurns(slots, claims, deficits);
    let sum = 0;
    for (const [id, n] of turns) {
      totals[id] = (totals[id] ?? 0) + n;
      sum += n;
    }
    expect(sum).toBe(
      Math.min(
        slots,
        claims.reduce((s, c) => s + c.available, 0),
      ),
    );
  }
  return totals;
}

describe('allocateTurns (deficit round-robin)', () => {
  it('splits the slots equally between equal weights', () => {
    expect(over(1, 10, [claim('a', 1), claim('b', 1)])).toEqual({ a: 5, b: 5 });
  });

  it('splits in proportion to the weights', () => {
    expect(over(1, 30, [claim('a', 1), claim('b', 2)])).toEqual({ a: 10, b: 20 });
    expect(over(1, 9, [claim('a', 1), claim('b', 3), claim('c', 5)])).toEqual({ a: 1, b: 3, c: 5 });
  });

  it('is fair over time when a round has fewer slots than batches', () => {
    // 3 slots a round for 5 equal batches: 300 rounds give each 180, not 0 for the last two.
    const totals = over(
      300,
      3,
      ['a', 'b', 'c', 'd', 'e'].map((id) => claim(id, 1)),
    );
    for (const id of ['a', 'b', 'c', 'd', 'e']) expect(totals[id]).toBe(180);
  });

  it('is fair over time with weights that do not divide the slots', () => {
    const totals = over(1_000, 1, [claim('a', 1), claim('b', 2)]);
    expect(totals['a']).toBeGreaterThanOrEqual(333);
    expect(totals['a']).toBeLessThanOrEqual(334);
    expect(totals['b']).toBe(1_000 - totals['a']!);
  });

  it('gives what a small batch cannot use to the others', () => {
    expect(over(1, 100, [claim('big', 1), claim('small', 1, 7)])).toEqual({ big: 93, small: 7 });
    expect(over(1, 100, [claim('a', 1, 10), claim('b', 5, 20), claim('c', 1)])).toEqual({
      a: 10,
      b: 20,
      c: 70,
    });
  });

  it('hands out no more than is held, and nothing to a claim holding nothing', () => {
    expect(over(1, 100, [claim('a', 1, 3), claim('b', 1, 0)])).toEqual({ a: 3 });
    expect(allocateTurns(10, [], new Map())).toEqual(new Map());
    expect(allocateTurns(0, [claim('a', 1)], new Map())).toEqual(new Map());
  });

  it('forgets the deficits of batches no longer claiming', () => {
    const deficits = new Map<string, number>([['gone', 0.9]]);
    allocateTurns(1, [claim('a', 1), claim('b', 1)], deficits);
    expect(deficits.has('gone')).toBe(false);
  });
});
