import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../../src/limits/fair-queue.js';

function takeAll<T>(q: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let item = q.peek(); item !== undefined; item = q.peek()) {
    expect(q.take(item)).toBe(true);
    out.push(item);
  }
  return out;
}

describe('FairQueue (start-time fair queuing across lanes)', () => {
  it('is first in, first out within one lane', () => {
    const q = new FairQueue<number>();
    for (let i = 0; i < 5; i++) q.push(i);
    expect(q.length).toBe(5);
    expect(takeAll(q)).toEqual([0, 1, 2, 3, 4]);
    expect(q.length).toBe(0);
  });

  it('serves a lane that arrives behind a long one within a turn, then alternates', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 100; i++) q.push(`big${i}`, 'big');
    // Two of the big lane are served before the small one arrives.
    expect(q.take(q.peek()!)).toBe(true);
    expect(q.take(q.peek()!)).toBe(true);
    for (let i = 0; i < 3; i++) q.push(`small${i}`, 'small');
    expect(takeAll(q).slice(0, 6)).toEqual(['big2', 'small0', 'big3', 'small1', 'big4', 'small2']);
  });

  it('weights turns: a lane of weight 3 is served three times for each time of weight 1', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 40; i++) q.push('low', 'low', 1);
    for (let i = 0; i < 40; i++) q.push('high', 'high', 3);
    const first40 = takeAll(q).slice(0, 40);
    const high = first40.filter((x) => x === 'high').length;
    expect(high).toBeGreaterThanOrEqual(29);
    expect(high).toBeLessThanOrEqual(31);
  });

  it('takes the item it was asked for even when a newer lane now goes first', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'a', 1);
    q.push('a2', 'a', 1);
    const head = q.peek()!;
    expect(head).toBe('a1');
    // Meanwhile a request of a heavier batch arrives: it is served next after a1, not instead of it.
    q.push('b1', 'b', 10);
    expect(q.take(head)).toBe(true);
    expect(takeAll(q)).toEqual(['b1', 'a2']);
  });

  it('drain takes everything', () => {
    const q = new FairQueue<number>();
    q.push(1, 'x');
    q.push(2, 'y');
    expect(q.drain().sort()).toEqual([1, 2]);
    expect(q.length).toBe(0);
    expect(q.peek()).toBeUndefined();
  });
});
