/** A batch competing for the dispatcher's turns. */
export interface ShareClaim {
  id: string;
  /** Its priority: turns are handed out in proportion to it. */
  weight: number;
  /** Requests it holds for its share: it gets no more turns than this. */
  available: number;
}

/**
 * Deficit round-robin over weights: splits `slots` turns between the claims in proportion to their
 * weights, none getting more than it holds (what one cannot use goes to the others), and carries
 * each claim's unspent fraction of a turn in `deficits` to the next call, so small rounds (3 slots
 * for 5 batches) are fair over time instead of always favouring the same batches.
 * `deficits` is updated in place; entries of claims not given are dropped.
 * Returns claim id → turns, summing to min(slots, total available).
 */
export function allocateTurns(
  slots: number,
  claims: readonly ShareClaim[],
  deficits: Map<string, number>,
): Map<string, number> {
  const turns = new Map<string, number>();
  for (const id of deficits.keys()) if (!claims.some((c) => c.id === id)) deficits.delete(id);
  let open = claims.filter((c) => c.available > 0 && c.weight > 0);
  let left = Math.max(0, Math.floor(slots));
  while (left > 0 && open.length > 0) {
    const weights = open.reduce((sum, c) => sum + c.weight, 0);
    // Each claim's exact share of what is left, plus what it was owed from earlier rounds.
    const exact = open.map((c) => ({ c, want: (left * c.weight) / weights + (deficits.get(c.id) ?? 0) }));
    const given = exact.map(({ c, want }) => ({ c, want, n: Math.max(0, Math.floor(want)) }));
    let spare = left - given.reduce((sum, g) => sum + g.n, 0);
    // Whole turns still unassigned go to the largest remainders (the most owed first).
    const byRemainder = [...given].sort((a, b) => b.want - b.n - (a.want - a.n));
    for (let i = 0; spare > 0; i = (i + 1) % byRemainder.length) {
      byRemainder[i]!.n += 1;
      spare -= 1;
    }
    // Over-giving (deficits summing above the slots) is trimmed from the least owed.
    for (let i = byRemainder.length - 1; spare < 0 && i >= 0; i--) {
      const g = byRemainder[i]!;
      const cut = Math.min(g.n, -spare);
      g.n -= cut;
      spare += cut;
    }
    const capped: ShareClaim[] = [];
    let handed = 0;
    for (const g of given) {
      const room = g.c.available - (turns.get(g.c.id) ?? 0);
      const n = Math.min(g.n, room);
      turns.set(g.c.id, (turns.get(g.c.id) ?? 0) + n);
      handed += n;
      if (n < g.n) {
        // Could not use its share: nothing is owed to it, the rest goes round again.
        deficits.delete(g.c.id);
        capped.push(g.c);
      } else {
        // Keep the fraction owed (or over-given), bounded so a long past cannot dominate.
        deficits.set(g.c.id, Math.max(-1, Math.min(1, g.want - n)));
      }
    }
    left -= handed;
    if (capped.length === 0) break;
    open = open.filter((c) => !capped.includes(c));
  }
  for (const [id, n] of turns) if (n === 0) turns.delete(id);
  return turns;
}
