/**
 * Prompt caching. A content block carrying `cache_control` (a tool, a system block or a message block)
 * marks a breakpoint: the prompt from its start up to and including that block is a cacheable prefix,
 * keyed by a hash of (model, prefix). For a request, the longest prefix still cached is read
 * (cache_read_input_tokens); the tokens from there up to the last breakpoint are written
 * (cache_creation_input_tokens); input_tokens counts the rest. Every breakpoint's entry then lives for
 * its TTL (5 minutes, or 1 hour with `ttl: "1h"`) from this use, i.e. a hit refreshes it.
 *
 * As the API (../shared/docs/anthropic-api.md, prompt caching): breakpoints under the model's minimum
 * cacheable length never reach this cache (cache-minimums.ts drops them first), and a request's
 * entries are committed once its response has begun (the headers of a reply, message_start of a
 * stream), not at admission: requests admitted before then all miss, and all pay the write.
 */

export interface CacheBreakpoint {
  /** Hash of (model, prefix). */
  key: string;
  /** Input tokens from the start of the prompt up to and including the marked block. */
  tokens: number;
  ttlMs: number;
}

export interface CacheUsage {
  cacheReadTokens: number;
  cacheCreationTokens: number;
}

export const FIVE_MINUTES_MS = 5 * 60_000;
export const ONE_HOUR_MS = 60 * 60_000;

/** Entries beyond this are dropped oldest first, so a long benchmark cannot exhaust memory. */
const MAX_ENTRIES = 200_000;

const NO_USAGE: CacheUsage = { cacheReadTokens: 0, cacheCreationTokens: 0 };

export class PromptCache {
  /** key → expiry (ms). Re-inserting on use keeps the Map in roughly expiry order. */
  #entries = new Map<string, number>();

  constructor(private readonly clock: () => number) {}

  /** What a request with these breakpoints would read and write, without changing the cache. */
  peek(breakpoints: readonly CacheBreakpoint[] | null): CacheUsage {
    if (breakpoints === null || breakpoints.length === 0) return NO_USAGE;
    const now = this.clock();
    let read = 0;
    for (let i = breakpoints.length - 1; i >= 0; i--) {
      const bp = breakpoints[i];
      const expiry = bp === undefined ? undefined : this.#entries.get(bp.key);
      if (bp !== undefined && expiry !== undefined && expiry > now) {
        read = bp.tokens;
        break;
      }
    }
    const last = breakpoints[breakpoints.length - 1];
    return { cacheReadTokens: read, cacheCreationTokens: Math.max(0, (last?.tokens ?? 0) - read) };
  }

  /** Writes or refreshes every breakpoint of a request that was answered. */
  commit(breakpoints: readonly CacheBreakpoint[] | null): void {
    if (breakpoints === null || breakpoints.length === 0) return;
    const now = this.clock();
    for (const bp of breakpoints) {
      this.#entries.delete(bp.key);
      this.#entries.set(bp.key, now + bp.ttlMs);
    }
    if (this.#entries.size > MAX_ENTRIES) this.#evict(now);
  }

  #evict(now: number): void {
    for (const [key, expiry] of this.#entries) {
      if (this.#entries.size <= MAX_ENTRIES * 0.9 && expiry > now) break;
      this.#entries.delete(key);
    }
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
