import { CostLedger, type CostReservation } from '../limits/cost-ledger.js';
import { HOSTED_PRICE_FACTOR } from '../pricing/price-table.js';
import type { RequestJobData } from '../queue/jobs.js';
import {
  actualCostNano,
  dearestPrice,
  parseFrozenPrices,
  worstCaseNano,
  type CostUsage,
  type FrozenPrice,
} from '../pricing/request-cost.js';
import type { Runtime } from '../runtime.js';
import type { BatchRecord } from '../store/batch-record.js';
import { costPauseTemplate } from '../worker/cost-guard.js';

/** A chunk's reservation as its record keeps it: settled when its results are in. */
export interface ChunkReservation {
  id: string;
  amount: number;
}

/** What the ceiling lets a chunk of a batch with one do. */
export type ChunkAdmission =
  /** Create it with these requests (the rest go back to the share): its worst case is reserved. */
  | { kind: 'go'; keep: number; reservation: ChunkReservation | null }
  /** Nothing fits now: reservations in flight may settle lower, or the batch paused at its ceiling. */
  | { kind: 'wait' };

/**
 * The cost ceiling (issue 15) for the hosted path: before a chunk is created, its worst case at the
 * hosted price (every request's, at the prices frozen into the batch, halved) is reserved in the
 * batch's ledger; a chunk whose worst case does not fit what is left is cut down to the requests
 * that do (the cheapest first), the rest held again for a later chunk. The reservation is settled
 * to the real cost of the chunk's lines when its results are in. A process that dies meanwhile
 * stops renewing it: the ledger then charges it at its worst case (the safe side, as for a live
 * call of a dead worker).
 */
export class ChunkCeiling {
  private readonly ledger: CostLedger;

  constructor(private readonly runtime: Runtime) {
    this.ledger = new CostLedger({ redis: runtime.redis, keys: runtime.keys, logger: runtime.logger });
  }

  /** The batch's frozen prices when it has a ceiling; null: no ceiling, nothing to reserve. */
  pricesOf(record: BatchRecord): Record<string, FrozenPrice> | null {
    return record.cost?.ceiling != null ? parseFrozenPrices(record.prices_json) : null;
  }

  /** A request's worst case at the hosted price (nano-dollars), at these frozen prices. */
  worstOf(data: RequestJobData, prices: Record<string, FrozenPrice>): number {
    const price = prices[data.params.model] ?? dearestPrice(prices);
    return price ? worstCaseNano(data.params, price) * HOSTED_PRICE_FACTOR : 0;
  }

  /**
   * Decides how many of `items` (each a request's worst case, sorted here, cheapest first, in
   * place) the chunk may keep, and reserves their worst case. Pauses the batch (in the ledger's
   * script) when not even one fits and nothing else is in flight.
   */
  async admit<T extends { worst: number }>(record: BatchRecord, items: T[]): Promise<ChunkAdmission> {
    if (!this.pricesOf(record)) return { kind: 'go', keep: items.length, reservation: null };
    items.sort((a, b) => a.worst - b.worst);
    const state = await this.ledger.read(record.id);
    const room =
      state.ceiling === null ? Number.POSITIVE_INFINITY : state.ceiling - state.spent - state.reserved;
    let keep = 0;
    let amount = 0;
    for (const item of items) {
      if (amount + item.worst > room) break;
      amount += item.worst;
      keep++;
    }
    // Not even the cheapest: ask the ledger for it, which pauses the batch if nothing is in flight.
    if (keep === 0) amount = items[0]?.worst ?? 0;
    const answer = await this.ledger.tryReserve(record.id, amount, costPauseTemplate(record.id));
    switch (answer.kind) {
      case 'granted':
        return { kind: 'go', keep: Math.max(keep, 1), reservation: toChunk(answer.reservation) };
      case 'unlimited':
        return { kind: 'go', keep: items.length, reservation: null };
      default:
        if (answer.kind === 'exceeded') {
          this.runtime.logger.warn('batch paused at its cost ceiling before a hosted chunk', {
            batch_id: record.id,
            fix: `claude-batch resume ${record.id} --max-cost N`,
          });
        }
        return { kind: 'wait' };
    }
  }

  /** What a hosted answer cost (nano-dollars): its usage at the batch's frozen price, halved. */
  actualOf(record: BatchRecord, data: RequestJobData, usage: CostUsage): number {
    const prices = this.pricesOf(record);
    const price = prices?.[data.params.model];
    return price ? actualCostNano(usage, data.params, price) * HOSTED_PRICE_FACTOR : 0;
  }

  /** Settles a chunk's reservation to what its lines cost. */
  async settle(batchId: string, reservation: ChunkReservation, actual: number): Promise<void> {
    await this.ledger.settle({ batchId, id: reservation.id, amount: reservation.amount }, actual);
  }

  /** Forgets a reservation that was not used (the create was refused): settled at 0. */
  async release(batchId: string, reservation: ChunkReservation | undefined): Promise<void> {
    if (reservation) await this.settle(batchId, reservation, 0);
  }

  close(): void {
    this.ledger.close();
  }
}

function toChunk(reservation: CostReservation): ChunkReservation {
  return { id: reservation.id, amount: reservation.amount };
}
