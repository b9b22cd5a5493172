import { SharedRateBudget, type RateBudgetOptions, type SharedRateBudgetApi } from './shared-budget.js';

export {
  BudgetsFileError,
  DEFAULT_CLASS_NAME,
  ModelClassResolver,
  globToRegExp,
  isLimited,
  loadBudgetsFile,
  parseBudgets,
  resolveModelClass,
  validateBudgetClasses,
  type BudgetClass,
  type BudgetLimits,
  type ResolvedClass,
} from './budget-config.js';
export { BUDGET_KEY_PREFIX, budgetKey, budgetKeyPattern, encodeClassName } from './budget-keys.js';
export { estimateRequest } from './estimate-tokens.js';
export {
  OverBudgetError,
  UNLIMITED_BUDGET,
  type BudgetAmounts,
  type BudgetLease,
  type CallReport,
  type RateBudget,
  type RequestEstimate,
} from './rate-budget.js';
export { actualCost, parseRateLimitHeaders, settlementDelta } from './settlement.js';
export {
  BUCKET_TTL_MS,
  SharedRateBudget,
  type BudgetClassDescription,
  type BudgetClassSnapshot,
  type BudgetClock,
  type BudgetDescription,
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
