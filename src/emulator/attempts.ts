/**
 * How many times each prompt hash has been seen: the attempt number behind `@@fault:T:k@@` markers,
 * fault draws and the request log. Bounded: past MAX_PROMPTS distinct prompts the oldest are
 * forgotten (a prompt seen again after that starts over at attempt 1).
 */
const MAX_PROMPTS = 1_000_000;

export class AttemptCounter {
  #counts = new Map<string, number>();

  /** Counts one more attempt and returns its number (1 for the first). */
  next(promptHash: string): number {
    const n = (this.#counts.get(promptHash) ?? 0) + 1;
    this.#counts.set(promptHash, n);
    if (n === 1 && this.#counts.size > MAX_PROMPTS) {
      const oldest = this.#counts.keys().next();
      if (oldest.done !== true) this.#counts.delete(oldest.value);
    }
    return n;
  }

  clear(): void {
    this.#counts.clear();
  }
}
