/**
 * Pass 1's duplicate check, first round: one 53-bit hash per custom_id, 8 bytes each in fixed-size
 * blocks (no per-id object, no copy on growth), so a million ids cost 8 MB. Only hashes that repeat
 * are looked at again, by an exact second round over just those (see `scanInput`).
 *
 * It replaced an exact index holding every id's characters and first line (41 MB outside the heap
 * at a million ids, with transient copies on growth), which alone put submit above its memory goal.
 */
export class IdHashes {
  private readonly blocks: Float64Array[] = [];
  private block = new Float64Array(BLOCK_SIZE);
  private used = 0;
  private count = 0;

  /** @param hash The hash kept per id: {@link idHash} unless a test needs collisions. */
  constructor(readonly hash: (id: string) => number = idHash) {}

  /** Ids added. */
  get size(): number {
    return this.count;
  }

  add(id: string): void {
    if (this.used === BLOCK_SIZE) {
      this.blocks.push(this.block);
      this.block = new Float64Array(BLOCK_SIZE);
      this.used = 0;
    }
    this.block[this.used++] = this.hash(id);
    this.count++;
  }

  /**
   * The hashes added more than once: every id added twice has its hash here, and an id added once
   * only when it shares its hash with another (about one pair in 10^5 at a million ids). Call once.
   */
  repeated(): Set<number> {
    const all = new Float64Array(this.count);
    let at = 0;
    for (const block of [...this.blocks.splice(0), this.block.subarray(0, this.used)]) {
      all.set(block, at);
      at += block.length;
    }
    this.block = new Float64Array(0);
    this.used = 0;
    all.sort();
    const repeated = new Set<number>();
    for (let i = 1; i < all.length; i++) if (all[i] === all[i - 1]) repeated.add(all[i] ?? 0);
    return repeated;
  }
}

/** Hashes per block: 512 KB each. */
const BLOCK_SIZE = 1 << 16;

/**
 * cyrb53 (bryc, public domain): a 53-bit hash of a string's UTF-16 code units, exact in a double.
 * Two 32-bit multiply-xorshift lanes mixed at the end; not cryptographic, and it need not be: a
 * collision only costs a look at the real ids.
 */
export function idHash(id: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
