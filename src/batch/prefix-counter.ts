/**
 * Counts, in bounded memory, how many requests share each prefix at one depth (number of blocks):
 * the Space-Saving algorithm (Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and
 * Top-k Elements in Data Streams", ICDT 2005). At most `capacity` prefixes are tracked; a new one
 * replaces the least counted and inherits its count as its possible overcount (`error`). Any prefix
 * shared by more than 1/capacity of the requests is never dropped, and `count - error` is a lower
 * bound of its true count, exact while no more than `capacity` distinct prefixes were seen.
 */
export interface PrefixTally {
  key: string;
  parentKey: string;
  count: number;
  error: number;
  chars: number;
  markable: boolean;
}

export class PrefixCounter {
  readonly #tallies = new Map<string, PrefixTally>();

  constructor(private readonly capacity: number) {}

  add(key: string, parentKey: string, chars: number, markable: boolean): void {
    const tally = this.#tallies.get(key);
    if (tally !== undefined) {
      tally.count++;
      return;
    }
    if (this.#tallies.size < this.capacity) {
      this.#tallies.set(key, { key, parentKey, count: 1, error: 0, chars, markable });
      return;
    }
    let least: PrefixTally | undefined;
    for (const t of this.#tallies.values()) if (least === undefined || t.count < least.count) least = t;
    if (least === undefined) return;
    this.#tallies.delete(least.key);
    this.#tallies.set(key, { key, parentKey, count: least.count + 1, error: least.count, chars, markable });
  }

  get(key: string): PrefixTally | undefined {
    return this.#tallies.get(key);
  }

  /** The prefix with the highest guaranteed count (first seen wins a tie), or undefined when empty. */
  top(): PrefixTally | undefined {
    let best: PrefixTally | undefined;
    for (const t of this.#tallies.values()) {
      if (best === undefined || t.count - t.error > best.count - best.error) best = t;
    }
    return best;
  }
}
