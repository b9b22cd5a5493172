import { SharedRateBudget, type RateBudgetOptions, type SharedRateBudgetApi } from './shared-budget.js';

export {
  BudgetsFileError,
  DEFAULT_CLASS_NAME,
  ModelClassResolver,
  globToRegExp,
  loadBudgetsFile,
  parseBudgets,
  resolveModelClass,
  type BudgetClass,
  type BudgetLimits,
} from './budget-config.js';
export { budgetKey, budgetKeyPattern } from './budget-keys.js';
export { estimateRequest } from './estimate-tokens.js';
export {
  OverBudgetError,
  type BudgetLease,
  type CallReport,
  type RateBudget,
  type RequestEstimate,
} from './rate-budget.js';
export { actualCost, parseRateLimitHeaders, settlementDelta } from './settlement.js';
export {
  type BudgetClassSnapshot,
  type BudgetDimensionSnapshot,
  type BudgetSnapshot,
  type RateBudgetOptions,
  type SharedRateBudgetApi,
} from './shared-budget.js';

/**
 * The account's shared rate budget (see {@link SharedRateBudget}). Classes with no limit admit at once
 * and never touch Redis; with no limit anywhere, no Redis call is ever made.
 */
export function createRateBudget(options: RateBudgetOptions): SharedRateBudgetApi {
  return new SharedRateBudget(options);
}
