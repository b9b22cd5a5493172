/**
 * Prepaid credits (see CreditsOptions for the price rule). Absent credits mean an unlimited balance.
 */
import type { ResolvedCredits } from './options.js';

export class CreditLedger {
  #balance: number;

  constructor(private readonly prices: ResolvedCredits) {
    this.#balance = prices.balance;
  }

  get balance(): number {
    return this.#balance;
  }

  /** Requests are refused while the balance is not positive. */
  exhausted(): boolean {
    return this.#balance <= 0;
  }

  charge(inputTokens: number, outputTokens: number): void {
    this.#balance -=
      this.prices.perRequest +
      this.prices.perInputToken * inputTokens +
      this.prices.perOutputToken * outputTokens;
  }

  topUp(amount: number): number {
    this.#balance += amount;
    return this.#balance;
  }
}
