/**
 * The custom_ids seen so far, each with the line it first appeared on: pass 1's duplicate check.
 *
 * Exact (a match compares the whole id) and compact: the ids' characters live in one growable byte
 * arena and the table in typed arrays, so a million ids cost about 41 MB outside the JS heap and no
 * per-id objects. A `Map<string, number>` held them as a million heap strings (59 MB measured),
 * which every major GC walked and which made V8 grow its heap far beyond them: submit's peak RSS at
 * a million lines fell from ~405 MB to ~235 MB with this (scripts/bench, section submit). Ids are
 * short ASCII once validated; any other string (a character above U+00FF, or longer than 255) is
 * kept in a plain Map instead, so the answer is always exact.
 */
export class IdIndex {
  private chars = new Uint8Array(1 << 16);
  private used = 0;
  private starts = new Uint32Array(1 << 10);
  private lengths = new Uint8Array(1 << 10);
  private hashes = new Int32Array(1 << 10);
  private lines = new Float64Array(1 << 10);
  /** Open addressing, linear probing: entry index + 1, 0 when empty. Kept at most half full. */
  private table = new Int32Array(1 << 11);
  private count = 0;
  private readonly others = new Map<string, number>();

  /** Ids registered. */
  get size(): number {
    return this.count + this.others.size;
  }

  /** The line `id` was first seen on; if it is new, registers it as seen on `line` and returns undefined. */
  firstLine(id: string, line: number): number | undefined {
    const length = id.length;
    let hash = 0x811c9dc5 | 0;
    for (let i = 0; i < length; i++) {
      const c = id.charCodeAt(i);
      if (c > 0xff) return this.other(id, line);
      hash = Math.imul(hash ^ c, 0x01000193);
    }
    if (length > 0xff) return this.other(id, line);
    const mask = this.table.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = (this.table[slot] ?? 0) - 1;
      if (entry < 0) {
        this.add(slot, id, hash, line);
        return undefined;
      }
      if (this.hashes[entry] === hash && this.equals(entry, id)) return this.lines[entry];
    }
  }

  private other(id: string, line: number): number | undefined {
    const first = this.others.get(id);
    if (first === undefined) this.others.set(id, line);
    return first;
  }

  private equals(entry: number, id: string): boolean {
    if (this.lengths[entry] !== id.length) return false;
    const start = this.starts[entry] ?? 0;
    for (let i = 0; i < id.length; i++) if (this.chars[start + i] !== id.charCodeAt(i)) return false;
    return true;
  }

  private add(slot: number, id: string, hash: number, line: number): void {
    const entry = this.count++;
    if (entry >= this.starts.length) this.growEntries();
    if (this.used + id.length > this.chars.length) {
      const chars = new Uint8Array(Math.max(this.chars.length * 2, this.used + id.length));
      chars.set(this.chars.subarray(0, this.used));
      this.chars = chars;
    }
    for (let i = 0; i < id.length; i++) this.chars[this.used + i] = id.charCodeAt(i);
    this.starts[entry] = this.used;
    this.lengths[entry] = id.length;
    this.hashes[entry] = hash;
    this.lines[entry] = line;
    this.used += id.length;
    this.table[slot] = entry + 1;
    if (this.count * 2 > this.table.length) this.rehash();
  }

  private growEntries(): void {
    const capacity = this.starts.length * 2;
    const grow = <T extends Uint32Array | Uint8Array | Int32Array | Float64Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.starts = grow(this.starts, (n) => new Uint32Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint8Array(n));
    this.hashes = grow(this.hashes, (n) => new Int32Array(n));
    this.lines = grow(this.lines, (n) => new Float64Array(n));
  }

  private rehash(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let entry = 0; entry < this.count; entry++) {
      let slot = (this.hashes[entry] ?? 0) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = entry + 1;
    }
    this.table = table;
  }
}
