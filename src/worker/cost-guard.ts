import type { CallResult } from '../claude/claude-client.js';
import { CostLedger, type CostPauseTemplate, type CostReservation } from '../limits/cost-ledger.js';
import type { RequestJobData } from '../queue/jobs.js';
import {
  actualCostNano,
  dearestPrice,
  nanoToUsd,
  parseFrozenPrices,
  worstCaseNano,
  type FrozenPrice,
} from '../pricing/request-cost.js';
import type { Runtime } from '../runtime.js';

/** How long what a worker knows of a batch's ceiling and prices is trusted before it is read again (ms). */
const BATCH_INFO_MS = 2_000;

/** A request's standing against its batch's cost ceiling, before its call. */
export type CostAdmission =
  /** Send it; settle the reservation (if any) with the call's result, or as unsent. */
  | { kind: 'send'; settle: (result: CallResult | null) => Promise<void> }
  /** The batch is paused at its ceiling: park the request among its held ones. */
  | { kind: 'park' }
  /** The worker is stopping: hand the request back. */
  | { kind: 'aborted' };

const NOTHING = async (): Promise<void> => {};

/**
 * The worker's side of the cost ceiling (issue 15): before a request is sent, reserve its worst
 * case in its batch's {@link CostLedger} at the batch's frozen prices, waiting while the ledger
 * says `wait`; after the call, settle to the real cost. A batch without a ceiling costs one read of
 * its record every {@link BATCH_INFO_MS} per worker, nothing per request.
 *
 * The reservation is taken before the in-flight slot and the rate budget: a request that is going to
 * be parked never holds a slot or spends rate budget, and one waiting for room in the ledger does not
 * keep a slot from another batch's request. What it reserves stays reserved while it waits for the
 * slot and the budget: its call is coming, and that is what the ledger must count.
 */
export class CostGuard {
  readonly ledger: CostLedger;
  private readonly batches = new Map<
    string,
    { at: number; ceiling: boolean; prices: Record<string, FrozenPrice> }
  >();

  constructor(
    private readonly runtime: Runtime,
    /** Lease of a reservation: the worker's job lock duration (ms). */
    leaseTtlMs: number,
  ) {
    this.ledger = new CostLedger({
      redis: runtime.redis,
      keys: runtime.keys,
      leaseTtlMs,
      logger: runtime.logger,
    });
  }

  async admit(data: RequestJobData, signal: AbortSignal | undefined): Promise<CostAdmission> {
    const info = await this.batchInfo(data.batch_id);
    if (!info.ceiling) return { kind: 'send', settle: NOTHING };
    const price = info.prices[data.params.model] ?? this.dearest(data, info.prices);
    if (!price) return { kind: 'send', settle: NOTHING };
    const worst = worstCaseNano(data.params, price);
    const answer = await this.ledger.reserve(data.batch_id, worst, costPauseTemplate(data.batch_id), signal);
    if (answer === null) return { kind: 'aborted' };
    switch (answer.kind) {
      case 'unlimited':
        this.batches.delete(data.batch_id);
        return { kind: 'send', settle: NOTHING };
      case 'exceeded':
        this.runtime.logger.warn('batch paused at its cost ceiling', {
          batch_id: data.batch_id,
          spent_usd: nanoToUsd(answer.state.spent),
          ceiling_usd: nanoToUsd(answer.state.ceiling ?? 0),
          next_worst_case_usd: nanoToUsd(worst),
          fix: `claude-batch resume ${data.batch_id} --max-cost N`,
        });
        return { kind: 'park' };
      case 'paused':
        return { kind: 'park' };
      case 'granted':
        return { kind: 'send', settle: this.settler(answer.reservation, data, price) };
    }
  }

  /** Stops renewing reservations (they expire by themselves, charged at their worst case). */
  close(): void {
    this.ledger.close();
  }

  /**
   * Settles once: to the real usage of a success; to the worst case of a failure that may have
   * been billed (a timeout, a cut connection: the API may have processed it, and nothing says
   * how much it cost); to 0 for an answer with an error status (not billed) or no call at all.
   */
  private settler(
    reservation: CostReservation,
    data: RequestJobData,
    price: FrozenPrice,
  ): (result: CallResult | null) => Promise<void> {
    let settled = false;
    return async (result) => {
      if (settled) return;
      settled = true;
      const actual =
        result === null
          ? 0
          : result.ok
            ? actualCostNano(result.usage, data.params, price)
            : result.failure.maybeBilled
              ? reservation.amount
              : 0;
      await this.ledger.settle(reservation, actual);
    };
  }

  /**
   * A model the batch has no frozen price for (a `dlq retry --model` replacement): priced at the
   * dearest rates of its other models, the safe side, with a warning.
   */
  private dearest(data: RequestJobData, prices: Record<string, FrozenPrice>): FrozenPrice | null {
    this.runtime.logger.warn('no frozen price for this model; its worst case uses the dearest of its batch', {
      batch_id: data.batch_id,
      model: data.params.model,
    });
    return dearestPrice(prices);
  }

  private async batchInfo(
    batchId: string,
  ): Promise<{ ceiling: boolean; prices: Record<string, FrozenPrice> }> {
    const known = this.batches.get(batchId);
    if (known && Date.now() - known.at < BATCH_INFO_MS) return known;
    const [ceiling, prices] = await this.runtime.redis.hmget(
      this.runtime.keys.batch(batchId),
      'max_cost',
      'prices',
    );
    const info = { at: Date.now(), ceiling: Boolean(ceiling), prices: parseFrozenPrices(prices) };
    this.batches.set(batchId, info);
    if (this.batches.size > 1_000) {
      for (const [id, b] of this.batches) if (Date.now() - b.at > BATCH_INFO_MS) this.batches.delete(id);
    }
    return info;
  }
}

export function costPauseTemplate(batchId: string): CostPauseTemplate {
  return {
    reason: 'cost_ceiling',
    message: 'the batch reached its cost ceiling: the next request could cost more than what is left',
    since: new Date().toISOString(),
    fix: `raise the ceiling: \`claude-batch resume ${batchId} --max-cost N\` (N in USD, above the spend so far)`,
  };
}
