/** One lane of a {@link FairQueue}: its items in arrival order, with their virtual finish tags. */
interface Lane<T> {
  readonly items: Array<{ item: T; tag: number }>;
  /** Index of the lane's head in `items` (shifted lazily: O(1) a take). */
  head: number;
  /** The tag of its last item. */
  last: number;
}

/**
 * A queue that serves lanes (the batches) in turn, weighted, and each lane first in, first out:
 * start-time fair queuing. An item gets the tag max(its lane's last tag, the virtual time) +
 * 1 / weight; the item with the smallest tag goes first, and the virtual time moves to it. A lane
 * that was empty starts at the virtual time, so a batch arriving behind a thousand waiting
 * requests of another is served within a turn, not after them; a lane of weight 3 is served three
 * times for each time of a lane of weight 1 while both wait. Items without a lane share one.
 * O(lanes) a take: lanes are the batches running at once, a handful.
 */
export class FairQueue<T> {
  readonly #lanes = new Map<string, Lane<T>>();
  #virtual = 0;
  #size = 0;

  get length(): number {
    return this.#size;
  }

  push(item: T, lane = '', weight = 1): void {
    let l = this.#lanes.get(lane);
    if (l === undefined) {
      l = { items: [], head: 0, last: 0 };
      this.#lanes.set(lane, l);
    }
    const tag = Math.max(l.last, this.#virtual) + 1 / Math.max(weight, 1e-6);
    l.last = tag;
    l.items.push({ item, tag });
    this.#size += 1;
  }

  /** The item served next, left in the queue. */
  peek(): T | undefined {
    const next = this.#next();
    return next?.lane.items[next.lane.head]?.item;
  }

  /**
   * Takes an item {@link peek} returned. By identity, not "the next one": an item pushed since, on a
   * lane of its own, may be served before it now, and must not be taken in its place.
   */
  take(item: T): boolean {
    for (const [key, lane] of this.#lanes) {
      if (lane.items[lane.head]?.item === item) {
        this.#takeHead(key, lane);
        return true;
      }
    }
    return false;
  }

  #takeHead(key: string, lane: Lane<T>): T {
    const entry = lane.items[lane.head]!;
    lane.head += 1;
    this.#size -= 1;
    this.#virtual = Math.max(this.#virtual, entry.tag);
    if (lane.head === lane.items.length) this.#lanes.delete(key);
    else if (lane.head > 1_024 && lane.head * 2 > lane.items.length) {
      lane.items.splice(0, lane.head);
      lane.head = 0;
    }
    return entry.item;
  }

  /** Takes every item, in no particular order. */
  drain(): T[] {
    const all: T[] = [];
    for (const lane of this.#lanes.values())
      for (let i = lane.head; i < lane.items.length; i++) all.push(lane.items[i]!.item);
    this.#lanes.clear();
    this.#size = 0;
    return all;
  }

  #next(): { key: string; lane: Lane<T> } | undefined {
    let best: { key: string; lane: Lane<T> } | undefined;
    let bestTag = Infinity;
    for (const [key, lane] of this.#lanes) {
      const tag = lane.items[lane.head]?.tag ?? Infinity;
      if (tag < bestTag) {
        bestTag = tag;
        best = { key, lane };
      }
    }
    return best;
  }
}
